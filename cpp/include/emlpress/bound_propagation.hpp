// Sound pre-activation bounds over an input box.
#pragma once

#include "emlpress/network.hpp"

namespace emlpress {

// Interval arithmetic (centre/radius form), one pass over each weight matrix.
// Also returns, in `magnitude`, the per-neuron magnitude of terms used for the
// rounding slack of every later method (see rounding.hpp).
LayerBounds interval(const NetworkView& net, const Vec& lo, const Vec& hi,
                     std::vector<Vec>* magnitude = nullptr);

// Backward linear relaxation (CROWN / DeepPoly) with the adaptive lower slope
// (slope 1 when u >= -l, else 0). Intermediate layers use the CROWN bounds of
// the layers before them; neurons that interval arithmetic already proves
// stable keep their interval bounds (their relaxation is exact), the output
// layer is always bounded. The result is intersected with the interval bounds and, when
// given, with `clip`: bounds known to hold on a box containing [lo, hi] (a sub-box's
// CROWN then starts from its parent's, or the whole box's LP or exact, bounds: they hold
// on every part of it, and each layer's relaxation is built on the intersection).
//
// With `l1` (the inputs also satisfy ||x - center||_1 <= eps, [lo, hi] a box containing
// that domain), every linear bound a.x + c is also concretised over the ball in closed
// form by the dual norm, a.center -+ eps ||a||_inf, and the tighter of that and the box's
// value kept (each is sound on the ball intersected with the box), first layer included.
struct L1Ball {
    Vec center;
    double eps;
};
LayerBounds crown(const NetworkView& net, const Vec& lo, const Vec& hi,
                  const LayerBounds* clip = nullptr, const L1Ball* l1 = nullptr);

// CROWN's linear bounds of units `idx` of layer k over the inputs, through the relaxations
// the bounds `given` (per layer before k, sound on a domain inside [lo, hi]) define:
// for every input x of that domain, AL.row(p) x + cL[p] - slack[p] <= z_idx[p](x) <=
// AU.row(p) x + cU[p] + slack[p], where slack is crown()'s rounding slack of layer k (for
// |x| <= max(|lo|, |hi|)). For concretising over a polytope (an LP per row), where the box's
// closed form is too loose.
struct LinearBounds {
    RowMat AU, AL;
    Vec cU, cL, slack;
};
LinearBounds crown_linear(const NetworkView& net, const Vec& lo, const Vec& hi,
                          const LayerBounds& given, int k, const std::vector<Eigen::Index>& idx);

// CROWN on each box [LO.row(r), HI.row(r)] (B boxes of the network's inputs), the boxes
// split over threads (each crown serial), clipped by `clip` when given and, when
// `box_clip` is given, box r also by its row r (bounds known to hold on that box, e.g. its
// parent's: (B, total units) each, the layout of the result). Returns (B, total units)
// matrices whose columns are the layers' units in order.
struct BoxBounds {
    RowMat lower, upper;
};
BoxBounds crown_boxes(const NetworkView& net, const RowMat& LO, const RowMat& HI,
                      const LayerBounds* clip = nullptr, const BoxBounds* box_clip = nullptr);

// ReLU relaxation of one layer given its pre-activation bounds: upper line
// a <= su z + tu, lower line a >= sl z. Stable neurons get exact lines.
struct Relaxation {
    Vec su, tu, sl;
};
Relaxation relu_relaxation(const Vec& l, const Vec& u);

}  // namespace emlpress
