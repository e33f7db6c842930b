#include "emlpress/lp_relaxation.hpp"

#include <cmath>
#include <limits>
#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "emlpress/rounding.hpp"

namespace emlpress {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
// Active units are substituted only while their composed coefficients stay below this:
// composing layers multiplies weights, and HiGHS refuses |coefficients| >= 1e15.
constexpr double kMaxSubstituted = 1e6;

// min over t in [lo, hi] of k t (k t with an infinite end contributes -inf unless k == 0)
double min_linear(double k, double lo, double hi) {
    if (k == 0.0) return 0.0;
    return k > 0.0 ? k * lo : k * hi;
}
}  // namespace

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
            // a multiplier of the wrong sign on a one-sided row (HiGHS returns such values
            // at the 1e-17 level) would give -inf: drop it, any multipliers are valid
            if (!std::isfinite(t)) continue;
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
        const double n_ops = max_len + static_cast<double>(n_rows + n_cols);
        // subnormal rounding: absolute, amplified by at most the largest |y a| and |x|
        double amp = 1.0;
        for (std::size_t j = 0; j < n_cols; ++j) {
            const double xm = std::max(std::fabs(col_lower[j]), std::fabs(col_upper[j]));
            if (std::isfinite(xm)) amp = std::max(amp, xm);
        }
        for (std::size_t i = 0; i < n_rows; ++i) {
            const double yi = std::fabs(y[i]);
            const double rm = std::max(std::isfinite(row_lower[i]) ? std::fabs(row_lower[i]) : 0.0,
                                       std::isfinite(row_upper[i]) ? std::fabs(row_upper[i]) : 0.0);
            amp = std::max(amp, std::max(yi, rm));
        }
        bound -= gamma_slack(n_ops) * mag + (mag > 0.0 ? subnormal_slack(n_ops) * amp * amp : 0.0);
        best = std::max(best, bound);
    }
    return best;
}

void BlockWriter::relu_rows(Index a, Index z, double l, double u, Index d) {
    entry(a, 1.0), entry(z, -1.0), end_row(0.0, kInf);  // a >= z
    if (d < 0) {
        const double s = u / (u - l);
        entry(a, 1.0), entry(z, -s), end_row(-kInf, -s * l);  // a <= s (z - l)
    } else {
        entry(a, 1.0), entry(z, -1.0), entry(d, -l), end_row(-kInf, -l);  // a <= z - l (1 - d)
        entry(a, 1.0), entry(d, -u), end_row(-kInf, 0.0);                  // a <= u d
    }
}

LpRelaxation::LpRelaxation(const Vec& lo, const Vec& hi, bool integer)
    : n_in_(static_cast<std::size_t>(lo.size())), integer_(integer) {
    const Eigen::Index n = lo.size();
    ref_.resize(static_cast<std::size_t>(n));
    for (Eigen::Index q = 0; q < n; ++q) ref_[static_cast<std::size_t>(q)] = static_cast<Index>(q);
    P_ = RowMat::Identity(n, n);
    p_ = Vec::Zero(n);
    perr_ = Vec::Zero(n);
    col_lower_.assign(lo.data(), lo.data() + n);
    col_upper_.assign(hi.data(), hi.data() + n);
}

Affine LpRelaxation::pre_activation(const NetworkView& net, int j) const {
    if (j != layers_) throw std::invalid_argument("pre_activation: layer " + std::to_string(j) +
                                                  " does not follow the layers added (" +
                                                  std::to_string(layers_) + ")");
    const MatMap& W = net.W[static_cast<std::size_t>(j)];
    const VecMap& b = net.b[static_cast<std::size_t>(j)];
    Affine Z;
    Z.ref = ref_;
    Z.A.noalias() = W * P_;
    if (exact_) {  // P_ selects columns: every entry of A is one weight, c is the bias
        Z.c = b;
        Z.err = Vec::Zero(W.rows());
        return Z;
    }
    Z.c.noalias() = W * p_;
    Z.c += b;
    Vec vmax(static_cast<Eigen::Index>(ref_.size()));
    for (std::size_t q = 0; q < ref_.size(); ++q) {
        const auto c = static_cast<std::size_t>(ref_[q]);
        vmax[static_cast<Eigen::Index>(q)] = std::max(std::fabs(col_lower_[c]), std::fabs(col_upper_[c]));
    }
    const Vec inner = P_.cwiseAbs() * vmax + p_.cwiseAbs();
    const double g = gamma_slack(static_cast<double>(W.cols() + P_.cols()) + 2.0);
    Z.err.noalias() = W.cwiseAbs() * (perr_ + g * inner);
    Z.err += g * b.cwiseAbs();
    return Z;
}

const LpBlock& LpRelaxation::add_layer(const NetworkView& net, int j, const Vec& lower,
                                       const Vec& upper) {
    const Affine Z = pre_activation(net, j);
    const Eigen::Index n = Z.A.rows(), m = Z.A.cols();
    Eigen::Index n_active = 0;
    double active_max = 0.0;  // largest |coefficient| an active unit's expression has
    for (Eigen::Index i = 0; i < n; ++i) {
        if (lower[i] < 0.0 || upper[i] <= 0.0) continue;
        ++n_active;
        if (Z.A.cols() > 0) active_max = std::max(active_max, Z.A.row(i).cwiseAbs().maxCoeff());
    }
    const bool subst = static_cast<Eigen::Index>(Z.ref.size()) < n_active &&
                       active_max <= kMaxSubstituted;
    // Rows over the input columns only: the relaxation lets x range over the whole box
    // (every x has its network point), and the bounds l, u of a unit are sound over the
    // box, so its row l <= z <= u is implied and a substituted unit needs none.
    const bool over_box = std::all_of(Z.ref.begin(), Z.ref.end(),
                                      [&](Index q) { return static_cast<std::size_t>(q) < n_in_; });

    LpBlock B;
    B.cols.assign(static_cast<std::size_t>(n), -1);
    B.starts.push_back(0);
    BlockWriter w{B, n_cols()};
    // a row: the `lead` entries, then coef * A_i over the referenced columns, in [lo, hi]
    auto affine_row = [&](Eigen::Index i, double coef, Index lead, double lo, double hi) {
        if (lead >= 0) w.entry(lead, 1.0);
        for (Eigen::Index q = 0; q < m; ++q) {
            const double v = Z.A(i, q);
            if (v != 0.0) w.entry(Z.ref[static_cast<std::size_t>(q)], coef * v);
        }
        w.end_row(lo, hi);
    };
    std::vector<Eigen::Index> substituted;
    std::vector<Unit> units;
    // global index of the next row of this block
    auto next_row = [&] { return n_rows() + static_cast<Index>(B.row_lower.size()); };
    for (Eigen::Index i = 0; i < n; ++i) {
        const double l = lower[i], u = upper[i], c = Z.c[i], e = Z.err[i];
        if (u <= 0.0) continue;
        if (l >= 0.0 && subst) {
            substituted.push_back(i);
            // keep l <= z <= u unless the column bounds imply it (over_box: always)
            double zlo = c - e, zhi = c + e;
            for (Eigen::Index q = 0; q < m; ++q) {
                const double v = Z.A(i, q);
                const auto col = static_cast<std::size_t>(Z.ref[static_cast<std::size_t>(q)]);
                zlo += v > 0.0 ? v * col_lower_[col] : v * col_upper_[col];
                zhi += v > 0.0 ? v * col_upper_[col] : v * col_lower_[col];
            }
            const double slack = gamma_slack(static_cast<double>(m) + 2.0) * (std::fabs(zlo) + std::fabs(zhi));
            if (!over_box && (zlo - slack < l || zhi + slack > u)) affine_row(i, 1.0, -1, l - c - e, u - c + e);
            continue;
        }
        if (l >= 0.0) {  // a = z, a in [l, u]
            const Index a = w.col(l, u);
            B.cols[static_cast<std::size_t>(i)] = a;
            units.push_back({a, -1, next_row(), -1, -1, l, u});
            affine_row(i, -1.0, a, c - e, c + e);
            continue;
        }
        const Index a = w.col(0.0, u);
        const Index z = w.col(l, u);
        B.cols[static_cast<std::size_t>(i)] = a;
        const Index eq = next_row();
        units.push_back({a, z, eq, eq + 1, eq + 2, l, u});
        affine_row(i, -1.0, z, c - e, c + e);
        const Index d = integer_ ? w.col(0.0, 1.0) : -1;
        if (d >= 0) B.binary.push_back(d);
        w.relu_rows(a, z, l, u, d);
    }

    // the new layer's post-activations over the columns
    std::vector<Index> ref;
    std::vector<Index> pos(static_cast<std::size_t>(n), -1);  // unit -> position in ref
    if (subst) ref = Z.ref;
    for (Eigen::Index i = 0; i < n; ++i) {
        const Index col = B.cols[static_cast<std::size_t>(i)];
        if (col < 0) continue;
        pos[static_cast<std::size_t>(i)] = static_cast<Index>(ref.size());
        ref.push_back(col);
    }
    RowMat P = RowMat::Zero(n, static_cast<Eigen::Index>(ref.size()));
    Vec p = Vec::Zero(n), perr = Vec::Zero(n);
    for (Eigen::Index i : substituted) {
        P.row(i).head(m) = Z.A.row(i);
        p[i] = Z.c[i];
        perr[i] = Z.err[i];
    }
    for (Eigen::Index i = 0; i < n; ++i)
        if (pos[static_cast<std::size_t>(i)] >= 0) P(i, pos[static_cast<std::size_t>(i)]) = 1.0;
    ref_ = std::move(ref);
    P_ = std::move(P);
    p_ = std::move(p);
    perr_ = std::move(perr);
    exact_ = substituted.empty();
    ++layers_;
    if (!integer_) {
        Layer L{std::move(units), Z.ref, Eigen::MatrixXf(), Eigen::VectorXf()};
        const auto nu = static_cast<Eigen::Index>(L.units.size());
        L.A.resize(nu, m);
        L.c.resize(nu);
        Eigen::Index r = 0;
        for (Eigen::Index i = 0; i < n; ++i) {
            if (B.cols[static_cast<std::size_t>(i)] < 0) continue;
            L.A.row(r) = Z.A.row(i).cast<float>();
            L.c[r] = static_cast<float>(Z.c[i]);
            ++r;
        }
        lp_layers_.push_back(std::move(L));
    }
    append(B);
    last_ = std::move(B);
    return last_;
}

const LpBlock& LpRelaxation::add_domain(const std::vector<double>& aux_lower,
                                        const std::vector<double>& aux_upper,
                                        const std::vector<double>& row_lower,
                                        const std::vector<double>& row_upper,
                                        const std::vector<Index>& starts,
                                        const std::vector<Index>& indices,
                                        const std::vector<double>& values) {
    if (layers_ > 0 || n_rows() > 0 || n_aux_ > 0)
        throw std::logic_error("add_domain: the domain comes before any layer, once");
    const std::size_t na = aux_lower.size(), nr = row_lower.size();
    if (aux_upper.size() != na || row_upper.size() != nr || starts.size() != nr + 1 ||
        starts.front() != 0 || static_cast<std::size_t>(starts.back()) != indices.size() ||
        indices.size() != values.size())
        throw std::invalid_argument("add_domain: inconsistent column, row or CSR arrays");
    const auto limit = static_cast<Index>(n_in_ + na);
    for (Index j : indices)
        if (j < 0 || j >= limit)
            throw std::invalid_argument("add_domain: a row refers to a column past the domain's");
    for (std::size_t j = 0; j < na; ++j)
        if (!(std::isfinite(aux_lower[j]) && std::isfinite(aux_upper[j]) && aux_lower[j] <= aux_upper[j]))
            throw std::invalid_argument("add_domain: auxiliary columns need finite bounds lower <= upper");
    LpBlock B;
    B.col_lower = aux_lower;
    B.col_upper = aux_upper;
    B.row_lower = row_lower;
    B.row_upper = row_upper;
    B.starts = starts;
    B.indices = indices;
    B.values = values;
    n_aux_ = na;
    append(B);
    last_ = std::move(B);
    return last_;
}

void LpRelaxation::append(const LpBlock& B) {
    col_lower_.insert(col_lower_.end(), B.col_lower.begin(), B.col_lower.end());
    col_upper_.insert(col_upper_.end(), B.col_upper.begin(), B.col_upper.end());
    row_lower_.insert(row_lower_.end(), B.row_lower.begin(), B.row_lower.end());
    row_upper_.insert(row_upper_.end(), B.row_upper.begin(), B.row_upper.end());
    const Index offset = static_cast<Index>(indices_.size());
    for (std::size_t r = 1; r < B.starts.size(); ++r) starts_.push_back(offset + B.starts[r]);
    indices_.insert(indices_.end(), B.indices.begin(), B.indices.end());
    values_.insert(values_.end(), B.values.begin(), B.values.end());
}

std::vector<double> LpRelaxation::dense_cost(const std::vector<Index>& cost_idx,
                                             const std::vector<double>& cost_val) const {
    std::vector<double> cost(col_lower_.size(), 0.0);
    for (std::size_t p = 0; p < cost_idx.size(); ++p) cost[static_cast<std::size_t>(cost_idx[p])] += cost_val[p];
    return cost;
}

double LpRelaxation::safe_bound(const std::vector<Index>& cost_idx,
                                const std::vector<double>& cost_val, const double* y,
                                std::size_t n_y, const double* col_lower,
                                const double* col_upper) const {
    if (n_y != row_lower_.size()) throw std::invalid_argument("safe_bound: wrong number of duals");
    if (col_lower == nullptr)
        return safe_lower_bound(dense_cost(cost_idx, cost_val), col_lower_, col_upper_, row_lower_,
                                row_upper_, starts_, indices_, values_, y);
    const std::vector<double> cl(col_lower, col_lower + col_lower_.size());
    const std::vector<double> cu(col_upper, col_upper + col_upper_.size());
    for (std::size_t j = 0; j < cl.size(); ++j)  // a node may only narrow the columns
        if (!(cl[j] >= col_lower_[j] && cu[j] <= col_upper_[j]))
            throw std::invalid_argument("safe_bound: column " + std::to_string(j) +
                                        " bounds widen the relaxation's");
    return safe_lower_bound(dense_cost(cost_idx, cost_val), cl, cu, row_lower_, row_upper_,
                            starts_, indices_, values_, y);
}

double LpRelaxation::crown_basis(const std::vector<double>& cost, const double* hint,
                                 std::int8_t* col_status, std::int8_t* row_status, double* row_dual,
                                 std::vector<double>& g) const {
    constexpr std::int8_t kLower = 0, kBasic = 1, kUpper = 2;
    const std::size_t n_cols = col_lower_.size(), n_rows = row_lower_.size();
    g = cost;  // reduced costs, c - A^T y over the rows done so far
    std::fill(col_status, col_status + n_cols, kBasic);
    std::fill(row_status, row_status + n_rows, kBasic);
    std::fill(row_dual, row_dual + n_rows, 0.0);
    double objective = 0.0;  // the dual objective: sum of y_r times row r's tight side, ...
    // row r becomes nonbasic with multiplier y (y >= 0 at its lower side)
    auto take = [&](Index r, double y) {
        const auto ri = static_cast<std::size_t>(r);
        row_status[ri] = y >= 0.0 ? kLower : kUpper;
        row_dual[ri] = y;
        if (y == 0.0) return;
        objective += y * (y > 0.0 ? row_lower_[ri] : row_upper_[ri]);
        for (Index p = starts_[ri]; p < starts_[ri + 1]; ++p)
            g[static_cast<std::size_t>(indices_[p])] -= y * values_[p];
    };
    for (auto layer = lp_layers_.rbegin(); layer != lp_layers_.rend(); ++layer) {
        for (const Unit& U : layer->units) {
            const auto a = static_cast<std::size_t>(U.a);
            if (U.z < 0) {  // stably active: a = z, a basic
                take(U.eq, g[a]);
                continue;
            }
            const double ga = g[a];
            const auto z = static_cast<std::size_t>(U.z);
            const bool on_z = hint ? std::fabs(hint[a] - hint[z]) < std::fabs(hint[a]) : U.u >= -U.l;
            if (ga > 0.0 && on_z) {
                take(U.ge, ga);  // a >= z tight, a basic
            } else if (ga >= 0.0) {
                col_status[a] = kLower;  // a = 0: no multiplier, nothing to the objective
            } else {
                take(U.le, ga);  // the triangle's upper side
            }
            take(U.eq, g[z]);  // z basic: its reduced cost goes back through its row
        }
    }
    // ... plus each input's (and domain column's) reduced cost times the bound it sits at
    for (std::size_t q = 0; q < n_in_ + n_aux_; ++q) {
        col_status[q] = g[q] >= 0.0 ? kLower : kUpper;
        if (g[q] != 0.0) objective += g[q] * (g[q] > 0.0 ? col_lower_[q] : col_upper_[q]);
    }
    return objective;
}

LpRelaxation::Start LpRelaxation::dual_feasible_basis(const std::vector<Index>& cost_idx,
                                                     const std::vector<double>& cost_val,
                                                     const double* hints, std::size_t n_hints,
                                                     std::int8_t* col_status,
                                                     std::int8_t* row_status, double* row_dual,
                                                     double* col_value) const {
    if (integer_) throw std::logic_error("dual_feasible_basis: an LP relaxation only");
    const std::size_t n_cols = col_lower_.size(), n_rows = row_lower_.size();
    const std::vector<double> cost = dense_cost(cost_idx, cost_val);
    std::vector<double> g;
    Start start;
    start.objective = crown_basis(cost, nullptr, col_status, row_status, row_dual, g);
    std::vector<std::int8_t> cs(n_cols), rs(n_rows);
    std::vector<double> y(n_rows);
    for (std::size_t k = 0; k < n_hints; ++k) {
        const double v = crown_basis(cost, hints + k * n_cols, cs.data(), rs.data(), y.data(), g);
        if (v > start.objective) {
            start.objective = v;
            std::copy(cs.begin(), cs.end(), col_status);
            std::copy(rs.begin(), rs.end(), row_status);
            std::copy(y.begin(), y.end(), row_dual);
        }
    }
    start.violation = primal_point(col_status, row_status, col_value);
    return start;
}

double LpRelaxation::primal_point(const std::int8_t* col_status, const std::int8_t* row_status,
                                  double* x) const {
    constexpr std::int8_t kBasic = 1, kUpper = 2;
    const std::size_t n_cols = col_lower_.size(), n_rows = row_lower_.size();
    std::fill(x, x + n_cols, std::numeric_limits<double>::quiet_NaN());
    auto at_bound = [&](std::size_t j) {
        x[j] = col_status[j] == kUpper ? col_upper_[j] : col_lower_[j];
    };
    // x[j] such that nonbasic row r sits at its side (every other column of r is known)
    auto solve = [&](Index r, Index j) {
        const auto ri = static_cast<std::size_t>(r);
        double rest = 0.0, coef = 0.0;
        for (Index p = starts_[ri]; p < starts_[ri + 1]; ++p) {
            if (indices_[p] == j)
                coef = values_[p];
            else
                rest += values_[p] * x[static_cast<std::size_t>(indices_[p])];
        }
        const double side = row_status[ri] == kUpper ? row_upper_[ri] : row_lower_[ri];
        x[static_cast<std::size_t>(j)] = (side - rest) / coef;
    };
    for (std::size_t q = 0; q < n_in_ + n_aux_; ++q) {
        if (col_status[q] == kBasic) return std::numeric_limits<double>::infinity();
        at_bound(q);
    }
    for (const Layer& layer : lp_layers_) {
        for (const Unit& U : layer.units) {
            const auto a = static_cast<std::size_t>(U.a);
            if (U.z < 0) {  // stably active: a basic, its row at its side
                solve(U.eq, U.a);
                continue;
            }
            solve(U.eq, U.z);
            if (col_status[a] != kBasic)
                at_bound(a);
            else if (row_status[static_cast<std::size_t>(U.ge)] != kBasic)
                solve(U.ge, U.a);
            else
                solve(U.le, U.a);
        }
    }
    // how far the basic columns and rows are outside their bounds
    double worst = 0.0;
    for (std::size_t j = 0; j < n_cols; ++j) {
        if (std::isnan(x[j])) return std::numeric_limits<double>::infinity();
        if (col_status[j] == kBasic)
            worst = std::max({worst, col_lower_[j] - x[j], x[j] - col_upper_[j]});
    }
    for (std::size_t r = 0; r < n_rows; ++r) {
        if (row_status[r] != kBasic) continue;
        double act = 0.0;
        for (Index p = starts_[r]; p < starts_[r + 1]; ++p)
            act += values_[p] * x[static_cast<std::size_t>(indices_[p])];
        worst = std::max({worst, row_lower_[r] - act, act - row_upper_[r]});
    }
    return std::isnan(worst) ? std::numeric_limits<double>::infinity() : worst;
}

}  // namespace emlpress
