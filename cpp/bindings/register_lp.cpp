#include <optional>
#include <pybind11/stl.h>

#include "emlpress/lp_rows.hpp"
#include "pynet.hpp"

namespace emlpress::py_glue {

void register_lp(py::module_& m) {
    py::class_<LpRelaxation>(m, "LpRelaxation")
        .def(py::init([](const F64Array& lo, const F64Array& hi, bool integer) {
                 return LpRelaxation(Eigen::Map<const Vec>(lo.data(), lo.size()),
                                     Eigen::Map<const Vec>(hi.data(), hi.size()), integer);
             }),
             py::arg("lo"), py::arg("hi"), py::arg("integer") = false)
        .def(
            "add_layer",
            [](LpRelaxation& R, const PyNet& net, int j, const F64Array& lower,
               const F64Array& upper) {
                const NetworkView& v = net.view();
                if (j < 0 || j >= v.n_layers() - 1)
                    throw std::invalid_argument("add_layer: layer must be a hidden layer");
                if (lower.size() != v.width(j) || upper.size() != v.width(j))
                    throw std::invalid_argument("add_layer: sizes do not match layer " +
                                                std::to_string(j));
                const Vec l = Eigen::Map<const Vec>(lower.data(), lower.size());
                const Vec u = Eigen::Map<const Vec>(upper.data(), upper.size());
                const LpBlock* B;
                {
                    py::gil_scoped_release release;
                    B = &R.add_layer(v, j, l, u);
                }
                return block_dict(*B);
            },
            py::arg("net"), py::arg("layer"), py::arg("lower"), py::arg("upper"))
        .def(
            "add_domain",
            [](LpRelaxation& R, const std::vector<double>& aux_lower,
               const std::vector<double>& aux_upper, const std::vector<double>& row_lower,
               const std::vector<double>& row_upper, const std::vector<Index>& starts,
               const std::vector<Index>& indices, const std::vector<double>& values) {
                return block_dict(R.add_domain(aux_lower, aux_upper, row_lower, row_upper,
                                               starts, indices, values));
            },
            py::arg("aux_lower"), py::arg("aux_upper"), py::arg("row_lower"),
            py::arg("row_upper"), py::arg("starts"), py::arg("indices"), py::arg("values"),
            "The input domain's rows (CSR over the inputs and `aux` columns numbered after "
            "them), before any layer; returns the block to add to each HiGHS instance.")
        .def(
            "pre_activation",
            [](const LpRelaxation& R, const PyNet& net, int j) {
                const NetworkView& v = net.view();
                if (j < 0 || j >= v.n_layers())
                    throw std::invalid_argument("pre_activation: no layer " + std::to_string(j));
                Affine Z;
                {
                    py::gil_scoped_release release;
                    Z = R.pre_activation(v, j);
                }
                py::dict d;
                d["ref"] = as_array(Z.ref);
                py::array_t<double> A({Z.A.rows(), Z.A.cols()});
                std::copy(Z.A.data(), Z.A.data() + Z.A.size(), A.mutable_data());
                d["A"] = A;
                d["c"] = py::array_t<double>(Z.c.size(), Z.c.data());
                d["err"] = py::array_t<double>(Z.err.size(), Z.err.data());
                return d;
            },
            py::arg("net"), py::arg("layer"),
            "Layer `layer`'s pre-activations as A v[ref] + c (|error| <= err) over the LP columns.")
        .def_property_readonly("n_layers", &LpRelaxation::n_layers)
        .def_property_readonly("n_cols", &LpRelaxation::n_cols)
        .def_property_readonly("n_rows", &LpRelaxation::n_rows)
        .def(
            "safe_bound",
            [](const LpRelaxation& R, const std::vector<Index>& idx, const std::vector<double>& val,
               const F64Array& y, std::optional<F64Array> col_lower,
               std::optional<F64Array> col_upper) {
                if (col_lower.has_value() != col_upper.has_value())
                    throw std::invalid_argument("safe_bound: give both col_lower and col_upper");
                const double *cl = nullptr, *cu = nullptr;
                if (col_lower) {
                    if (col_lower->size() != R.n_cols() || col_upper->size() != R.n_cols())
                        throw std::invalid_argument("safe_bound: col_lower/col_upper need " +
                                                    std::to_string(R.n_cols()) + " values");
                    cl = col_lower->data();
                    cu = col_upper->data();
                }
                py::gil_scoped_release release;
                return R.safe_bound(idx, val, y.data(), static_cast<std::size_t>(y.size()), cl, cu);
            },
            py::arg("cost_indices"), py::arg("cost_values"), py::arg("row_duals"),
            py::arg("col_lower") = py::none(), py::arg("col_upper") = py::none(),
            "Rigorous lower bound of min cost.x over the relaxation from any row multipliers, "
            "over the stored column bounds or the narrower `col_lower`/`col_upper` given.")
        .def(
            "dual_feasible_basis",
            [](const LpRelaxation& R, const std::vector<Index>& idx, const std::vector<double>& val,
               std::optional<F64Array> hints) {
                std::size_t n_hints = 0;
                if (hints) {
                    if (hints->ndim() != 2 || hints->shape(1) != R.n_cols())
                        throw std::invalid_argument(
                            "dual_feasible_basis: hints must be a (k, " +
                            std::to_string(R.n_cols()) + ") array of column values");
                    n_hints = static_cast<std::size_t>(hints->shape(0));
                }
                py::array_t<std::int8_t> cs(R.n_cols()), rs(R.n_rows());
                py::array_t<double> y(R.n_rows()), x(R.n_cols());
                const double* h = hints ? hints->data() : nullptr;
                std::int8_t *c = cs.mutable_data(), *r = rs.mutable_data();
                double *yd = y.mutable_data(), *xd = x.mutable_data();
                LpRelaxation::Start start;
                {
                    py::gil_scoped_release release;
                    start = R.dual_feasible_basis(idx, val, h, n_hints, c, r, yd, xd);
                }
                py::dict d;
                d["col_status"] = cs;
                d["row_status"] = rs;
                d["objective"] = start.objective;
                d["row_dual"] = y;
                d["col_value"] = x;
                d["violation"] = start.violation;
                return d;
            },
            py::arg("cost_indices"), py::arg("cost_values"), py::arg("hints") = py::none(),
            "A dual feasible starting basis for min cost.x from CROWN's backward pass over the "
            "rows: the best of CROWN's own lower sides and those of each row of `hints` "
            "(column values). A dict: `col_status`, `row_status` (HiGHS codes 0 lower, "
            "1 basic, 2 upper), its dual `objective` and `row_dual` multipliers, its primal "
            "point `col_value` and that point's largest bound `violation` over the basic rows "
            "and columns (<= the primal tolerance: the basis is optimal).")
        .def(
            "alpha_hints",
            [](const LpRelaxation& R, const std::vector<Index>& idx, const F64Array& costs,
               int iterations, double step) {
                if (costs.ndim() != 2 || static_cast<std::size_t>(costs.shape(1)) != idx.size())
                    throw std::invalid_argument("alpha_hints: costs must be a (k, " +
                                                std::to_string(idx.size()) +
                                                ") array, one row per objective");
                const auto n_obj = static_cast<std::size_t>(costs.shape(0));
                py::array_t<double> hints({static_cast<py::ssize_t>(n_obj),
                                           static_cast<py::ssize_t>(R.n_cols())});
                double* out = hints.mutable_data();
                {
                    py::gil_scoped_release release;
                    R.alpha_hints(idx, costs.data(), n_obj, iterations, step, out);
                }
                return hints;
            },
            py::arg("cost_indices"), py::arg("costs"), py::arg("iterations") = 100,
            py::arg("step") = 1.0,
            "Hint rows for dual_feasible_basis, one per row of `costs` (objectives min "
            "costs.x over cost_indices): the lower sides of optimised CROWN slopes "
            "(alpha-CROWN, `iterations` projected Adam steps of size `step`).");
    m.def(
        "safe_lower_bound",
        [](const std::vector<double>& cost, const std::vector<double>& col_lower,
           const std::vector<double>& col_upper, const std::vector<double>& row_lower,
           const std::vector<double>& row_upper, const std::vector<Index>& starts,
           const std::vector<Index>& indices, const std::vector<double>& values,
           const F64Array& y) {
            const std::size_t n = cost.size(), m_rows = row_lower.size();
            if (col_lower.size() != n || col_upper.size() != n)
                throw std::invalid_argument("safe_lower_bound: cost and column bounds differ in length");
            if (row_upper.size() != m_rows || starts.size() != m_rows + 1 ||
                static_cast<std::size_t>(y.size()) != m_rows)
                throw std::invalid_argument("safe_lower_bound: rows, starts (rows + 1) and y differ in length");
            if (indices.size() != values.size() ||
                static_cast<std::size_t>(starts.back()) != indices.size())
                throw std::invalid_argument("safe_lower_bound: CSR indices and values do not match starts");
            for (Index j : indices)
                if (j < 0 || static_cast<std::size_t>(j) >= n)
                    throw std::invalid_argument("safe_lower_bound: column index out of range");
            py::gil_scoped_release release;
            return safe_lower_bound(cost, col_lower, col_upper, row_lower, row_upper, starts,
                                    indices, values, y.data());
        },
        py::arg("cost"), py::arg("col_lower"), py::arg("col_upper"), py::arg("row_lower"),
        py::arg("row_upper"), py::arg("starts"), py::arg("indices"), py::arg("values"),
        py::arg("y"),
        "A rigorous lower bound of min cost.x over row_lower <= A x <= row_upper (A in CSR) "
        "and the column bounds, from any row multipliers y (Neumaier-Shcherbina, widened by "
        "its float64 rounding error).");
}

}  // namespace emlpress::py_glue
