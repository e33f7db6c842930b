// Non-owning view of a dense ReLU network: weights (n_out, n_in) row-major,
// ReLU after every layer but the last. The kernels never own or copy weights.
#pragma once

#include <algorithm>
#include <Eigen/Dense>
#include <stdexcept>
#include <string>
#include <vector>

namespace emlpress {

using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vec = Eigen::VectorXd;
using MatMap = Eigen::Map<const RowMat>;
using VecMap = Eigen::Map<const Vec>;

struct NetworkView {
    std::vector<MatMap> W;
    std::vector<VecMap> b;
    // Per-row L1 norms of W (sum |W_ij|), computed once: the rounding slack of every
    // bound is ||W_i||_1 * max_j |x_j| + |b_i| times gamma (see rounding.hpp).
    std::vector<Vec> row_l1;
    // max(1, max |W_ij| times the larger dimension of W), computed once: it bounds every
    // induced norm of W, so how much W can amplify an absolute (subnormal) rounding error.
    std::vector<double> amplification;

    void add_layer(const double* W_data, Eigen::Index n_out, Eigen::Index n_in,
                   const double* b_data) {
        W.emplace_back(W_data, n_out, n_in);
        b.emplace_back(b_data, n_out);
        row_l1.push_back(W.back().cwiseAbs().rowwise().sum());
        const double dim = static_cast<double>(std::max(n_out, n_in));
        amplification.push_back(
            std::max(1.0, (W.back().size() ? W.back().cwiseAbs().maxCoeff() : 0.0) * dim));
    }

    int n_layers() const { return static_cast<int>(W.size()); }
    Eigen::Index n_in() const { return W.front().cols(); }
    Eigen::Index n_out() const { return W.back().rows(); }
    Eigen::Index width(int l) const { return W[l].rows(); }
};

// Pre-activation bounds per layer; layer L-1 is the (linear) network output.
struct LayerBounds {
    std::vector<Vec> lower;
    std::vector<Vec> upper;
};

}  // namespace emlpress
