#include "emlpress/forward.hpp"

#include "emlpress/parallel.hpp"

namespace emlpress {

namespace {
// Z = X W^T + b for a batch; Eigen's GEMM does the product.
RowMat affine(const MatMap& W, const VecMap& b, const Eigen::Ref<const RowMat>& X) {
    RowMat Z = X * W.transpose();
    Z.rowwise() += b.transpose();
    return Z;
}

RowMat forward_rows(const NetworkView& net, const Eigen::Ref<const RowMat>& X) {
    RowMat A = affine(net.W[0], net.b[0], X);
    for (int l = 1; l < net.n_layers(); ++l) {
        A = A.cwiseMax(0.0);
        A = affine(net.W[l], net.b[l], A);
    }
    return A;
}
}  // namespace

// Large batches are split into row blocks over the kernel threads; each row's result
// does not depend on the split (same GEMM per row), so results are reproducible.
RowMat forward(const NetworkView& net, const Eigen::Ref<const RowMat>& X) {
    RowMat Y(X.rows(), net.n_out());
    parallel_chunks(X.rows(), 1024, [&](std::ptrdiff_t b, std::ptrdiff_t e) {
        Y.middleRows(b, e - b) = forward_rows(net, X.middleRows(b, e - b));
    });
    return Y;
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
