#include <pybind11/eigen.h>
#include <pybind11/stl.h>

#include <string>

#include "emlpress/bigm.hpp"
#include "glue.hpp"

namespace emlpress::py_glue {

namespace {
// Copies, per layer: a few columns each, and a handle keeping them must not keep the
// whole block's rows alive.
py::list layer_arrays(const std::vector<std::vector<Index>>& per_layer) {
    py::list out;
    for (const auto& c : per_layer) out.append(as_array(c));
    return out;
}
}  // namespace

void register_bigm(py::module_& m) {
    py::class_<BigMBlock, LpBlock>(m, "BigMBlock", R"doc(
The big-M MILP encoding of a whole network (bigm_network): its columns and CSR rows as an
LpBlock (``binary`` the unstable units' phase columns), and where each unit's variables are.

``unit_cols``: per layer (hidden layers, then the output), the model column of each unit's
output (int32, (units,); -1: none, the unit is stably inactive). ``binary_cols`` and
``pre_cols``: per hidden layer, each unit's binary column and pre-activation column z
(int32, (units,); -1 unless the unit is unstable). Lists of new arrays.)doc")
        .def_property_readonly(
            "unit_cols", [](const BigMBlock& B) { return layer_arrays(B.unit_cols); },
            "Per layer, the column of each unit's output, -1: none (list of int32 arrays).")
        .def_property_readonly(
            "binary_cols", [](const BigMBlock& B) { return layer_arrays(B.binary_cols); },
            "Per hidden layer, each unit's binary column, -1: none (list of int32 arrays).")
        .def_property_readonly(
            "pre_cols", [](const BigMBlock& B) { return layer_arrays(B.pre_cols); },
            "Per hidden layer, each unit's pre-activation column, -1: none (list of int32 arrays).")
        .def("__repr__", [](const BigMBlock& B) {
            return "BigMBlock(" + std::to_string(B.unit_cols.size()) + " layers, " +
                   std::to_string(B.col_lower.size()) + " columns, " +
                   std::to_string(B.binary.size()) + " binary, " +
                   std::to_string(B.row_lower.size()) + " rows, " +
                   std::to_string(B.values.size()) + " nonzeros)";
        });
    m.def(
        "bigm_network",
        [](const PyNet& net, const std::vector<Vec>& lower, const std::vector<Vec>& upper,
           const std::vector<Index>& input_cols, Index first_col) {
            BigMBlock B;
            {
                py::gil_scoped_release release;
                B = bigm_network(net.view(), lower, upper, input_cols, first_col);
            }
            return B;
        },
        py::arg("net"), py::arg("lower"), py::arg("upper"), py::arg("input_cols"),
        py::arg("first_col"),
        "Big-M encoding of the whole network (a BigMBlock): columns, CSR rows, binaries per layer.");
}

}  // namespace emlpress::py_glue
