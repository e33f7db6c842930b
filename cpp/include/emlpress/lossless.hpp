// Lossless compression kernels (Serra, Kumar and Ramalingam, 2020): the rank test on
// stably active units and the folding of removed units into the next layer.
//
// Notation for hidden layer k with input x (the previous layer's output):
//   z = W x + b,  h = relu(z),  next layer  z' = V h + c.
// Removal rules, each exact on the box where the bounds hold:
//   * upper_i <= 0:   h_i = 0, so column i of V is dropped.
//   * W_i = 0:        h_i = relu(b_i) is a constant, so c += V[:, i] relu(b_i).
//   * lower_i >= 0 and W_i = sum_j a_j W_j over kept stably active units j:
//       h_i = z_i = sum_j a_j (W_j x + b_j) + (b_i - sum_j a_j b_j)
//           = sum_j a_j h_j + d_i,   d_i = b_i - a . b_S    (h_j = z_j: j is active too)
//     so V[:, j] += a_j V[:, i] for every kept j, and c += V[:, i] d_i.
//   * no unstable unit left: h = W x + b is affine, so z' = (V W) x + (V b + c).
#pragma once

#include <vector>

#include "emlpress/network.hpp"

namespace emlpress {

using CRef = Eigen::Ref<const RowMat>;
using VRef = Eigen::Ref<const Vec>;

// Rank test by incremental Gram-Schmidt with one re-orthogonalisation ("twice is
// enough"). Rows `candidates` of W are taken largest Euclidean norm first (ties in the
// given order), so a dependent row's coefficients are over rows at least as large; a row
// is dependent when the norm of its residual against the rows kept so far is at most
// rel_tol times its own Euclidean norm (a row far smaller than the others is not folded
// away as if it were zero). For a dependent row, alpha holds
// its coefficients over the kept rows (W_i ~= alpha_i . W_kept). rel_tol < 0 folds nothing
// (every candidate kept: lossless's max_coefficient keeps a layer that way).
struct DependentRows {
    std::vector<Eigen::Index> kept;       // indices into W, in the order taken
    std::vector<Eigen::Index> dependent;  // indices into W
    RowMat alpha;                         // dependent.size() x kept.size()
};
DependentRows dependent_rows(const CRef& W, const std::vector<Eigen::Index>& candidates,
                             double rel_tol);

// One hidden layer compressed and folded into the next.
//
// The folding is exact in real arithmetic only for exactly dependent rows and exact
// coefficients; in float64 the compressed next layer differs from the original by a
// little. `resid` bounds that difference rigorously, for the same (original) input x of
// the layer with |x| <= xabs componentwise:
//   z'_orig - z'_comp = sum_i V_i (r_i . x) - sum_j E_j z_j - e_c,
// with r_i = W_i - alpha_i W_S the exact residual of dependent row i (computed, plus its
// rounding bound), E_j the rounding error of the folded column j of V and e_c that of
// the folded biases (both bounded by gamma(n) times the magnitude of their terms).
struct LayerFold {
    RowMat W;  // kept rows of the layer (units in increasing index order)
    Vec b;
    RowMat V;  // next layer's weights, columns of the kept units only, folding applied
    Vec c;     // next layer's biases, folding applied
    std::vector<Eigen::Index> kept;  // kept unit indices (increasing)
    Eigen::Index n_inactive = 0, n_zero = 0, n_dependent = 0;
    bool any_unstable = false;  // false: the compressed layer is affine on the box
    Vec resid;                  // bound on |z'_orig - z'_comp| per next-layer unit
};
LayerFold fold_layer(const CRef& W, const VRef& b, const CRef& V, const VRef& c,
                     const VRef& lower, const VRef& upper, const VRef& xabs, double rel_tol);

// (V, c) o (W, b): the affine map x -> V (W x + b) + c, for a layer that is affine on
// the box (every unit stably active). `err` bounds the rounding of the product for
// |x| <= xabs: gamma(n) (|V| |W| xabs + |V| |b| + |c|).
void merge_affine(const CRef& W, const VRef& b, const CRef& V, const VRef& c, const VRef& xabs,
                  RowMat& W_out, Vec& b_out, Vec& err);

}  // namespace emlpress
