// A small persistent thread pool: kernels split rows or element ranges across the machine's cores.
#pragma once

#include <cstddef>
#include <algorithm>
#include <functional>
#include <vector>

namespace temper::kernels {

/// Calls body(begin, end) on disjoint chunks covering [0, count), in parallel when `count` is at
/// least `grain` per thread; chunk boundaries are multiples of `align`.
void parallel_for(size_t count, size_t grain, const std::function<void(size_t, size_t)>& body,
                  size_t align = 1);

/// The number of threads parallel_for splits work across.
int thread_count();

/// Runs body(begin, end, partial) on one row range per thread, each with its own zeroed `width`
/// floats, then sums the partials into `total` (zeroed first): for gradients summed over rows.
template <class Body>
void rows_with_partials(size_t rows, size_t width, float* total, Body body) {
  size_t chunks = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(thread_count()), rows / 16));
  std::vector<std::vector<float>> partials(chunks, std::vector<float>(width, 0.0f));
  parallel_for(chunks, 1, [&](size_t c0, size_t c1) {
    for (size_t c = c0; c < c1; c++) body(rows * c / chunks, rows * (c + 1) / chunks, partials[c].data());
  });
  std::fill(total, total + width, 0.0f);
  for (auto& partial : partials) {
    for (size_t j = 0; j < width; j++) total[j] += partial[j];
  }
}

}  // namespace temper::kernels
