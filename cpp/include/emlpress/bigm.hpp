// Big-M MILP encoding of a whole ReLU network for HiGHS, as one block of columns and
// CSR rows appended to an existing model.
//
// Hidden unit i of layer j with pre-activation bounds [l, u] and z = W_i a_prev + b_i:
//   u <= 0 (stably inactive): no column, no row; its output is 0.
//   l >= 0 (stably active):   column a in [l, u] and the row a - W_i a_prev = b_i;
//                             no binary.
//   otherwise (unstable):     columns z in [l, u], a in [0, u], binary d and
//                             z - W_i a_prev = b_i,
//                             a - z >= 0,  a - z - l d <= -l,  a - u d <= 0
//                             (M = u and -l: the unit's own bounds). The weights appear
//                             once, in the row of z, not in two big-M rows: half the
//                             nonzeros of the textbook form, same LP relaxation.
// Output unit i: column y in [l, u] (its bounds, which hold on the box) and the row
// y - W_i a_prev = b_i. Zero weights give no matrix entries.
#pragma once

#include <vector>

#include "emlpress/lp_relaxation.hpp"

namespace emlpress {

// All columns (bounds), rows (CSR) and binaries of the network (the LpBlock part), and
// where each unit's variables are.
struct BigMBlock : LpBlock {
    std::vector<std::vector<Index>> unit_cols;    // per layer (hidden..., output), -1: none
    std::vector<std::vector<Index>> binary_cols;  // per hidden layer, -1: no binary
    std::vector<std::vector<Index>> pre_cols;     // per hidden layer, z of unstable units, -1: none
};

// `input_cols[q]`: the model's column for input q; new columns start at `first_col`.
BigMBlock bigm_network(const NetworkView& net, const std::vector<Vec>& lower,
                       const std::vector<Vec>& upper, const std::vector<Index>& input_cols,
                       Index first_col);

}  // namespace emlpress
