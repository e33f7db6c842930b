#include "emlpress/forward.hpp"

namespace emlpress {

namespace {
// Z = X W^T + b for a batch; Eigen's GEMM does the product.
RowMat affine(const MatMap& W, const VecMap& b, const Eigen::Ref<const RowMat>& X) {
    RowMat Z = X * W.transpose();
    Z.rowwise() += b.transpose();
    return Z;
}
}  // namespace

RowMat forward(const NetworkView& net, const Eigen::Ref<const RowMat>& X) {
    RowMat A = affine(net.W[0], net.b[0], X);
    for (int l = 1; l < net.n_layers(); ++l) {
        A = A.cwiseMax(0.0);
        A = affine(net.W[l], net.b[l], A);
    }
    return A;
}

std::vector<RowMat> preactivations(const NetworkView& net, const Eigen::Ref<const RowMat>& X) {
    std::vector<RowMat> out;
    out.reserve(net.n_layers());
    out.push_back(affine(net.W[0], net.b[0], X));
    for (int l = 1; l < net.n_layers(); ++l) {
        RowMat post = out.back().cwiseMax(0.0);
        out.push_back(affine(net.W[l], net.b[l], post));
    }
    return out;
}

}  // namespace emlpress
