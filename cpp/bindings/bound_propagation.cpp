#include <pybind11/eigen.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <utility>

#include "emlpress/bound_propagation.hpp"
#include "glue.hpp"

namespace emlpress::py_glue {

namespace {
using ClipArg = std::pair<std::vector<Vec>, std::vector<Vec>>;

LayerBounds to_layer_bounds(const ClipArg& c) { return LayerBounds{c.first, c.second}; }
}  // namespace

void register_bound_propagation(py::module_& m) {
    py::class_<LinearBounds>(m, "LinearBounds", R"doc(
CROWN's linear bounds of some units of a layer over the inputs x (crown_linear): for every
input of the domain, AL @ x + cL - slack <= z <= AU @ x + cU + slack, row p for unit p.

``AL``, ``AU`` (float64, (units, n_in)); ``cL``, ``cU``, ``slack`` (float64, (units,)), in the
units of the layer's pre-activations. Read-only arrays sharing the object's memory.)doc")
        .def_readonly("AU", &LinearBounds::AU, "Upper bounds' coefficients (float64, (units, n_in)).")
        .def_readonly("cU", &LinearBounds::cU, "Upper bounds' constants (float64, (units,)).")
        .def_readonly("AL", &LinearBounds::AL, "Lower bounds' coefficients (float64, (units, n_in)).")
        .def_readonly("cL", &LinearBounds::cL, "Lower bounds' constants (float64, (units,)).")
        .def_readonly("slack", &LinearBounds::slack,
                      "Rounding slack of each unit, both sides (float64, (units,)).")
        .def("__repr__", [](const LinearBounds& L) {
            return "LinearBounds(" + std::to_string(L.AU.rows()) + " units over " +
                   std::to_string(L.AU.cols()) + " inputs)";
        });
    m.def(
        "interval",
        [](const PyNet& net, const Vec& lo, const Vec& hi) {
            LayerBounds B;
            {
                py::gil_scoped_release release;
                B = interval(net.view(), lo, hi);
            }
            return to_python(B);
        },
        py::arg("net"), py::arg("lo"), py::arg("hi"),
        "Interval-arithmetic bounds over the box [lo, hi] (n_in,): (lower, upper), each a tuple "
        "of one float64 array per layer (its units' pre-activations, the last the output).");
    m.def(
        "crown",
        [](const PyNet& net, const Vec& lo, const Vec& hi, std::optional<ClipArg> clip,
           std::optional<std::pair<Vec, double>> l1) {
            LayerBounds B;
            const LayerBounds C = clip ? to_layer_bounds(*clip) : LayerBounds{};
            L1Ball ball;
            if (l1) ball = L1Ball{l1->first, l1->second};
            {
                py::gil_scoped_release release;
                B = crown(net.view(), lo, hi, clip ? &C : nullptr, l1 ? &ball : nullptr);
            }
            return to_python(B);
        },
        py::arg("net"), py::arg("lo"), py::arg("hi"), py::arg("clip") = py::none(),
        py::arg("l1") = py::none(),
        "CROWN bounds over [lo, hi] as interval's (lower, upper); clip = (lower, upper), per layer, bounds known to hold "
        "on a box containing it, intersected at every layer; l1 = (center, eps): the inputs "
        "also satisfy ||x - center||_1 <= eps, each linear bound concretised over that ball "
        "too (dual norm) and the tighter kept.");
    m.def(
        "crown_linear",
        [](const PyNet& net, const Vec& lo, const Vec& hi, const ClipArg& given, int k,
           const std::vector<Eigen::Index>& idx) {
            const LayerBounds G = to_layer_bounds(given);
            LinearBounds L;
            {
                py::gil_scoped_release release;
                L = crown_linear(net.view(), lo, hi, G, k, idx);
            }
            return L;
        },
        py::arg("net"), py::arg("lo"), py::arg("hi"), py::arg("given"), py::arg("layer"),
        py::arg("units"),
        "CROWN's linear bounds of `units` of `layer` over the inputs, through the relaxations "
        "of `given` = (lower, upper) per earlier layer: AL x + cL - slack <= z <= AU x + cU + "
        "slack on [lo, hi] (a LinearBounds).");
    m.def(
        "crown_boxes",
        [](const PyNet& net, const RowMat& LO, const RowMat& HI, std::optional<ClipArg> clip,
           std::optional<std::pair<RowMat, RowMat>> box_clip) {
            BoxBounds B;
            const LayerBounds C = clip ? to_layer_bounds(*clip) : LayerBounds{};
            BoxBounds BC;
            if (box_clip) BC = BoxBounds{std::move(box_clip->first), std::move(box_clip->second)};
            {
                py::gil_scoped_release release;
                B = crown_boxes(net.view(), LO, HI, clip ? &C : nullptr, box_clip ? &BC : nullptr);
            }
            return py::make_tuple(std::move(B.lower), std::move(B.upper));
        },
        py::arg("net"), py::arg("LO"), py::arg("HI"), py::arg("clip") = py::none(),
        py::arg("box_clip") = py::none(),
        "CROWN on each box [LO[r], HI[r]] (boxes over threads): (lower, upper) of shape "
        "(B, total units), the layers' units side by side. clip: per layer, bounds holding on "
        "every box; box_clip: (lower, upper) of that shape, row r holding on box r.");
}

}  // namespace emlpress::py_glue
