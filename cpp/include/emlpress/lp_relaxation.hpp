// Rows and columns of the LP relaxation of a ReLU network (triangle relaxation of every
// unstable unit, exact substitution of stable ones), one layer at a time, as CSR arrays
// for HiGHS. Also a safe (rigorous) objective bound from any row multipliers.
// The LpBlock struct is shared with the big-M generator (bigm.hpp).
#pragma once

#include <cstdint>
#include <vector>

#include "emlpress/network.hpp"

namespace emlpress {

using Index = std::int32_t;  // HiGHS' HighsInt

struct LpBlock {
    std::vector<Index> binary;
    std::vector<Index> cols;  // column of each unit's output, -1 if none (inactive or substituted)
    std::vector<double> col_lower, col_upper;
    std::vector<double> row_lower, row_upper;
    std::vector<Index> starts, indices;
    std::vector<double> values;
};

// Appends columns and CSR rows to an LpBlock whose `starts` already holds its first 0;
// new columns are numbered from `next`.
struct BlockWriter {
    LpBlock& B;
    Index next;
    Index col(double lo, double hi) {
        B.col_lower.push_back(lo);
        B.col_upper.push_back(hi);
        return next++;
    }
    void entry(Index c, double v) {
        B.indices.push_back(c);
        B.values.push_back(v);
    }
    void end_row(double lo, double hi) {
        B.row_lower.push_back(lo);
        B.row_upper.push_back(hi);
        B.starts.push_back(static_cast<Index>(B.indices.size()));
    }
    // The rows tying the output a in [0, u] of an unstable unit (l < 0 < u) to its
    // pre-activation z: a >= z, and either the triangle a <= s (z - l), s = u / (u - l),
    // or, given the binary column d >= 0, the big-M rows a <= z - l (1 - d), a <= u d.
    void relu_rows(Index a, Index z, double l, double u, Index d = -1);
};

// A rigorous lower bound of min c^T x subject to row_lower <= A x <= row_upper and
// col_lower <= x <= col_upper, from any multipliers y (optimal or not, of either sign
// convention: both y and -y are tried and the larger bound is returned). d = c - A^T y;
// bound = sum_i min(y_i L_i, y_i U_i) + sum_j min(d_j l_j, d_j u_j), widened by its
// float64 rounding error. A (rows) in CSR. A multiplier whose row side is infinite is
// taken as 0 (still a valid choice); returns -inf when a column with a nonzero reduced
// cost has an infinite bound.
double safe_lower_bound(const std::vector<double>& cost, const std::vector<double>& col_lower,
                        const std::vector<double>& col_upper,
                        const std::vector<double>& row_lower,
                        const std::vector<double>& row_upper, const std::vector<Index>& starts,
                        const std::vector<Index>& indices, const std::vector<double>& values,
                        const double* y);

// Pre-activations of one layer as affine functions of LP columns:
// z = A v[ref] + c, |z_true - (A v + c)| <= err for every point of the network (err covers
// the float64 rounding of composing substituted layers; it is 0 when nothing was substituted).
struct Affine {
    std::vector<Index> ref;  // LP columns the rows of A refer to
    RowMat A;                // (units, ref.size())
    Vec c, err;
};

// The LP relaxation built so far: input columns, then one block per hidden layer. Keeps
// a CSR copy of every row so that safe bounds need only the cost and the multipliers.
//
// Per hidden unit (bounds l, u):
//   stably inactive (u <= 0): nothing (its output is 0)
//   stably active   (l >= 0): substituted (its output is its affine expression, no column)
//                             when the layer's rows refer to fewer columns than it has
//                             active units and no coefficient of those expressions exceeds
//                             1e6 (composition multiplies weights; HiGHS refuses 1e15),
//                             with a row l <= z <= u unless the column bounds
//                             already imply it (always when the expression is over the
//                             inputs alone: l, u are sound over the whole box);
//                             otherwise a column a in [l, u], row a = z
//   unstable:                 columns a in [0, u] and z in [l, u], rows z = A v + c,
//                             a - z >= 0 and a - s z <= -s l, s = u / (u - l) (triangle);
//                             with `integer` a binary d instead of the last row:
//                             a - z - l d <= -l and a - u d <= 0 (exact ReLU)
// Each row "z = A v + c" is the range [c - err, c + err], so that every point of the
// network is feasible whatever the rounding of substitution.
class LpRelaxation {
  public:
    LpRelaxation(const Vec& lo, const Vec& hi, bool integer = false);
    // Pre-activations of hidden or output layer j (the next layer to add) over the columns.
    Affine pre_activation(const NetworkView& net, int j) const;
    // Adds hidden layer j (its units' bounds `lower`, `upper`) and returns the new block.
    const LpBlock& add_layer(const NetworkView& net, int j, const Vec& lower, const Vec& upper);
    // Adds the linear constraints of an input domain (before any layer): `n_aux` auxiliary
    // columns in [aux_lower, aux_upper] (numbered after the inputs; e.g. t_i >= |x_i - c_i|
    // of an l1 ball) and CSR rows over the inputs and those columns. The rows stay basic
    // (multiplier 0) and the auxiliary columns at their lower bound in the starting bases,
    // so dual_feasible_basis still gives CROWN's bound over the box; the simplex then uses
    // the rows, and safe_bound certifies over them like every other row.
    const LpBlock& add_domain(const std::vector<double>& aux_lower,
                              const std::vector<double>& aux_upper,
                              const std::vector<double>& row_lower,
                              const std::vector<double>& row_upper,
                              const std::vector<Index>& starts, const std::vector<Index>& indices,
                              const std::vector<double>& values);
    Index n_cols() const { return static_cast<Index>(col_lower_.size()); }
    Index n_rows() const { return static_cast<Index>(row_lower_.size()); }
    int n_layers() const { return layers_; }
    // safe_lower_bound for the sparse cost (indices, values) and row multipliers y, over
    // the stored column bounds or, given `col_lower`/`col_upper` (n_cols each), over those
    // (a branch-and-bound node: phases fixed by column bounds, rows unchanged).
    double safe_bound(const std::vector<Index>& cost_idx, const std::vector<double>& cost_val,
                      const double* y, std::size_t n_y, const double* col_lower = nullptr,
                      const double* col_upper = nullptr) const;
    // A dual feasible starting basis for min cost^T x over the relaxation (LP only), in
    // HiGHS' status codes (0 at lower, 1 basic, 2 at upper): the backward pass of CROWN
    // over the rows. Going back layer by layer, an unstable unit whose output has a
    // positive reduced cost rests on one lower side of its triangle (a = 0, or the row
    // a >= z), one with a negative reduced cost on the upper side; each pre-activation
    // row then carries its unit's multiplier back to the earlier columns, and every input
    // sits at the bound its reduced cost asks for. The basis matrix is triangular (layer
    // order), so the basis is nonsingular, and its dual objective is the CROWN bound of
    // the chosen sides. The lower sides are tried as CROWN's adaptive slope picks them
    // (a = z where u >= -l) and as each of the `n_hints` hints (rows of `hints`, column
    // values of earlier solutions: a = z where a was closer to z than to 0); the basis
    // with the largest dual objective is kept. Written: its statuses, its row multipliers
    // `row_dual` (n_rows; HiGHS' sign convention, c - A^T y the reduced costs) and its
    // primal point `col_value` (n_cols: inputs at their bounds, then every unit forward from
    // its nonbasic row or bound). Returned: the dual objective and how far that point lies
    // outside the bounds of its basic rows and columns (0 when the basis is also primal
    // feasible, i.e. optimal: the LP needs no simplex iteration).
    struct Start {
        double objective = 0.0, violation = 0.0;
    };
    Start dual_feasible_basis(const std::vector<Index>& cost_idx,
                              const std::vector<double>& cost_val, const double* hints,
                              std::size_t n_hints, std::int8_t* col_status,
                              std::int8_t* row_status, double* row_dual, double* col_value) const;

    // Lower sides for the starting bases of many objectives at once (LP only), by
    // optimised CROWN slopes (alpha-CROWN, Xu et al. 2021): for each objective (a row of
    // `costs`, (n_obj, cost_idx.size()) row-major, min costs.x), every unstable unit with
    // a positive multiplier takes the lower relaxation a >= alpha z, alpha in [0, 1]; the
    // dual bound is a function of the alphas whose gradient is the multiplier times z at
    // the bound's primal point (one forward pass), and `iterations` projected Adam steps
    // (`step`) ascend it, in float32 (the result only picks a basis). The alphas of the
    // best bound seen are written as hint rows for dual_feasible_basis: `hints` (n_obj,
    // n_cols) row-major, 1 at every unstable unit's z and its alpha at its a, 0 elsewhere
    // (as column values: dual_feasible_basis then rests the unit on a >= z where
    // alpha > 1/2). Objectives are split over threads.
    void alpha_hints(const std::vector<Index>& cost_idx, const double* costs, std::size_t n_obj,
                     int iterations, double step, double* hints) const;

  private:
    void append(const LpBlock& B);
    // the sparse cost (indices, values) over all columns
    std::vector<double> dense_cost(const std::vector<Index>& cost_idx,
                                   const std::vector<double>& cost_val) const;
    // dual_feasible_basis for one choice of lower sides (`hint` or CROWN's when null);
    // `cost` dense, `g` scratch for the reduced costs; writes the row multipliers; returns
    // the dual objective
    double crown_basis(const std::vector<double>& cost, const double* hint,
                       std::int8_t* col_status, std::int8_t* row_status, double* row_dual,
                       std::vector<double>& g) const;
    // the primal point of a basis of dual_feasible_basis (written to x) and its largest
    // bound violation over basic rows and columns (inf if some column is not determined)
    double primal_point(const std::int8_t* col_status, const std::int8_t* row_status,
                        double* x) const;
    // a hidden unit with an output column a: its pre-activation row `eq`, and for an
    // unstable unit its pre-activation column z and triangle rows ge (a >= z), le (upper)
    struct Unit {
        Index a, z, eq, ge, le;
        double l, u;
    };
    // a hidden layer added (not for `integer`): its units with an output column, in unit
    // order, and their pre-activation rows dense, z = A v[ref] + c (a = ... for an active
    // unit), in float32 for alpha_hints
    struct Layer {
        std::vector<Unit> units;
        std::vector<Index> ref;  // the columns the rows refer to
        Eigen::MatrixXf A;       // (units, ref.size())
        Eigen::VectorXf c;
    };
    std::vector<Layer> lp_layers_;
    // post-activations of the last layer added: P v[ref] + p, error <= perr; `exact` while
    // P is a pure selection (no substitution, so composing it rounds nothing)
    std::vector<Index> ref_;
    RowMat P_;
    Vec p_, perr_;
    bool exact_ = true;
    int layers_ = 0;
    std::vector<double> col_lower_, col_upper_, row_lower_, row_upper_, values_;
    std::vector<Index> starts_{0}, indices_;
    LpBlock last_;
    std::size_t n_in_;
    std::size_t n_aux_ = 0;  // domain columns after the inputs (add_domain)
    bool integer_;
};

}  // namespace emlpress
