#include <pybind11/eigen.h>
#include <pybind11/stl.h>

#include <string>

#include "emlpress/lossless.hpp"
#include "glue.hpp"

namespace emlpress::py_glue {

void register_lossless(py::module_& m) {
    py::class_<LayerFold> fold(m, "LayerFold", R"doc(
One hidden layer compressed and folded into the next (fold_layer; lossless.hpp).

``W`` (float64, (kept, n_in)) and ``b`` (kept,): the layer's kept units; ``V`` (float64,
(n_next, kept)) and ``c`` (n_next,): the next layer with the folding applied; ``kept``
(int64, (kept,)): the kept units' indices, increasing; ``n_inactive``, ``n_zero``,
``n_dependent``: units removed as stably inactive, with zero weights, folded as dependent;
``any_unstable``: False when the compressed layer is affine on the box; ``resid`` (float64,
(n_next,)): a rigorous bound on |z'_orig - z'_comp| per next-layer unit, in the units of
its pre-activations. Read-only arrays sharing the object's memory.)doc");
    vector_property(fold, "kept", &LayerFold::kept, "Kept unit indices, increasing (int64, (kept,)).");
    fold.def_readonly("W", &LayerFold::W, "Kept rows of the layer (float64, (kept, n_in)).")
        .def_readonly("b", &LayerFold::b, "Their biases (float64, (kept,)).")
        .def_readonly("V", &LayerFold::V, "Next layer's weights, folded (float64, (n_next, kept)).")
        .def_readonly("c", &LayerFold::c, "Next layer's biases, folded (float64, (n_next,)).")
        .def_readonly("n_inactive", &LayerFold::n_inactive, "Units removed as stably inactive (int).")
        .def_readonly("n_zero", &LayerFold::n_zero, "Units removed for their zero weights (int).")
        .def_readonly("n_dependent", &LayerFold::n_dependent, "Units folded as dependent (int).")
        .def_readonly("any_unstable", &LayerFold::any_unstable,
                      "False when the compressed layer is affine on the box (bool).")
        .def_readonly("resid", &LayerFold::resid,
                      "Bound on |z'_orig - z'_comp| per next-layer unit (float64, (n_next,)).")
        .def("__repr__", [](const LayerFold& f) {
            return "LayerFold(" + std::to_string(f.kept.size()) + " units kept, " +
                   std::to_string(f.n_inactive) + " inactive, " + std::to_string(f.n_zero) +
                   " zero, " + std::to_string(f.n_dependent) + " dependent" +
                   (f.any_unstable ? ")" : ", affine)");
        });
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
            return f;
        },
        py::arg("W"), py::arg("b"), py::arg("V"), py::arg("c"), py::arg("lower"),
        py::arg("upper"), py::arg("xabs"), py::arg("rel_tol"),
        "Compress hidden layer (W (n, n_in), b (n,)) with pre-activation bounds lower, upper (n,) "
        "and fold it into the next layer (V (m, n), c (m,)), exact for inputs |x| <= xabs (n_in,): "
        "removes stably inactive and zero-weight units and stably active units whose rows depend "
        "on the kept ones (relative tolerance rel_tol; < 0 folds nothing). A LayerFold.");
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
        py::arg("W"), py::arg("b"), py::arg("V"), py::arg("c"), py::arg("xabs"),
        "(V, c) o (W, b) for a layer affine on the box: (W' (m, n_in), b' (m,), err (m,)), err "
        "bounding the rounding of the product for inputs |x| <= xabs (n_in,).");
}

}  // namespace emlpress::py_glue
