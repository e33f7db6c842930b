#include "emlpress/lp_rows.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

#include "emlpress/rounding.hpp"

namespace emlpress {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();

// min over t in [lo, hi] of k t (k t with an infinite end contributes -inf unless k == 0)
double min_linear(double k, double lo, double hi) {
    if (k == 0.0) return 0.0;
    return k > 0.0 ? k * lo : k * hi;
}
}  // namespace

LpBlock lp_block(const MatMap& W, const VecMap& b, const Vec& lower, const Vec& upper,
                 const std::vector<Index>& prev_cols, Index first_col, bool integer) {
    LpBlock B;
    const Eigen::Index n = W.rows();
    B.cols.assign(static_cast<std::size_t>(n), -1);
    B.starts.push_back(0);
    Index next = first_col;
    // row: a - scale W_i a_prev (+ k d) in [lo, hi]
    auto add_row = [&](Eigen::Index i, Index col, double scale, double lo, double hi,
                       Index dcol = -1, double k = 0.0) {
        B.indices.push_back(col);
        B.values.push_back(1.0);
        if (dcol >= 0) {
            B.indices.push_back(dcol);
            B.values.push_back(k);
        }
        const auto row = W.row(i);
        for (Eigen::Index q = 0; q < row.size(); ++q) {
            const Index pc = prev_cols[static_cast<std::size_t>(q)];
            if (pc < 0 || row[q] == 0.0) continue;
            B.indices.push_back(pc);
            B.values.push_back(-scale * row[q]);
        }
        B.row_lower.push_back(lo);
        B.row_upper.push_back(hi);
        B.starts.push_back(static_cast<Index>(B.indices.size()));
    };
    for (Eigen::Index i = 0; i < n; ++i) {
        const double l = lower[i], u = upper[i];
        if (u <= 0.0) continue;
        const Index col = next++;
        B.cols[static_cast<std::size_t>(i)] = col;
        if (l >= 0.0) {
            B.col_lower.push_back(l);
            B.col_upper.push_back(u);
            add_row(i, col, 1.0, b[i], b[i]);
        } else if (!integer) {
            const double s = u / (u - l);
            B.col_lower.push_back(0.0);
            B.col_upper.push_back(u);
            add_row(i, col, 1.0, b[i], kInf);
            add_row(i, col, s, -kInf, s * (b[i] - l));
        } else {
            const Index d = next++;
            B.binary.push_back(d);
            B.col_lower.insert(B.col_lower.end(), {0.0, 0.0});
            B.col_upper.insert(B.col_upper.end(), {u, 1.0});
            add_row(i, col, 1.0, b[i], kInf);
            add_row(i, col, 1.0, -kInf, b[i] - l, d, -l);
            // a - u d <= 0 has no weights: written directly
            B.indices.insert(B.indices.end(), {col, d});
            B.values.insert(B.values.end(), {1.0, -u});
            B.row_lower.push_back(-kInf);
            B.row_upper.push_back(0.0);
            B.starts.push_back(static_cast<Index>(B.indices.size()));
        }
    }
    return B;
}

double safe_lower_bound(const std::vector<double>& cost, const std::vector<double>& col_lower,
                        const std::vector<double>& col_upper,
                        const std::vector<double>& row_lower,
                        const std::vector<double>& row_upper, const std::vector<Index>& starts,
                        const std::vector<Index>& indices, const std::vector<double>& values,
                        const double* y) {
    const std::size_t n_rows = row_lower.size(), n_cols = col_lower.size();
    double best = -kInf;
    for (double sign : {1.0, -1.0}) {
        std::vector<double> d(cost.begin(), cost.end());
        std::vector<double> dabs(n_cols, 0.0);  // magnitude of the terms, for the slack
        double bound = 0.0, mag = 0.0, max_len = 0.0;
        for (std::size_t i = 0; i < n_rows; ++i) {
            const double yi = sign * y[i];
            if (yi == 0.0) continue;
            const double t = min_linear(yi, row_lower[i], row_upper[i]);
            bound += t;
            mag += std::fabs(t);
            max_len = std::max(max_len, static_cast<double>(starts[i + 1] - starts[i]));
            for (Index p = starts[i]; p < starts[i + 1]; ++p) {
                d[static_cast<std::size_t>(indices[p])] -= yi * values[p];
                dabs[static_cast<std::size_t>(indices[p])] += std::fabs(yi * values[p]);
            }
        }
        for (std::size_t j = 0; j < n_cols; ++j) {
            const double t = min_linear(d[j], col_lower[j], col_upper[j]);
            bound += t;
            const double xm = std::max(std::fabs(col_lower[j]), std::fabs(col_upper[j]));
            mag += std::fabs(t) + (dabs[j] + std::fabs(cost[j])) * (std::isfinite(xm) ? xm : 0.0);
        }
        if (!std::isfinite(bound)) continue;
        bound -= gamma_slack(max_len + static_cast<double>(n_rows + n_cols)) * mag;
        best = std::max(best, bound);
    }
    return best;
}

LpRelaxation::LpRelaxation(const Vec& lo, const Vec& hi, bool integer) : integer_(integer) {
    std::vector<Index> c(static_cast<std::size_t>(lo.size()));
    for (std::size_t q = 0; q < c.size(); ++q) c[q] = static_cast<Index>(q);
    cols_.push_back(std::move(c));
    col_lower_.assign(lo.data(), lo.data() + lo.size());
    col_upper_.assign(hi.data(), hi.data() + hi.size());
}

const LpBlock& LpRelaxation::add_layer(const NetworkView& net, int j, const Vec& lower,
                                       const Vec& upper) {
    last_ = lp_block(net.W[j], net.b[j], lower, upper, cols_.back(), n_cols(), integer_);
    cols_.push_back(last_.cols);
    col_lower_.insert(col_lower_.end(), last_.col_lower.begin(), last_.col_lower.end());
    col_upper_.insert(col_upper_.end(), last_.col_upper.begin(), last_.col_upper.end());
    row_lower_.insert(row_lower_.end(), last_.row_lower.begin(), last_.row_lower.end());
    row_upper_.insert(row_upper_.end(), last_.row_upper.begin(), last_.row_upper.end());
    const Index offset = static_cast<Index>(indices_.size());
    for (std::size_t r = 1; r < last_.starts.size(); ++r) starts_.push_back(offset + last_.starts[r]);
    indices_.insert(indices_.end(), last_.indices.begin(), last_.indices.end());
    values_.insert(values_.end(), last_.values.begin(), last_.values.end());
    return last_;
}

double LpRelaxation::safe_bound(const std::vector<Index>& cost_idx,
                                const std::vector<double>& cost_val, const double* y,
                                std::size_t n_y) const {
    if (n_y != row_lower_.size()) throw std::invalid_argument("safe_bound: wrong number of duals");
    std::vector<double> cost(col_lower_.size(), 0.0);
    for (std::size_t p = 0; p < cost_idx.size(); ++p) cost[static_cast<std::size_t>(cost_idx[p])] += cost_val[p];
    return safe_lower_bound(cost, col_lower_, col_upper_, row_lower_, row_upper_, starts_,
                            indices_, values_, y);
}

}  // namespace emlpress
