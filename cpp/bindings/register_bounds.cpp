#include <pybind11/eigen.h>
#include <pybind11/stl.h>

#include "emlpress/bounds.hpp"
#include "pynet.hpp"

namespace emlpress::py_glue {

void register_bounds(py::module_& m) {
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
        py::arg("net"), py::arg("lo"), py::arg("hi"));
    m.def(
        "crown",
        [](const PyNet& net, const Vec& lo, const Vec& hi) {
            LayerBounds B;
            {
                py::gil_scoped_release release;
                B = crown(net.view(), lo, hi);
            }
            return to_python(B);
        },
        py::arg("net"), py::arg("lo"), py::arg("hi"));
}

}  // namespace emlpress::py_glue
