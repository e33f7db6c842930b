#include "emlpress/lossless.hpp"

#include <algorithm>
#include <cmath>

#include "emlpress/rounding.hpp"

namespace emlpress {

DependentRows dependent_rows(const CRef& W, const std::vector<Eigen::Index>& candidates,
                             double rel_tol) {
    const Eigen::Index n = W.cols();
    const auto m = static_cast<Eigen::Index>(candidates.size());
    if (rel_tol < 0.0) {  // fold nothing: every candidate kept
        DependentRows none;
        none.kept = candidates;
        none.alpha.resize(0, m);
        return none;
    }
    // Kept rows K = L Q with Q orthonormal (rows) and L lower triangular.
    RowMat Q(std::min(m, n), n);
    RowMat L = RowMat::Zero(std::min(m, n), std::min(m, n));
    Eigen::Index k = 0;
    DependentRows out;
    std::vector<Vec> coeff;  // projections s = Q w of the dependent rows
    Vec r(n), s, s2;
    // Largest rows first (pivoting by norm): a row is then expressed through rows at least as
    // large, so its coefficients stay small. In index order a 1e-35 row kept first made a
    // parallel 1e-7 row its multiple by -3e27, and folding it cancelled terms of 1e24.
    // blueNorm: scaled, so rows of 1e-170 or 1e170 are ordered without under- or overflow.
    Vec norms(W.rows());
    for (Eigen::Index i : candidates) norms[i] = W.row(i).blueNorm();
    std::vector<Eigen::Index> order(candidates);
    std::stable_sort(order.begin(), order.end(),
                     [&norms](Eigen::Index a, Eigen::Index b) { return norms[a] > norms[b]; });
    for (Eigen::Index i : order) {
        r = W.row(i).transpose();
        // Relative to the row's own norm: the projection's rounding noise is, and a row far
        // smaller than the others (weights 1e-30 beside 1e-7) is no closer to their span.
        const double tol = rel_tol * r.norm();
        if (k > 0) {
            const auto Qk = Q.topRows(k);
            s.noalias() = Qk * r;
            r.noalias() -= Qk.transpose() * s;
            s2.noalias() = Qk * r;  // second pass removes what the first left behind
            r.noalias() -= Qk.transpose() * s2;
            s += s2;
        } else {
            s.resize(0);
        }
        const double rn = r.norm();
        if (rn <= tol || k == n) {
            out.dependent.push_back(i);
            coeff.push_back(s);
        } else {
            Q.row(k) = r.transpose() / rn;
            L.row(k).head(k) = s.transpose();
            L(k, k) = rn;
            ++k;
            out.kept.push_back(i);
        }
    }
    // w = s^T Q = s^T L^{-1} K, so alpha = L^{-T} s: solve L^T alpha = s.
    out.alpha.resize(static_cast<Eigen::Index>(out.dependent.size()), k);
    const auto Lk = L.topLeftCorner(k, k);
    for (std::size_t d = 0; d < coeff.size(); ++d) {
        // Rows kept after row d have coefficient 0: pad s, back substitution keeps the zeros.
        Vec sd = Vec::Zero(k);
        sd.head(coeff[d].size()) = coeff[d];
        out.alpha.row(static_cast<Eigen::Index>(d)) =
            Lk.transpose().triangularView<Eigen::Upper>().solve(sd).transpose();
    }
    return out;
}

LayerFold fold_layer(const CRef& W, const VRef& b, const CRef& V, const VRef& c,
                     const VRef& lower, const VRef& upper, const VRef& xabs, double rel_tol) {
    const Eigen::Index n = W.rows();
    LayerFold out;
    out.c = c;
    RowMat Vf = V;  // folded columns accumulate here
    std::vector<Eigen::Index> active, unstable, constant;  // constant: zero row, bias > 0
    for (Eigen::Index i = 0; i < n; ++i) {
        // Zero rows first: the rule is structural and holds whatever the bounds say.
        if ((W.row(i).array() == 0.0).all()) {
            ++out.n_zero;
            if (b[i] > 0.0) {
                out.c.noalias() += V.col(i) * b[i];
                constant.push_back(i);
            }
        } else if (upper[i] <= 0.0) {
            ++out.n_inactive;
        } else if (lower[i] >= 0.0) {
            active.push_back(i);
        } else {
            unstable.push_back(i);
        }
    }
    const DependentRows dep = dependent_rows(W, active, rel_tol);
    for (std::size_t d = 0; d < dep.dependent.size(); ++d) {
        const Eigen::Index i = dep.dependent[d];
        double shift = b[i];
        for (std::size_t j = 0; j < dep.kept.size(); ++j) {
            const double a = dep.alpha(static_cast<Eigen::Index>(d), static_cast<Eigen::Index>(j));
            if (a == 0.0) continue;
            Vf.col(dep.kept[j]) += a * V.col(i);
            shift -= a * b[dep.kept[j]];
        }
        out.c.noalias() += V.col(i) * shift;
    }
    out.n_dependent = static_cast<Eigen::Index>(dep.dependent.size());

    // Rigorous bound on what the folding changed (see lossless.hpp). Every float term below
    // carries gamma times its magnitude; the bound's own arithmetic is covered by the
    // final (1 + 1e-9) factor (its relative rounding is below n u << 1e-9).
    const double g = gamma_slack(static_cast<double>(
        std::max<Eigen::Index>({W.cols(), n, V.rows()}) + 2));
    Vec cmag = c.cwiseAbs();  // magnitude of the terms summed into the folded biases
    for (Eigen::Index i : constant) cmag.noalias() += V.col(i).cwiseAbs() * b[i];
    out.resid = Vec::Zero(V.rows());
    if (!dep.dependent.empty()) {
        const RowMat Wd = W(dep.dependent, Eigen::all);
        const RowMat Ws = W(dep.kept, Eigen::all);
        const Vec bs = b(dep.kept);
        const RowMat aabs = dep.alpha.cwiseAbs();
        RowMat R = Wd;
        if (!dep.kept.empty()) R.noalias() -= dep.alpha * Ws;
        RowMat Rabs = R.cwiseAbs();
        Rabs += g * Wd.cwiseAbs();
        if (!dep.kept.empty()) Rabs.noalias() += g * (aabs * Ws.cwiseAbs());
        const Vec rho = Rabs * xabs;  // >= |r_i . x|
        const RowMat Vd = V(Eigen::all, dep.dependent);
        const RowMat Vdabs = Vd.cwiseAbs();
        out.resid.noalias() += Vdabs * rho;
        Vec bmag = b(dep.dependent).cwiseAbs();
        if (!dep.kept.empty()) bmag.noalias() += aabs * bs.cwiseAbs();
        cmag.noalias() += Vdabs * bmag;
        if (!dep.kept.empty()) {
            // folded columns: |E_S| <= g (|V_S| + |V_dep| |alpha|), times |z_S| <= upper_S
            const Vec us = upper(dep.kept).cwiseMax(0.0);
            const RowMat Vs = V(Eigen::all, dep.kept);
            out.resid.noalias() += g * (Vs.cwiseAbs() * us);
            out.resid.noalias() += g * (Vdabs * (aabs * us));
        }
    }
    out.resid += g * cmag;
    out.resid *= 1.0 + 1e-9;
    out.kept = dep.kept;
    out.kept.insert(out.kept.end(), unstable.begin(), unstable.end());
    std::sort(out.kept.begin(), out.kept.end());
    out.any_unstable = !unstable.empty();
    out.W = W(out.kept, Eigen::all);
    out.b = b(out.kept);
    out.V = Vf(Eigen::all, out.kept);
    return out;
}

void merge_affine(const CRef& W, const VRef& b, const CRef& V, const VRef& c, const VRef& xabs,
                  RowMat& W_out, Vec& b_out, Vec& err) {
    W_out.noalias() = V * W;
    b_out = c;
    b_out.noalias() += V * b;
    const double g = gamma_slack(static_cast<double>(std::max(W.rows(), W.cols()) + 2));
    const RowMat Vabs = V.cwiseAbs();
    err = c.cwiseAbs();
    err.noalias() += Vabs * b.cwiseAbs();
    err.noalias() += Vabs * (W.cwiseAbs() * xabs);
    err *= 2.0 * g * (1.0 + 1e-9);  // the product and the bias sum each round once
}

}  // namespace emlpress
