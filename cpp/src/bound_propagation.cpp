#include "emlpress/bound_propagation.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "emlpress/parallel.hpp"
#include "emlpress/rounding.hpp"

namespace emlpress {

namespace {

struct IntervalLayer {
    Vec lower, upper, magnitude;
};

// One layer of interval arithmetic over the box [l, u] of its inputs. Each weight
// row is read once (the second dot product finds it in L1): the kernel runs at the
// speed of one matrix-vector product, which memory bandwidth limits.
IntervalLayer interval_layer(const MatMap& W, const VecMap& b, const Vec& row_l1, const Vec& l,
                             const Vec& u) {
    const Vec c = 0.5 * (l + u);
    const Vec r = 0.5 * (u - l);
    const Eigen::Index n = W.rows();
    const Eigen::Index m = W.cols();
    const double* pc = c.data();
    const double* pr = r.data();
    // Which inputs can be positive / negative somewhere on the box (1.0 or 0.0): a term
    // w x can then be positive iff (w > 0 and x can be > 0) or (w < 0 and x can be < 0).
    Vec can_pos(m), can_neg(m);
    for (Eigen::Index j = 0; j < m; ++j) {
        can_pos[j] = u[j] > 0.0 ? 1.0 : 0.0;
        can_neg[j] = l[j] < 0.0 ? 1.0 : 0.0;
    }
    const double* pp = can_pos.data();
    const double* pn = can_neg.data();
    Vec zc(n), zr(n);
    std::vector<unsigned char> never_pos(static_cast<std::size_t>(n)),
        never_neg(static_cast<std::size_t>(n));
    // Not a matrix product any library offers: W c and |W| r in one pass over the row,
    // so W streams from memory once (Eigen's two row dots cost ~12% more here, see
    // benches/README.md). The simd reduction lets the compiler vectorise the two sums.
    for (Eigen::Index i = 0; i < n; ++i) {
        const double* w = W.data() + i * m;
        double sc = 0.0, sr = 0.0, up = 0.0, dn = 0.0;
#pragma omp simd reduction(+ : sc, sr, up, dn)
        for (Eigen::Index j = 0; j < m; ++j) {
            sc += w[j] * pc[j];
            sr += std::fabs(w[j]) * pr[j];
            // terms that can be > 0 (< 0) somewhere on the box: counted, not valued
            up += (w[j] > 0.0 ? pp[j] : 0.0) + (w[j] < 0.0 ? pn[j] : 0.0);
            dn += (w[j] > 0.0 ? pn[j] : 0.0) + (w[j] < 0.0 ? pp[j] : 0.0);
        }
        zc[i] = sc;
        zr[i] = sr;
        never_pos[static_cast<std::size_t>(i)] = up == 0.0 && b[i] <= 0.0;
        never_neg[static_cast<std::size_t>(i)] = dn == 0.0 && b[i] >= 0.0;
    }
    const double xmax = l.cwiseAbs().cwiseMax(u.cwiseAbs()).maxCoeff();
    IntervalLayer out;
    out.magnitude = row_l1 * xmax + b.cwiseAbs();
    const double n_terms = static_cast<double>(W.cols());
    const double tiny = subnormal_slack(n_terms);
    Vec slack = gamma_slack(n_terms) * out.magnitude;
    for (Eigen::Index i = 0; i < slack.size(); ++i)
        if (out.magnitude[i] > 0.0) slack[i] += tiny;
    zc += b;
    out.lower = zc - zr - slack;
    out.upper = zc + zr + slack;
    // Sign-exact rounding (rounding.hpp): a sum of terms that are all <= 0 (>= 0) on the
    // box rounds to <= 0 (>= 0) in every order, in the exact value and the forward pass
    // alike, so its bound needs no slack on that side of 0: an exact zero stays stable.
    for (Eigen::Index i = 0; i < n; ++i) {
        if (never_pos[static_cast<std::size_t>(i)]) {
            out.upper[i] = std::min(out.upper[i], 0.0);
            out.lower[i] = std::min(out.lower[i], out.upper[i]);
        }
        if (never_neg[static_cast<std::size_t>(i)]) {
            out.lower[i] = std::max(out.lower[i], 0.0);
            out.upper[i] = std::max(out.upper[i], out.lower[i]);
        }
    }
    return out;
}

std::vector<Eigen::Index> unstable_rows(const Vec& l, const Vec& u) {
    std::vector<Eigen::Index> idx;
    for (Eigen::Index i = 0; i < l.size(); ++i)
        if (l[i] < 0.0 && u[i] > 0.0) idx.push_back(i);
    return idx;
}

// Weights and biases of layer j restricted to the neurons whose ReLU output is
// not identically zero: inactive neurons contribute nothing to the backward pass.
struct LiveLayer {
    Relaxation rel;
    std::vector<Eigen::Index> live;
    RowMat W;  // W_j(live, :)
    Vec b;     // b_j(live)
};

LiveLayer make_live_layer(const NetworkView& net, int j, const Vec& l, const Vec& u) {
    LiveLayer L;
    L.rel = relu_relaxation(l, u);
    for (Eigen::Index q = 0; q < l.size(); ++q)
        if (L.rel.su[q] != 0.0 || L.rel.sl[q] != 0.0) L.live.push_back(q);
    L.W = net.W[j](L.live, Eigen::all);
    L.b = net.b[j](L.live);
    return L;
}

// Back-substitution for the rows `idx` (m of them) of layer k through the relaxations of
// the layers before it: z_i <= M.row(i) x + cU_i and z_i >= M.row(m + i) x + cL_i.
void back_substitute(const NetworkView& net, int k, const std::vector<Eigen::Index>& idx,
                     const std::vector<LiveLayer>& live, RowMat& M, Vec& cU, Vec& cL) {
    const Eigen::Index m = static_cast<Eigen::Index>(idx.size());
    // Rows [0, m) bound from above, rows [m, 2m) from below; one GEMM serves both.
    M.resize(2 * m, net.W[k].cols());
    M.topRows(m) = net.W[k](idx, Eigen::all);
    M.bottomRows(m) = M.topRows(m);
    cU = net.b[k](idx);
    cL = cU;
    for (int j = k - 1; j >= 0; --j) {
        const LiveLayer& L = live[j];
        const Vec& su = L.rel.su;
        const Vec& tu = L.rel.tu;
        const Vec& sl = L.rel.sl;
        const Eigen::Index nl = static_cast<Eigen::Index>(L.live.size());
        RowMat S(2 * m, nl);
        for (Eigen::Index i = 0; i < 2 * m; ++i) {
            const bool up = i < m;
            double acc = 0.0;
            for (Eigen::Index p = 0; p < nl; ++p) {
                const Eigen::Index q = L.live[p];
                const double a = M(i, q);
                // Upper rows take the upper line for a >= 0, lower rows for a < 0.
                if ((a >= 0.0) == up) {
                    acc += a * tu[q];
                    S(i, p) = a * su[q];
                } else {
                    S(i, p) = a * sl[q];
                }
            }
            if (up)
                cU[i] += acc;
            else
                cL[i - m] += acc;
        }
        const Vec Sb = S * L.b;
        cU += Sb.head(m);
        cL += Sb.tail(m);
        M.noalias() = S * L.W;
    }
}

// Backward pass for the rows `idx` of layer k: CROWN lower and upper bounds.
void backward_rows(const NetworkView& net, int k, const std::vector<Eigen::Index>& idx,
                   const std::vector<LiveLayer>& live, const Vec& xc, const Vec& xr,
                   const L1Ball* l1, Vec& lower, Vec& upper) {
    const Eigen::Index m = static_cast<Eigen::Index>(idx.size());
    RowMat M;
    Vec cU, cL;
    back_substitute(net, k, idx, live, M, cU, cL);
    const auto top = M.topRows(m);
    const auto bot = M.bottomRows(m);
    upper = cU + top * xc + top.cwiseAbs() * xr;
    lower = cL + bot * xc - bot.cwiseAbs() * xr;
    if (l1) {
        // min/max of a.x over the ball: a.center -+ eps max|a_j| (the dual norm), plus the
        // rounding of that evaluation and of adding the intercept (the back-substitution's
        // own rounding is the caller's slack, as for the box)
        const Vec ac = l1->center.cwiseAbs();
        const double g = gamma_slack(static_cast<double>(xc.size()) + 2.0);
        const double tiny = subnormal_slack(static_cast<double>(xc.size()) + 2.0);
        for (Eigen::Index i = 0; i < m; ++i) {
            const double nu = top.row(i).cwiseAbs().maxCoeff();
            const double nl = bot.row(i).cwiseAbs().maxCoeff();
            const double vu = cU[i] + top.row(i).dot(l1->center) + l1->eps * nu;
            const double vl = cL[i] + bot.row(i).dot(l1->center) - l1->eps * nl;
            const double mu = top.row(i).cwiseAbs().dot(ac) + l1->eps * nu + std::fabs(cU[i]);
            const double ml = bot.row(i).cwiseAbs().dot(ac) + l1->eps * nl + std::fabs(cL[i]);
            upper[i] = std::min(upper[i], vu + g * mu + tiny);
            lower[i] = std::max(lower[i], vl - g * ml - tiny);
        }
    }
}

// The target rows are independent: split them over threads, each with its own GEMMs.
void backward(const NetworkView& net, int k, const std::vector<Eigen::Index>& idx,
              const std::vector<LiveLayer>& live, const Vec& xc, const Vec& xr,
              const L1Ball* l1, Vec& lower, Vec& upper) {
    const std::ptrdiff_t m = static_cast<std::ptrdiff_t>(idx.size());
    lower.resize(m);
    upper.resize(m);
    parallel_chunks(m, 16, [&](std::ptrdiff_t b, std::ptrdiff_t e) {
        const std::vector<Eigen::Index> part(idx.begin() + b, idx.begin() + e);
        Vec lo_part, up_part;
        backward_rows(net, k, part, live, xc, xr, l1, lo_part, up_part);
        lower.segment(b, e - b) = lo_part;
        upper.segment(b, e - b) = up_part;
    });
}

}  // namespace

Relaxation relu_relaxation(const Vec& l, const Vec& u) {
    const Eigen::Index n = l.size();
    Relaxation R{Vec::Zero(n), Vec::Zero(n), Vec::Zero(n)};
    for (Eigen::Index i = 0; i < n; ++i) {
        if (u[i] <= 0.0) continue;  // inactive: a = 0
        if (l[i] >= 0.0) {          // active: a = z
            R.su[i] = 1.0;
            R.sl[i] = 1.0;
            continue;
        }
        const double s = u[i] / (u[i] - l[i]);
        R.su[i] = s;
        R.tu[i] = -s * l[i];
        R.sl[i] = (u[i] >= -l[i]) ? 1.0 : 0.0;
    }
    return R;
}

LayerBounds interval(const NetworkView& net, const Vec& lo, const Vec& hi,
                     std::vector<Vec>* magnitude) {
    LayerBounds out;
    Vec l = lo, u = hi;
    for (int k = 0; k < net.n_layers(); ++k) {
        IntervalLayer z = interval_layer(net.W[k], net.b[k], net.row_l1[k], l, u);
        l = z.lower.cwiseMax(0.0);
        u = z.upper.cwiseMax(0.0);
        out.lower.push_back(std::move(z.lower));
        out.upper.push_back(std::move(z.upper));
        if (magnitude) magnitude->push_back(std::move(z.magnitude));
    }
    return out;
}

LayerBounds crown(const NetworkView& net, const Vec& lo, const Vec& hi, const LayerBounds* clip,
                  const L1Ball* l1) {
    if (l1 && l1->center.size() != lo.size())
        throw std::invalid_argument("crown: the l1 centre needs one value per input");
    std::vector<Vec> mag;
    const LayerBounds plain = interval(net, lo, hi, &mag);
    const Vec xc = 0.5 * (lo + hi);
    const Vec xr = 0.5 * (hi - lo);
    LayerBounds out;
    out.lower.push_back(plain.lower[0]);  // the first layer's interval bounds are exact
    out.upper.push_back(plain.upper[0]);
    if (l1) {  // on the box; over the ball, its closed form may be tighter
        std::vector<Eigen::Index> all(static_cast<std::size_t>(net.width(0)));
        for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<Eigen::Index>(i);
        Vec cl, cu;
        backward(net, 0, all, {}, xc, xr, l1, cl, cu);
        const double n0 = static_cast<double>(net.W[0].cols());
        for (Eigen::Index i = 0; i < cl.size(); ++i) {
            // the box side's rounding, as interval's (the ball's is inside cl, cu)
            const double slack = gamma_slack(n0 + 2.0) * mag[0][i] + subnormal_slack(n0 + 2.0);
            out.lower[0][i] = std::max(out.lower[0][i], cl[i] - slack);
            out.upper[0][i] = std::min(out.upper[0][i], cu[i] + slack);
        }
    }
    if (clip) {
        if (static_cast<int>(clip->lower.size()) != net.n_layers() ||
            static_cast<int>(clip->upper.size()) != net.n_layers())
            throw std::invalid_argument("crown: clip bounds need one vector per layer");
        for (int k = 0; k < net.n_layers(); ++k)
            if (clip->lower[k].size() != net.width(k) || clip->upper[k].size() != net.width(k))
                throw std::invalid_argument("crown: clip bounds of layer " + std::to_string(k) +
                                            " do not match its width");
        out.lower[0] = out.lower[0].cwiseMax(clip->lower[0]);
        out.upper[0] = out.upper[0].cwiseMin(clip->upper[0]);
    }
    std::vector<LiveLayer> live;
    double n_terms = static_cast<double>(net.W[0].cols());
    // Composed magnitude of every layer: |W_k| (cm_{k-1} on units not proven inactive) +
    // |b_k|, from cm_{-1} = max(|lo|, |hi|). It bounds the sum of the absolute values of
    // all terms of the back-substituted bound and of the network's own forward pass (every
    // path through the layers, slopes at most 1), which the one-layer interval magnitude
    // does not when a layer's outputs cancel (|W_{k-1} a| << |W_{k-1}| |a|).
    Vec cm = net.W[0].cwiseAbs() * lo.cwiseAbs().cwiseMax(hi.cwiseAbs()) + net.b[0].cwiseAbs();
    // How much later operations of the back-substitution can amplify an absolute error
    // (subnormal rounding): max(1, max |x|) times the product of the layers'
    // NetworkView::amplification up to the current one.
    double amp = std::max(1.0, lo.cwiseAbs().cwiseMax(hi.cwiseAbs()).maxCoeff()) * net.amplification[0];
    double ops = 0.0;  // multiply-adds of one unit's back-substitution so far
    for (int k = 1; k < net.n_layers(); ++k) {
        amp *= net.amplification[static_cast<std::size_t>(k)];
        live.push_back(make_live_layer(net, k - 1, out.lower[k - 1], out.upper[k - 1]));
        n_terms += static_cast<double>(net.W[k].cols());
        cm = net.W[k].cwiseAbs() * (out.upper[k - 1].array() > 0.0).select(cm, 0.0) +
             net.b[k].cwiseAbs();
        // Interval step from the tightened previous layer, intersected with plain interval.
        const IntervalLayer step =
            interval_layer(net.W[k], net.b[k], net.row_l1[k], out.lower[k - 1].cwiseMax(0.0),
                           out.upper[k - 1].cwiseMax(0.0));
        Vec l = step.lower.cwiseMax(plain.lower[k]);
        Vec u = step.upper.cwiseMin(plain.upper[k]);
        if (clip) {
            l = l.cwiseMax(clip->lower[k]);
            u = u.cwiseMin(clip->upper[k]);
        }
        std::vector<Eigen::Index> idx;
        if (k == net.n_layers() - 1) {
            for (Eigen::Index i = 0; i < l.size(); ++i) idx.push_back(i);
        } else {
            idx = unstable_rows(l, u);
        }
        if (!idx.empty()) {
            Vec cl, cu;
            backward(net, k, idx, live, xc, xr, l1, cl, cu);
            // one more rounding per layer for the slopes and intercepts, and the intercept
            // terms (|t_j| <= |l_j| <= cm_j: at most cm_k per layer) beside the weights'
            const double g = gamma_slack(n_terms + 2.0 * k);
            ops += static_cast<double>(net.W[k].cols()) * static_cast<double>(net.W[k - 1].cols());
            const double tiny = subnormal_slack(ops + n_terms + 2.0 * k) * (k + 1.0) * amp;
            for (std::size_t p = 0; p < idx.size(); ++p) {
                const Eigen::Index i = idx[p];
                const double m = std::max(mag[k][i], (k + 1.0) * cm[i]);
                const double slack = g * m + (m > 0.0 ? tiny : 0.0);
                l[i] = std::max(l[i], cl[static_cast<Eigen::Index>(p)] - slack);
                u[i] = std::min(u[i], cu[static_cast<Eigen::Index>(p)] + slack);
            }
        }
        out.lower.push_back(std::move(l));
        out.upper.push_back(std::move(u));
    }
    return out;
}

LinearBounds crown_linear(const NetworkView& net, const Vec& lo, const Vec& hi,
                          const LayerBounds& given, int k, const std::vector<Eigen::Index>& idx) {
    if (k < 0 || k >= net.n_layers()) throw std::invalid_argument("crown_linear: no layer " + std::to_string(k));
    if (static_cast<int>(given.lower.size()) < k || static_cast<int>(given.upper.size()) < k)
        throw std::invalid_argument("crown_linear: bounds of every layer before the target needed");
    for (int j = 0; j < k; ++j)
        if (given.lower[j].size() != net.width(j) || given.upper[j].size() != net.width(j))
            throw std::invalid_argument("crown_linear: bounds of layer " + std::to_string(j) +
                                        " do not match its width");
    for (Eigen::Index i : idx)
        if (i < 0 || i >= net.width(k)) throw std::invalid_argument("crown_linear: unit out of range");
    // the slack of crown() for layer k, from the same magnitudes (see there)
    std::vector<Vec> mag;
    interval(net, lo, hi, &mag);
    std::vector<LiveLayer> live;
    double n_terms = static_cast<double>(net.W[0].cols());
    Vec cm = net.W[0].cwiseAbs() * lo.cwiseAbs().cwiseMax(hi.cwiseAbs()) + net.b[0].cwiseAbs();
    double amp = std::max(1.0, lo.cwiseAbs().cwiseMax(hi.cwiseAbs()).maxCoeff()) * net.amplification[0];
    double ops = 0.0;
    for (int j = 1; j <= k; ++j) {
        amp *= net.amplification[static_cast<std::size_t>(j)];
        live.push_back(make_live_layer(net, j - 1, given.lower[j - 1], given.upper[j - 1]));
        n_terms += static_cast<double>(net.W[j].cols());
        cm = net.W[j].cwiseAbs() * (given.upper[j - 1].array() > 0.0).select(cm, 0.0) +
             net.b[j].cwiseAbs();
        ops += static_cast<double>(net.W[j].cols()) * static_cast<double>(net.W[j - 1].cols());
    }
    LinearBounds out;
    const Eigen::Index m = static_cast<Eigen::Index>(idx.size());
    RowMat M;
    back_substitute(net, k, idx, live, M, out.cU, out.cL);
    out.AU = M.topRows(m);
    out.AL = M.bottomRows(m);
    out.slack.resize(m);
    const double g = gamma_slack(n_terms + 2.0 * k);
    const double tiny = subnormal_slack(ops + n_terms + 2.0 * k) * (k + 1.0) * amp;
    for (Eigen::Index p = 0; p < m; ++p) {
        const Eigen::Index i = idx[static_cast<std::size_t>(p)];
        const double mm = std::max(mag[static_cast<std::size_t>(k)][i], (k + 1.0) * cm[i]);
        out.slack[p] = g * mm + (mm > 0.0 ? tiny : 0.0);
    }
    return out;
}

BoxBounds crown_boxes(const NetworkView& net, const RowMat& LO, const RowMat& HI,
                      const LayerBounds* clip, const BoxBounds* box_clip) {
    if (LO.rows() != HI.rows() || LO.cols() != net.n_in() || HI.cols() != net.n_in())
        throw std::invalid_argument("crown_boxes: LO and HI must both have shape (B, n_in)");
    Eigen::Index total = 0;
    for (int k = 0; k < net.n_layers(); ++k) total += net.width(k);
    if (box_clip && (box_clip->lower.rows() != LO.rows() || box_clip->upper.rows() != LO.rows() ||
                     box_clip->lower.cols() != total || box_clip->upper.cols() != total))
        throw std::invalid_argument("crown_boxes: box_clip must hold two (B, total units) matrices");
    BoxBounds out{RowMat(LO.rows(), total), RowMat(LO.rows(), total)};
    parallel_chunks(LO.rows(), 1, [&](std::ptrdiff_t b, std::ptrdiff_t e) {
        for (std::ptrdiff_t r = b; r < e; ++r) {
            LayerBounds C;  // this box's clip: the shared one intersected with its own row
            if (box_clip) {
                Eigen::Index c = 0;
                for (int k = 0; k < net.n_layers(); ++k) {
                    const Eigen::Index n = net.width(k);
                    Vec l = box_clip->lower.row(r).segment(c, n).transpose();
                    Vec u = box_clip->upper.row(r).segment(c, n).transpose();
                    if (clip) {
                        l = l.cwiseMax(clip->lower[k]);
                        u = u.cwiseMin(clip->upper[k]);
                    }
                    C.lower.push_back(std::move(l));
                    C.upper.push_back(std::move(u));
                    c += n;
                }
            }
            const LayerBounds B = crown(net, LO.row(r).transpose(), HI.row(r).transpose(),
                                        box_clip ? &C : clip);
            Eigen::Index c = 0;
            for (int k = 0; k < net.n_layers(); ++k) {
                const Eigen::Index n = net.width(k);
                out.lower.row(r).segment(c, n) = B.lower[k].transpose();
                out.upper.row(r).segment(c, n) = B.upper[k].transpose();
                c += n;
            }
        }
    });
    return out;
}

}  // namespace emlpress
