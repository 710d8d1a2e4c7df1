// A small persistent thread pool: kernels split rows or element ranges across the machine's cores.
#pragma once

#include <cstddef>
#include <functional>

namespace temper::kernels {

/// Calls body(begin, end) on disjoint chunks covering [0, count), in parallel when `count` is at
/// least `grain` per thread; chunk boundaries are multiples of `align`.
void parallel_for(size_t count, size_t grain, const std::function<void(size_t, size_t)>& body,
                  size_t align = 1);

}  // namespace temper::kernels
