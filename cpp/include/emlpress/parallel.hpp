// Fork-join over index ranges with std::thread. Deliberately not OpenMP: idle OpenMP
// workers spin and fight numpy's BLAS threads for the cores when users interleave calls.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace emlpress {

// Number of threads kernels use; 0 means std::thread::hardware_concurrency().
void set_num_threads(int n);
int num_threads();

// Calls fn(begin, end) on contiguous chunks of [0, n) in parallel, at most one chunk
// per thread and none smaller than min_chunk; rethrows the first exception.
// True on a worker thread of parallel_chunks: a kernel called from inside another's
// parallel loop (crown_boxes runs one crown per box on each thread) then runs serially
// instead of forking num_threads() more threads per call.
inline thread_local bool in_parallel_chunk = false;

template <class Fn>
void parallel_chunks(std::ptrdiff_t n, std::ptrdiff_t min_chunk, Fn&& fn) {
    if (in_parallel_chunk) {
        if (n > 0) fn(std::ptrdiff_t{0}, n);
        return;
    }
    const std::ptrdiff_t k =
        std::max<std::ptrdiff_t>(1, std::min<std::ptrdiff_t>(num_threads(), n / std::max<std::ptrdiff_t>(1, min_chunk)));
    if (k <= 1) {
        if (n > 0) fn(std::ptrdiff_t{0}, n);
        return;
    }
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(k));
    for (std::ptrdiff_t t = 0; t < k; ++t) {
        const std::ptrdiff_t b = n * t / k, e = n * (t + 1) / k;
        pool.emplace_back([&, t, b, e] {
            in_parallel_chunk = true;
            try {
                fn(b, e);
            } catch (...) {
                errors[static_cast<std::size_t>(t)] = std::current_exception();
            }
        });
    }
    for (auto& th : pool) th.join();
    for (auto& err : errors)
        if (err) std::rethrow_exception(err);
}

}  // namespace emlpress
