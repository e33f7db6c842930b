#include <pybind11/eigen.h>
#include <pybind11/stl.h>

#include "emlpress/lossless.hpp"
#include "pynet.hpp"

namespace emlpress::py_glue {

void register_lossless(py::module_& m) {
    m.def(
        "fold_layer",
        [](const CRef& W, const VRef& b, const CRef& V, const VRef& c, const VRef& lower,
           const VRef& upper, const VRef& xabs, double rel_tol) {
            const Eigen::Index n = W.rows();
            if (b.size() != n || lower.size() != n || upper.size() != n || V.cols() != n ||
                c.size() != V.rows() || xabs.size() != W.cols())
                throw std::invalid_argument("fold_layer: inconsistent shapes");
            LayerFold f;
            {
                py::gil_scoped_release release;
                f = fold_layer(W, b, V, c, lower, upper, xabs, rel_tol);
            }
            py::dict d;
            d["W"] = f.W;
            d["b"] = f.b;
            d["V"] = f.V;
            d["c"] = f.c;
            d["kept"] = f.kept;
            d["n_inactive"] = f.n_inactive;
            d["n_zero"] = f.n_zero;
            d["n_dependent"] = f.n_dependent;
            d["any_unstable"] = f.any_unstable;
            d["resid"] = f.resid;
            return d;
        },
        py::arg("W"), py::arg("b"), py::arg("V"), py::arg("c"), py::arg("lower"),
        py::arg("upper"), py::arg("xabs"), py::arg("rel_tol"));
    m.def(
        "merge_affine",
        [](const CRef& W, const VRef& b, const CRef& V, const VRef& c, const VRef& xabs) {
            if (V.cols() != W.rows() || b.size() != W.rows() || c.size() != V.rows() ||
                xabs.size() != W.cols())
                throw std::invalid_argument("merge_affine: inconsistent shapes");
            RowMat Wo;
            Vec bo, err;
            {
                py::gil_scoped_release release;
                merge_affine(W, b, V, c, xabs, Wo, bo, err);
            }
            return py::make_tuple(Wo, bo, err);
        },
        py::arg("W"), py::arg("b"), py::arg("V"), py::arg("c"), py::arg("xabs"));
}

}  // namespace emlpress::py_glue
