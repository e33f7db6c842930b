// Shared by the binding files: a compiled network that keeps its numpy arrays alive and
// exposes a NetworkView over them without copying, and the helpers that give results'
// arrays to numpy (copies, or read-only views owned by the result object).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "emlpress/network.hpp"

namespace emlpress::py_glue {

namespace py = pybind11;
using F64Array = py::array_t<double, py::array::c_style | py::array::forcecast>;

class PyNet {
  public:
    PyNet(std::vector<F64Array> W, std::vector<F64Array> b) : W_(std::move(W)), b_(std::move(b)) {
        if (W_.empty() || W_.size() != b_.size())
            throw std::invalid_argument("need as many bias vectors as weight matrices (>= 1)");
        for (std::size_t l = 0; l < W_.size(); ++l) {
            if (W_[l].ndim() != 2 || b_[l].ndim() != 1 || b_[l].shape(0) != W_[l].shape(0))
                throw std::invalid_argument("layer " + std::to_string(l) + ": bad shapes");
            if (l > 0 && W_[l].shape(1) != W_[l - 1].shape(0))
                throw std::invalid_argument("layer " + std::to_string(l) + ": shapes do not chain");
            view_.add_layer(W_[l].data(), W_[l].shape(0), W_[l].shape(1), b_[l].data());
        }
    }
    const NetworkView& view() const { return view_; }

  private:
    std::vector<F64Array> W_, b_;
    NetworkView view_;
};

// Convert LayerBounds to a pair of tuples of numpy vectors (the layout of Bounds).
inline py::tuple to_python(const LayerBounds& B) {
    const auto n = B.lower.size();
    py::tuple lower(n), upper(n);
    for (std::size_t k = 0; k < n; ++k) {
        lower[k] = py::array_t<double>(B.lower[k].size(), B.lower[k].data());
        upper[k] = py::array_t<double>(B.upper[k].size(), B.upper[k].data());
    }
    return py::make_tuple(lower, upper);
}

// Copy of a std::vector as a numpy array.
template <class T>
inline py::array_t<T> as_array(const std::vector<T>& v) {
    return py::array_t<T>(static_cast<py::ssize_t>(v.size()), v.data());
}

// A read-only numpy view of `v`, no copy: `owner` (the Python object holding v, immutable
// from Python) is the array's base and lives as long as the view.
template <class T>
inline py::array_t<T> view(const std::vector<T>& v, py::handle owner) {
    py::array_t<T> a(static_cast<py::ssize_t>(v.size()), v.data(), owner);
    // as pybind11's own Eigen views do: a Python-level flags.writeable = False costs 4 us
    py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return a;
}

// A read-only property of class `cls` giving the std::vector `member` as a numpy view.
template <class Class, class Owner, class T>
void vector_property(Class& cls, const char* name, std::vector<T> Owner::*member, const char* doc) {
    cls.def_property_readonly(
        name, [member](py::object self) { return view(self.cast<const Owner&>().*member, self); },
        doc);
}

// In this order (module.cpp): LpBlock (register_lp_relaxation) before BigMBlock, its subclass.
void register_network(py::module_& m);
void register_bound_propagation(py::module_& m);
void register_lp_relaxation(py::module_& m);
void register_lossless(py::module_& m);
void register_bigm(py::module_& m);

}  // namespace emlpress::py_glue
