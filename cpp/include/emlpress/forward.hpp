#pragma once

#include "emlpress/network.hpp"

namespace emlpress {

// Network output for a batch X of shape (n, n_in); returns (n, n_out).
RowMat forward(const NetworkView& net, const Eigen::Ref<const RowMat>& X);

// Pre-activations of every layer for a batch X; element l has shape (n, width(l)).
std::vector<RowMat> preactivations(const NetworkView& net, const Eigen::Ref<const RowMat>& X);

}  // namespace emlpress
