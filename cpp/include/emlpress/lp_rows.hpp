// Rows and columns of the LP relaxation of a ReLU network (triangle relaxation of every
// unstable unit, exact substitution of stable ones), one layer at a time, as CSR arrays
// for HiGHS. Also a safe (rigorous) objective bound from any row multipliers.
#pragma once

#include <cstdint>
#include <vector>

#include "emlpress/network.hpp"

namespace emlpress {

using Index = std::int32_t;  // HiGHS' HighsInt

// Columns and rows that add the post-activations of hidden layer j to an LP that already
// has columns for layer j-1's live units (`prev_cols[q]` is the column of unit q of layer
// j-1, or of input q when j == 0; -1 for a unit without a column, i.e. a dead one).
//   stably inactive (u <= 0):  no column, no row (its output is 0)
//   stably active   (l >= 0):  column a in [l, u], row  a - W_i a_prev = b_i
//   unstable:                  column a in [0, u], rows a - W_i a_prev >= b_i and
//                              a - s W_i a_prev <= s (b_i - l), s = u / (u - l)
// With `integer`, an unstable unit instead gets a binary column d (right after a) and
// the big-M rows a - W_i a_prev >= b_i, a - W_i a_prev - l d <= b_i - l, a - u d <= 0
// (exact ReLU); `binary` lists those columns.
// Zero weights give no entries. Rows are CSR (starts has n_rows + 1 entries).
struct LpBlock {
    std::vector<Index> binary;
    std::vector<Index> cols;  // column of each unit of layer j, -1 if inactive
    std::vector<double> col_lower, col_upper;
    std::vector<double> row_lower, row_upper;
    std::vector<Index> starts, indices;
    std::vector<double> values;
};

LpBlock lp_block(const MatMap& W, const VecMap& b, const Vec& lower, const Vec& upper,
                 const std::vector<Index>& prev_cols, Index first_col, bool integer = false);

// A rigorous lower bound of min c^T x subject to row_lower <= A x <= row_upper and
// col_lower <= x <= col_upper, from any multipliers y (optimal or not, of either sign
// convention: both y and -y are tried and the larger bound is returned). d = c - A^T y;
// bound = sum_i min(y_i L_i, y_i U_i) + sum_j min(d_j l_j, d_j u_j), widened by its
// float64 rounding error. A (rows) in CSR. Returns -inf when a needed bound is infinite.
double safe_lower_bound(const std::vector<double>& cost, const std::vector<double>& col_lower,
                        const std::vector<double>& col_upper,
                        const std::vector<double>& row_lower,
                        const std::vector<double>& row_upper, const std::vector<Index>& starts,
                        const std::vector<Index>& indices, const std::vector<double>& values,
                        const double* y);

// The LP relaxation built so far: input columns, then one block per hidden layer. Keeps
// a CSR copy of every row so that safe bounds need only the cost and the multipliers.
class LpRelaxation {
  public:
    LpRelaxation(const Vec& lo, const Vec& hi, bool integer = false);
    // Adds hidden layer j (its units' bounds `lower`, `upper`) and returns the new block.
    const LpBlock& add_layer(const NetworkView& net, int j, const Vec& lower, const Vec& upper);
    // Column of every unit of the last layer added (or of every input), -1 if none.
    const std::vector<Index>& last_cols() const { return cols_.back(); }
    Index n_cols() const { return static_cast<Index>(col_lower_.size()); }
    Index n_rows() const { return static_cast<Index>(row_lower_.size()); }
    // safe_lower_bound for the sparse cost (indices, values) and row multipliers y.
    double safe_bound(const std::vector<Index>& cost_idx, const std::vector<double>& cost_val,
                      const double* y, std::size_t n_y) const;

  private:
    std::vector<std::vector<Index>> cols_;
    std::vector<double> col_lower_, col_upper_, row_lower_, row_upper_, values_;
    std::vector<Index> starts_{0}, indices_;
    LpBlock last_;
    bool integer_;
};

}  // namespace emlpress
