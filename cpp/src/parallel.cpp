#include "emlpress/parallel.hpp"

#include <atomic>

namespace emlpress {

namespace {
std::atomic<int> g_threads{0};
}

void set_num_threads(int n) { g_threads = std::max(0, n); }

int num_threads() {
    const int n = g_threads.load();
    if (n > 0) return n;
    return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace emlpress
