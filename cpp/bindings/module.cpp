#include "emlpress/parallel.hpp"
#include "pynet.hpp"

PYBIND11_MODULE(_core, m) {
    m.doc() = "emlpress C++ kernels (use the emlpress package, not this module)";
    m.def("set_num_threads", &emlpress::set_num_threads, pybind11::arg("n"),
          "Threads used by the kernels (0: all cores).");
    m.def("num_threads", &emlpress::num_threads);
    emlpress::py_glue::register_network(m);
    emlpress::py_glue::register_bounds(m);
    emlpress::py_glue::register_lp(m);
    emlpress::py_glue::register_lossless(m);
    emlpress::py_glue::register_bigm(m);
}
