#include "emlpress/bigm.hpp"

#include <stdexcept>
#include <string>

namespace emlpress {

namespace {
// x - W_i a_prev in [lo, hi], over the nonzero weights with a column on the previous layer
void affine_row(BlockWriter& w, Index x, const MatMap& W, Eigen::Index i,
                const std::vector<Index>& prev, double lo, double hi) {
    w.entry(x, 1.0);
    const double* row = W.data() + i * W.cols();
    for (Eigen::Index q = 0; q < W.cols(); ++q) {
        const Index pc = prev[static_cast<std::size_t>(q)];
        if (pc >= 0 && row[q] != 0.0) w.entry(pc, -row[q]);
    }
    w.end_row(lo, hi);
}
}  // namespace

BigMBlock bigm_network(const NetworkView& net, const std::vector<Vec>& lower,
                       const std::vector<Vec>& upper, const std::vector<Index>& input_cols,
                       Index first_col) {
    const int L = net.n_layers();
    if (static_cast<int>(lower.size()) != L || static_cast<int>(upper.size()) != L)
        throw std::invalid_argument("bigm_network: need bounds for every layer");
    if (static_cast<Eigen::Index>(input_cols.size()) != net.n_in())
        throw std::invalid_argument("bigm_network: need one column per input");
    for (int j = 0; j < L; ++j)
        if (lower[j].size() != net.width(j) || upper[j].size() != net.width(j))
            throw std::invalid_argument("bigm_network: bounds of layer " + std::to_string(j) +
                                        " do not match its width");
    BigMBlock out;
    LpBlock& B = out;
    std::size_t nnz = 0;
    for (int j = 0; j < L; ++j) nnz += static_cast<std::size_t>(net.W[j].size()) + 4 * net.width(j);
    B.indices.reserve(nnz);
    B.values.reserve(nnz);
    B.starts.push_back(0);
    BlockWriter w{B, first_col};
    std::vector<Index> prev = input_cols;
    for (int j = 0; j < L; ++j) {
        const MatMap& W = net.W[j];
        const bool hidden = j + 1 < L;
        const auto n = static_cast<std::size_t>(W.rows());
        std::vector<Index> cols(n, -1), bins(n, -1), pres(n, -1);
        for (Eigen::Index i = 0; i < W.rows(); ++i) {
            const double l = lower[j][i], u = upper[j][i], b = net.b[j][i];
            const auto k = static_cast<std::size_t>(i);
            if (!hidden || l >= 0.0) {  // output, or stably active: a = W_i a_prev + b_i
                if (hidden && u <= 0.0) continue;
                cols[k] = w.col(l, u);
                affine_row(w, cols[k], W, i, prev, b, b);
            } else if (u <= 0.0) {
                continue;  // stably inactive: no column
            } else {
                const Index z = w.col(l, u), a = w.col(0.0, u), d = w.col(0.0, 1.0);
                B.binary.push_back(d);
                cols[k] = a;
                bins[k] = d;
                pres[k] = z;
                affine_row(w, z, W, i, prev, b, b);
                w.relu_rows(a, z, l, u, d);
            }
        }
        out.unit_cols.push_back(cols);
        if (hidden) {
            out.binary_cols.push_back(std::move(bins));
            out.pre_cols.push_back(std::move(pres));
        }
        prev = std::move(cols);
    }
    return out;
}

}  // namespace emlpress
