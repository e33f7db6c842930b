#include <pybind11/eigen.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "emlpress/lp_relaxation.hpp"
#include "glue.hpp"

namespace emlpress::py_glue {

namespace {
using I32Array = py::array_t<Index, py::array::c_style | py::array::forcecast>;

template <class T>
std::vector<T> to_vector(const py::array_t<T, py::array::c_style | py::array::forcecast>& a) {
    if (a.ndim() != 1) throw std::invalid_argument("LpBlock: arrays must be 1-D");
    return std::vector<T>(a.data(), a.data() + a.size());
}

// The result of LpRelaxation.dual_feasible_basis (the kernel writes through pointers).
struct StartingBasis {
    std::vector<std::int8_t> col_status, row_status;
    std::vector<double> row_dual, col_value;
    double objective = 0.0, violation = 0.0;
};
}  // namespace

void register_lp_relaxation(py::module_& m) {
    py::class_<LpBlock> block(m, "LpBlock", R"doc(
Columns and CSR rows to append to a HiGHS model in one addCols and one addRows call.

Columns are numbered after the model's existing ones: ``col_lower``, ``col_upper`` (float64,
(n_cols,)) their bounds, ``binary`` (int32) the model column of each integer column. Rows:
``row_lower``, ``row_upper`` (float64, (n_rows,)), ``starts`` (int32, (n_rows + 1,), CSR, first
0), ``indices`` (int32, (nnz,), model columns) and ``values`` (float64, (nnz,)). ``cols``
(int32): per unit of the layer added, its output's model column, -1 for none (stably
inactive, or substituted); empty for a block of the input domain or built in Python.
Read-only arrays sharing the block's memory.)doc");
    block
        .def(py::init([](const F64Array& col_lower, const F64Array& col_upper,
                         const F64Array& row_lower, const F64Array& row_upper,
                         const I32Array& starts, const I32Array& indices, const F64Array& values,
                         const std::optional<I32Array>& binary,
                         const std::optional<I32Array>& cols) {
                 LpBlock B;
                 B.col_lower = to_vector(col_lower);
                 B.col_upper = to_vector(col_upper);
                 B.row_lower = to_vector(row_lower);
                 B.row_upper = to_vector(row_upper);
                 B.starts = to_vector(starts);
                 B.indices = to_vector(indices);
                 B.values = to_vector(values);
                 if (binary) B.binary = to_vector(*binary);
                 if (cols) B.cols = to_vector(*cols);
                 if (B.col_lower.size() != B.col_upper.size())
                     throw std::invalid_argument("LpBlock: col_lower and col_upper differ in length");
                 if (B.row_lower.size() != B.row_upper.size() ||
                     B.starts.size() != B.row_lower.size() + 1)
                     throw std::invalid_argument(
                         "LpBlock: row_lower, row_upper and starts (rows + 1) differ in length");
                 if (B.indices.size() != B.values.size() ||
                     static_cast<std::size_t>(B.starts.back()) != B.indices.size())
                     throw std::invalid_argument("LpBlock: indices and values do not match starts");
                 return B;
             }),
             py::arg("col_lower"), py::arg("col_upper"), py::arg("row_lower"),
             py::arg("row_upper"), py::arg("starts"), py::arg("indices"), py::arg("values"),
             py::arg("binary") = py::none(), py::arg("cols") = py::none(),
             "A block from arrays (an encoding written in Python), copied.")
        .def("__repr__", [](const LpBlock& B) {
            return "LpBlock(" + std::to_string(B.col_lower.size()) + " columns, " +
                   std::to_string(B.binary.size()) + " binary, " +
                   std::to_string(B.row_lower.size()) + " rows, " +
                   std::to_string(B.values.size()) + " nonzeros)";
        });
    vector_property(block, "cols", &LpBlock::cols, "Model column of each unit's output, -1: none (int32, (units,)).");
    vector_property(block, "binary", &LpBlock::binary, "Model columns that are integer (int32).");
    vector_property(block, "col_lower", &LpBlock::col_lower, "Lower bounds of the new columns (float64, (n_cols,)).");
    vector_property(block, "col_upper", &LpBlock::col_upper, "Upper bounds of the new columns (float64, (n_cols,)).");
    vector_property(block, "row_lower", &LpBlock::row_lower, "Lower sides of the rows (float64, (n_rows,)).");
    vector_property(block, "row_upper", &LpBlock::row_upper, "Upper sides of the rows (float64, (n_rows,)).");
    vector_property(block, "starts", &LpBlock::starts, "CSR row starts (int32, (n_rows + 1,), first 0).");
    vector_property(block, "indices", &LpBlock::indices, "CSR model columns (int32, (nnz,)).");
    vector_property(block, "values", &LpBlock::values, "CSR coefficients (float64, (nnz,)).");

    py::class_<Affine> affine(m, "Affine", R"doc(
A layer's pre-activations as affine functions of LP columns (LpRelaxation.pre_activation):
z = A @ v[ref] + c, with |z - (A @ v[ref] + c)| <= err at every point of the network (the
float64 rounding of substituted layers; 0 when nothing was substituted).

``ref`` (int32, (k,)) the LP columns, ``A`` (float64, (units, k)), ``c`` and ``err`` (float64,
(units,)), in the units of the layer's pre-activations. Read-only arrays sharing the
object's memory.)doc");
    vector_property(affine, "ref", &Affine::ref, "LP columns the columns of A refer to (int32, (k,)).");
    affine.def_readonly("A", &Affine::A, "Coefficients (float64, (units, k)).")
        .def_readonly("c", &Affine::c, "Constant terms (float64, (units,)).")
        .def_readonly("err", &Affine::err, "Bound on the rounding error (float64, (units,)).")
        .def("__repr__", [](const Affine& Z) {
            return "Affine(" + std::to_string(Z.A.rows()) + " units over " +
                   std::to_string(Z.ref.size()) + " columns)";
        });

    py::class_<StartingBasis> start(m, "StartingBasis", R"doc(
A dual feasible starting basis for min cost.x over the relaxation
(LpRelaxation.dual_feasible_basis).

``col_status`` (int8, (n_cols,)) and ``row_status`` (int8, (n_rows,)) in HiGHS' codes (0 at
lower, 1 basic, 2 at upper); ``row_dual`` (float64, (n_rows,)) its row multipliers (HiGHS'
sign convention); ``objective`` its dual objective (the objective's units); ``col_value``
(float64, (n_cols,)) its primal point and ``violation`` that point's largest bound violation
over the basic rows and columns (<= the primal tolerance: the basis is optimal). Read-only
arrays sharing the object's memory.)doc");
    vector_property(start, "col_status", &StartingBasis::col_status, "HiGHS status of each column (int8, (n_cols,)).");
    vector_property(start, "row_status", &StartingBasis::row_status, "HiGHS status of each row (int8, (n_rows,)).");
    vector_property(start, "row_dual", &StartingBasis::row_dual, "Row multipliers (float64, (n_rows,)).");
    vector_property(start, "col_value", &StartingBasis::col_value, "Primal point (float64, (n_cols,)).");
    start.def_readonly("objective", &StartingBasis::objective, "Dual objective (float).")
        .def_readonly("violation", &StartingBasis::violation,
                      "Largest bound violation of the primal point (float).")
        .def("__repr__", [](const StartingBasis& S) {
            return "StartingBasis(objective=" + py::repr(py::float_(S.objective)).cast<std::string>() +
                   ", violation=" + py::repr(py::float_(S.violation)).cast<std::string>() + ", " +
                   std::to_string(S.col_status.size()) + " columns, " +
                   std::to_string(S.row_status.size()) + " rows)";
        });

    py::class_<LpRelaxation>(m, "LpRelaxation", R"doc(
The LP relaxation of a ReLU network over the box [lo, hi], built one hidden layer at a time
(triangle relaxation of every unstable unit, exact substitution of stable ones; with
``integer``, big-M rows and a binary per unstable unit instead of the triangle's upper side).
It keeps a CSR copy of its rows so that safe_bound certifies any LP value from its duals.)doc")
        .def(py::init([](const F64Array& lo, const F64Array& hi, bool integer) {
                 return LpRelaxation(Eigen::Map<const Vec>(lo.data(), lo.size()),
                                     Eigen::Map<const Vec>(hi.data(), hi.size()), integer);
             }),
             py::arg("lo"), py::arg("hi"), py::arg("integer") = false,
             "The relaxation over the box [lo, hi] (n_in,): its input columns, no rows yet.")
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
                LpBlock B;
                {
                    py::gil_scoped_release release;
                    B = R.add_layer(v, j, l, u);  // a copy: the store reuses its last block
                }
                return B;
            },
            py::arg("net"), py::arg("layer"), py::arg("lower"), py::arg("upper"),
            "Adds hidden layer `layer` (the next one) with its units' pre-activation bounds "
            "lower, upper (width,); returns the new columns and rows as an LpBlock.")
        .def(
            "add_domain",
            [](LpRelaxation& R, const std::vector<double>& aux_lower,
               const std::vector<double>& aux_upper, const std::vector<double>& row_lower,
               const std::vector<double>& row_upper, const std::vector<Index>& starts,
               const std::vector<Index>& indices, const std::vector<double>& values) {
                return LpBlock(R.add_domain(aux_lower, aux_upper, row_lower, row_upper, starts,
                                            indices, values));
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
                return Z;
            },
            py::arg("net"), py::arg("layer"),
            "Layer `layer`'s pre-activations as A v[ref] + c (|error| <= err) over the LP columns "
            "(an Affine).")
        .def_property_readonly("n_layers", &LpRelaxation::n_layers, "Hidden layers added (int).")
        .def_property_readonly("n_cols", &LpRelaxation::n_cols, "Columns so far (int).")
        .def_property_readonly("n_rows", &LpRelaxation::n_rows, "Rows so far (int).")
        .def("__repr__", [](const LpRelaxation& R) {
            return "LpRelaxation(" + std::to_string(R.n_layers()) + " hidden layers, " +
                   std::to_string(R.n_cols()) + " columns, " + std::to_string(R.n_rows()) +
                   " rows)";
        })
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
                const auto nc = static_cast<std::size_t>(R.n_cols());
                const auto nr = static_cast<std::size_t>(R.n_rows());
                StartingBasis S{std::vector<std::int8_t>(nc), std::vector<std::int8_t>(nr),
                                std::vector<double>(nr), std::vector<double>(nc)};
                const double* h = hints ? hints->data() : nullptr;
                {
                    py::gil_scoped_release release;
                    const LpRelaxation::Start start =
                        R.dual_feasible_basis(idx, val, h, n_hints, S.col_status.data(),
                                              S.row_status.data(), S.row_dual.data(),
                                              S.col_value.data());
                    S.objective = start.objective;
                    S.violation = start.violation;
                }
                return S;
            },
            py::arg("cost_indices"), py::arg("cost_values"), py::arg("hints") = py::none(),
            "A dual feasible starting basis for min cost.x from CROWN's backward pass over the "
            "rows: the best of CROWN's own lower sides and those of each row of `hints` "
            "(column values), as a StartingBasis.")
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
