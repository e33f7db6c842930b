#include <pybind11/eigen.h>
#include <pybind11/stl.h>

#include "emlpress/bigm.hpp"
#include "pynet.hpp"

namespace emlpress::py_glue {

void register_bigm(py::module_& m) {
    m.def(
        "bigm_network",
        [](const PyNet& net, const std::vector<Vec>& lower, const std::vector<Vec>& upper,
           const std::vector<Index>& input_cols, Index first_col) {
            BigMBlock B;
            {
                py::gil_scoped_release release;
                B = bigm_network(net.view(), lower, upper, input_cols, first_col);
            }
            py::dict d = block_dict(B.rows);
            py::list units, bins, pres;
            for (const auto& c : B.unit_cols) units.append(as_array(c));
            for (const auto& c : B.binary_cols) bins.append(as_array(c));
            for (const auto& c : B.pre_cols) pres.append(as_array(c));
            d["unit_cols"] = units;
            d["binary_cols"] = bins;
            d["pre_cols"] = pres;
            return d;
        },
        py::arg("net"), py::arg("lower"), py::arg("upper"), py::arg("input_cols"),
        py::arg("first_col"),
        "Big-M encoding of the whole network: columns, CSR rows, binaries per layer.");
}

}  // namespace emlpress::py_glue
