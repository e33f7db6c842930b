// Tolerance policy for floating-point soundness.
//
// Every bound is widened outward by gamma(n) * magnitude, where magnitude bounds
// the sum of absolute values of all terms that produced it, ||W_i||_1 max_j |x_j|
// + |b_i| over the layer's input box x, and gamma(n) = 2 (n + 3) u, u = 2^-53 the unit roundoff. Higham's
// gamma_n = n u / (1 - n u) bounds the rounding error of an n-term float64 dot
// product; the factor 2 covers the same error made by the forward pass that a
// user compares against. Bounds that compose several layers take the composed magnitude
// |W_k| (... (|W_0| max|x| + |b_0|) ...) + |b_k| instead: CROWN's back-substitution times
// (k + 1) for the relaxations' intercepts, with gamma(n + 2k); exact LP/MILP values and the
// bounds lossless compression carries over, the forward pass' gamma(n) times it
// (emlpress.bounds.forward_rounding). When a layer's outputs cancel, the one-layer
// magnitude ||W_k||_1 max|a_{k-1}| is far smaller than the rounding of either the
// composition or the forward pass (found by hypothesis: CROWN 8 ulps inside a forward
// pass). Each bound also takes an absolute term for results below the normal range,
// where rounding is absolute (up to half the subnormal spacing 2^-1074 per operation) and
// a relative gamma covers nothing: subnormal_slack(n) per n-term sum, times how far later
// operations can amplify it, wherever the magnitude is nonzero (all-zero terms round
// nothing, so bounds of exactly 0 stay 0). Sign-exact rounding (interval_layer in
// bound_propagation.cpp): where every term of a unit's sum, bias included, is <= 0 (>= 0) on
// the box, the sum is <= 0 (>= 0) in any order of float64 additions and in exact arithmetic, so
// that side of the bound is clamped to 0 with no slack (an exact zero after L1/L2 training,
// bias 0 and non-positive weights on ReLU outputs, stays stably inactive). After this
// widening, stability is decided at exactly 0.
#pragma once

#include <limits>

namespace emlpress {

inline double gamma_slack(double n_terms) {
    constexpr double u = std::numeric_limits<double>::epsilon() / 2.0;
    return 2.0 * (n_terms + 3.0) * u;
}

// The absolute rounding an n-term float64 sum (and the forward pass beside it) can make
// on subnormal results: 2 (n + 3) times the smallest subnormal.
inline double subnormal_slack(double n_terms) {
    return 2.0 * (n_terms + 3.0) * std::numeric_limits<double>::denorm_min();
}

}  // namespace emlpress
