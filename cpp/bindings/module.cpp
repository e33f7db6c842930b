#include <string>

#include "emlpress/parallel.hpp"
#include "emlpress_build_info.hpp"
#include "glue.hpp"

namespace {

// The instruction sets the compiler was allowed to use (what -march=native resolved to).
pybind11::list compiled_isa() {
    pybind11::list isa;
#ifdef __SSE4_2__
    isa.append("sse4.2");
#endif
#ifdef __AVX__
    isa.append("avx");
#endif
#ifdef __AVX2__
    isa.append("avx2");
#endif
#ifdef __FMA__
    isa.append("fma");
#endif
#ifdef __AVX512F__
    isa.append("avx512f");
#endif
#ifdef __ARM_NEON
    isa.append("neon");
#endif
    return isa;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "emlpress C++ kernels (use the emlpress package, not this module)";
    m.def("set_num_threads", &emlpress::set_num_threads, pybind11::arg("n"),
          "Threads used by the kernels (0: all cores).");
    m.def("num_threads", &emlpress::num_threads,
          "Threads the kernels use (the value set, or all cores).");
    pybind11::dict info;
    info["compiler"] = EMLPRESS_BUILD_COMPILER;
    info["build_type"] = EMLPRESS_BUILD_TYPE;
    info["flags"] = EMLPRESS_BUILD_FLAGS;
    info["isa"] = compiled_isa();
    m.attr("build_info") = info;
    emlpress::py_glue::register_network(m);
    emlpress::py_glue::register_bound_propagation(m);
    emlpress::py_glue::register_lp_relaxation(m);  // LpBlock, before BigMBlock derives from it
    emlpress::py_glue::register_lossless(m);
    emlpress::py_glue::register_bigm(m);
}
