#include <pybind11/eigen.h>
#include <pybind11/stl.h>

#include <string>

#include "emlpress/forward.hpp"
#include "glue.hpp"

namespace emlpress::py_glue {

void register_network(py::module_& m) {
    py::class_<PyNet>(m, "Net", R"doc(
A network as the kernels see it: weights[l] (float64, (n_out, n_in)) and biases[l] (n_out,),
ReLU after every layer but the last; it keeps the arrays alive and reads them in place.)doc")
        .def(py::init<std::vector<F64Array>, std::vector<F64Array>>(), py::arg("weights"),
             py::arg("biases"))
        .def("__repr__", [](const PyNet& net) {
            const NetworkView& v = net.view();
            std::string sizes = std::to_string(v.n_in());
            for (int l = 0; l < v.n_layers(); ++l) sizes += "-" + std::to_string(v.width(l));
            return "Net(" + sizes + ")";
        });
    m.def(
        "forward",
        [](const PyNet& net, const Eigen::Ref<const RowMat>& X) {
            if (X.cols() != net.view().n_in())
                throw std::invalid_argument("input has " + std::to_string(X.cols()) +
                                            " columns, the network expects " +
                                            std::to_string(net.view().n_in()));
            py::gil_scoped_release release;
            return forward(net.view(), X);
        },
        py::arg("net"), py::arg("X"),
        "The network's outputs (n, n_out) for a batch X (n, n_in), float64.");
    m.def(
        "preactivations",
        [](const PyNet& net, const Eigen::Ref<const RowMat>& X) {
            if (X.cols() != net.view().n_in())
                throw std::invalid_argument("input has the wrong number of columns");
            py::gil_scoped_release release;
            return preactivations(net.view(), X);
        },
        py::arg("net"), py::arg("X"),
        "Every layer's pre-activations for a batch X (n, n_in): a list of (n, width(l)) float64 "
        "arrays, the last the outputs.");
}

}  // namespace emlpress::py_glue
