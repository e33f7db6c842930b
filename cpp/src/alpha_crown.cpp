// alpha-CROWN over the LP relaxation's rows: lower sides for the starting bases of many
// per-neuron LPs at once (LpRelaxation::alpha_hints). Only a heuristic for the simplex'
// starting point: every value the LPs return is still made rigorous from their duals.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "emlpress/lp_relaxation.hpp"
#include "emlpress/parallel.hpp"

namespace emlpress {

void LpRelaxation::alpha_hints(const std::vector<Index>& cost_idx, const double* costs,
                               std::size_t n_obj, int iterations, double step,
                               double* hints) const {
    if (integer_) throw std::logic_error("alpha_hints: an LP relaxation only");
    if (iterations < 0) throw std::invalid_argument("alpha_hints: iterations must be >= 0");
    const auto nc = static_cast<Eigen::Index>(col_lower_.size());
    const std::size_t n_cost = cost_idx.size();
    for (Index q : cost_idx)
        if (q < 0 || q >= nc) throw std::invalid_argument("alpha_hints: cost index out of range");
    std::fill(hints, hints + n_obj * static_cast<std::size_t>(nc), 0.0);
    const std::size_t L = lp_layers_.size();
    // per layer: each unit's output column a, whether it is active (a = z), and for an
    // unstable one its pre-activation's lower bound l and upper side's slope s = u / (u - l)
    std::vector<std::vector<Index>> out(L);
    std::vector<std::vector<char>> active(L);
    std::vector<Eigen::VectorXf> lower(L), slope(L);
    for (std::size_t k = 0; k < L; ++k) {
        const std::vector<Unit>& units = lp_layers_[k].units;
        lower[k].resize(static_cast<Eigen::Index>(units.size()));
        slope[k].resize(static_cast<Eigen::Index>(units.size()));
        for (std::size_t i = 0; i < units.size(); ++i) {
            const Unit& U = units[i];
            out[k].push_back(U.a);
            active[k].push_back(U.z < 0);
            lower[k][static_cast<Eigen::Index>(i)] = static_cast<float>(U.l);
            slope[k][static_cast<Eigen::Index>(i)] = static_cast<float>(U.u / (U.u - U.l));
        }
    }
    const auto n_in = static_cast<Eigen::Index>(n_in_);
    const float lr = static_cast<float>(step);
    constexpr float kB1 = 0.9f, kB2 = 0.999f;

    parallel_chunks(static_cast<std::ptrdiff_t>(n_obj), 4, [&](std::ptrdiff_t b, std::ptrdiff_t e) {
        const Eigen::Index B = e - b;
        using Mat = Eigen::MatrixXf;
        Mat G(nc, B), V = Mat::Zero(nc, B);
        std::vector<Mat> alpha(L), best(L), lam(L), m1(L), m2(L), grad(L);
        for (std::size_t k = 0; k < L; ++k) {
            const std::vector<Unit>& units = lp_layers_[k].units;
            const auto nu = static_cast<Eigen::Index>(units.size());
            alpha[k].resize(nu, B);
            for (Eigen::Index i = 0; i < nu; ++i) {  // CROWN's adaptive slope to start
                const Unit& U = units[static_cast<std::size_t>(i)];
                alpha[k].row(i).setConstant(U.u >= -U.l ? 1.0f : 0.0f);
            }
            best[k] = alpha[k];
            m1[k] = Mat::Zero(nu, B);
            m2[k] = Mat::Zero(nu, B);
            grad[k] = Mat::Zero(nu, B);
        }
        Eigen::ArrayXf best_d = Eigen::ArrayXf::Constant(B, -std::numeric_limits<float>::infinity());
        Eigen::ArrayXf d(B);
        for (int t = 0;; ++t) {
            // backward: the dual bound of the current alphas, per objective
            G.setZero();
            for (Eigen::Index o = 0; o < B; ++o) {
                const double* row = costs + static_cast<std::size_t>(b + o) * n_cost;
                for (std::size_t p = 0; p < n_cost; ++p) G(cost_idx[p], o) += static_cast<float>(row[p]);
            }
            d.setZero();
            for (std::size_t k = L; k-- > 0;) {
                const Layer& Y = lp_layers_[k];
                const auto nu = static_cast<Eigen::Index>(Y.units.size());
                Mat& Lam = lam[k];
                Lam = G(out[k], Eigen::all);
                Mat M(nu, B);
                for (Eigen::Index o = 0; o < B; ++o) {
                    for (Eigen::Index i = 0; i < nu; ++i) {
                        const float g = Lam(i, o);
                        if (active[k][static_cast<std::size_t>(i)]) {
                            M(i, o) = g;  // a = z
                        } else if (g >= 0.0f) {
                            M(i, o) = alpha[k](i, o) * g;  // a >= alpha z
                        } else {  // a <= s (z - l)
                            M(i, o) = slope[k][i] * g;
                            d[o] -= slope[k][i] * lower[k][i] * g;
                        }
                    }
                }
                d += (Y.c.transpose() * M).transpose().array();
                G(Y.ref, Eigen::all) += Y.A.transpose() * M;
            }
            // the inputs at the box corner the reduced costs ask for
            for (Eigen::Index o = 0; o < B; ++o) {
                for (Eigen::Index q = 0; q < n_in; ++q) {
                    const float g = G(q, o);
                    const auto lo = static_cast<float>(col_lower_[static_cast<std::size_t>(q)]);
                    const auto hi = static_cast<float>(col_upper_[static_cast<std::size_t>(q)]);
                    V(q, o) = g >= 0.0f ? lo : hi;
                    d[o] += g * V(q, o);
                }
                if (d[o] > best_d[o]) {
                    best_d[o] = d[o];
                    for (std::size_t k = 0; k < L; ++k) best[k].col(o) = alpha[k].col(o);
                }
            }
            if (t == iterations) break;
            // forward from that corner through the chosen relaxations: d(bound)/d(alpha) =
            // multiplier * z there
            for (std::size_t k = 0; k < L; ++k) {
                const Layer& Y = lp_layers_[k];
                const auto nu = static_cast<Eigen::Index>(Y.units.size());
                Mat Z = Y.A * V(Y.ref, Eigen::all);
                Z.colwise() += Y.c;
                for (Eigen::Index o = 0; o < B; ++o) {
                    for (Eigen::Index i = 0; i < nu; ++i) {
                        const float z = Z(i, o), g = lam[k](i, o);
                        const Index a = out[k][static_cast<std::size_t>(i)];
                        float gr = 0.0f;
                        if (active[k][static_cast<std::size_t>(i)]) {
                            V(a, o) = z;
                        } else if (g >= 0.0f) {
                            V(a, o) = alpha[k](i, o) * z;
                            gr = g * z;
                        } else {
                            V(a, o) = slope[k][i] * (z - lower[k][i]);
                        }
                        grad[k](i, o) = gr;
                    }
                }
            }
            // projected Adam ascent
            const float c1 = 1.0f - std::pow(kB1, static_cast<float>(t + 1));
            const float c2 = 1.0f - std::pow(kB2, static_cast<float>(t + 1));
            for (std::size_t k = 0; k < L; ++k) {
                m1[k] = kB1 * m1[k] + (1.0f - kB1) * grad[k];
                m2[k] = kB2 * m2[k] + (1.0f - kB2) * grad[k].cwiseAbs2();
                const Mat stepk = (m1[k].array() / c1) / ((m2[k].array() / c2).sqrt() + 1e-30f);
                alpha[k] = (alpha[k] + lr * stepk).cwiseMax(0.0f).cwiseMin(1.0f);
            }
        }
        // the best alphas as hint rows (column values a = alpha, z = 1)
        for (Eigen::Index o = 0; o < B; ++o) {
            double* h = hints + static_cast<std::size_t>(b + o) * static_cast<std::size_t>(nc);
            for (std::size_t k = 0; k < L; ++k) {
                const std::vector<Unit>& units = lp_layers_[k].units;
                for (std::size_t i = 0; i < units.size(); ++i) {
                    if (units[i].z < 0) continue;
                    h[units[i].z] = 1.0;
                    h[units[i].a] = best[k](static_cast<Eigen::Index>(i), o);
                }
            }
        }
    });
}

}  // namespace emlpress
