#include "emlpress/bigm.hpp"

#include <stdexcept>
#include <string>

namespace emlpress {

namespace {
void append(LpBlock& to, const LpBlock& from) {
    to.binary.insert(to.binary.end(), from.binary.begin(), from.binary.end());
    to.col_lower.insert(to.col_lower.end(), from.col_lower.begin(), from.col_lower.end());
    to.col_upper.insert(to.col_upper.end(), from.col_upper.begin(), from.col_upper.end());
    to.row_lower.insert(to.row_lower.end(), from.row_lower.begin(), from.row_lower.end());
    to.row_upper.insert(to.row_upper.end(), from.row_upper.begin(), from.row_upper.end());
    const Index offset = static_cast<Index>(to.indices.size());
    for (std::size_t r = 1; r < from.starts.size(); ++r) to.starts.push_back(offset + from.starts[r]);
    to.indices.insert(to.indices.end(), from.indices.begin(), from.indices.end());
    to.values.insert(to.values.end(), from.values.begin(), from.values.end());
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
    out.rows.starts.push_back(0);
    std::vector<Index> prev = input_cols;
    Index next = first_col;
    for (int j = 0; j + 1 < L; ++j) {
        const LpBlock B = lp_block(net.W[j], net.b[j], lower[j], upper[j], prev, next, true);
        std::vector<Index> bin(B.cols.size(), -1);
        for (std::size_t i = 0; i < B.cols.size(); ++i)
            if (B.cols[i] >= 0 && !(lower[j][static_cast<Eigen::Index>(i)] >= 0.0)) bin[i] = B.cols[i] + 1;
        next += static_cast<Index>(B.col_lower.size());
        append(out.rows, B);
        out.unit_cols.push_back(B.cols);
        out.binary_cols.push_back(std::move(bin));
        prev = B.cols;
    }
    // Output layer: y - W a_prev = b.
    LpBlock O;
    O.starts.push_back(0);
    const MatMap& W = net.W[L - 1];
    std::vector<Index> ycols;
    for (Eigen::Index i = 0; i < W.rows(); ++i) {
        const Index y = next++;
        ycols.push_back(y);
        O.col_lower.push_back(lower[L - 1][i]);
        O.col_upper.push_back(upper[L - 1][i]);
        O.indices.push_back(y);
        O.values.push_back(1.0);
        for (Eigen::Index q = 0; q < W.cols(); ++q) {
            const Index pc = prev[static_cast<std::size_t>(q)];
            if (pc < 0 || W(i, q) == 0.0) continue;
            O.indices.push_back(pc);
            O.values.push_back(-W(i, q));
        }
        O.row_lower.push_back(net.b[L - 1][i]);
        O.row_upper.push_back(net.b[L - 1][i]);
        O.starts.push_back(static_cast<Index>(O.indices.size()));
    }
    append(out.rows, O);
    out.unit_cols.push_back(std::move(ycols));
    return out;
}

}  // namespace emlpress
