// Shared by the kernel translation units: the kernel bodies compiled per instruction set, the
// run-time choice between them, and scheduling work on MLX's CPU stream.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "Parallel.h"
#include "mlx/allocator.h"
#include "mlx/backend/cpu/encoder.h"
#include "mlx/ops.h"
#include "mlx/primitives.h"

namespace temper::kernels {

/// The scalars of one AdamW step for one tensor (shared by both instruction-set builds).
struct AdamWStep {
  float learning_rate, beta1, beta2, eps, weight_decay;
  float bias_correction1, bias_correction2;  // 1 − β^t
};

#define TEMPER_BODIES "KernelBodies.inc"
#include "PerInstructionSet.inc"

namespace mx = mlx::core;

#if defined(__x86_64__)
/// AVX-512 F/BW/DQ/VL, with the OS saving the registers (__builtin_cpu_supports checks XGETBV).
inline bool cpu_runs_avx512() {
  __builtin_cpu_init();  // may run from a constructor, before the runtime's own initialization
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}
inline bool cpu_runs_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

/// The widest kernel build this CPU (and OS) runs; TEMPER_KERNEL_ISA=avx2 or portable caps it, to
/// compare builds or rule one out.
enum class InstructionSet { portable, avx2, avx512 };

inline InstructionSet kernel_instruction_set() {
#if defined(__x86_64__)
  static const InstructionSet chosen = [] {
    const char* cap = std::getenv("TEMPER_KERNEL_ISA");
    std::string limit = cap ? cap : "avx512";
    if (cpu_runs_avx512() && limit == "avx512") return InstructionSet::avx512;
    if (cpu_runs_avx2_fma() && limit != "portable") return InstructionSet::avx2;
    return InstructionSet::portable;
  }();
  return chosen;
#else
  return InstructionSet::portable;
#endif
}

#if defined(__x86_64__)
#define TEMPER_DISPATCH(function, ...)                                                            \
  (kernel_instruction_set() == InstructionSet::avx512 ? avx512::function(__VA_ARGS__)            \
   : kernel_instruction_set() == InstructionSet::avx2 ? avx2::function(__VA_ARGS__)              \
                                                       : portable::function(__VA_ARGS__))
#define TEMPER_DISPATCH_8_LANES(function, ...) \
  (kernel_instruction_set() != InstructionSet::portable ? avx2::function(__VA_ARGS__) : portable::function(__VA_ARGS__))
#else
#define TEMPER_DISPATCH(function, ...) portable::function(__VA_ARGS__)
#define TEMPER_DISPATCH_8_LANES(function, ...) portable::function(__VA_ARGS__)
#endif

// Below this many elements per thread, splitting costs more than it saves.
constexpr size_t kElementGrain = 16384;

/// Rows per thread, at least, for rows of `width` elements.
inline size_t row_grain(size_t width) { return std::max<size_t>(1, kElementGrain / std::max<size_t>(width, 1)); }

inline mx::Stream cpu_stream() { return mx::default_stream(mx::Device::cpu); }

/// Inverted dropout with a counter-based mask (dropout_apply): element i of a tensor is zeroed
/// when the hash of (seed, i) falls below `threshold` of 2^24, the rest scaled by 1 / (1 - p).
struct DropoutMask {
  uint64_t seed;
  uint32_t threshold;
  float scale;
  /// The index of the tensor's first element within a larger one the mask is drawn for (a
  /// data-parallel rank's rows of the whole batch), so each rank draws its part of one mask.
  uint64_t offset;

  static DropoutMask of(float probability, uint64_t seed, uint64_t offset = 0) {
    if (!(probability >= 0.0f && probability < 1.0f)) {
      throw std::invalid_argument("[temper::kernels::dropout] probability must be in [0, 1), got " + std::to_string(probability));
    }
    return {seed, static_cast<uint32_t>(std::lround(double(probability) * double(1u << 24))), 1.0f / (1.0f - probability), offset};
  }
  bool operator==(const DropoutMask&) const = default;

  /// y[0, count) = dropout(x), or y += dropout(x) with `accumulate`; indices from `offset`, so the
  /// mask of a whole [N, in] tensor is the same wherever it is drawn.
  void apply(const float* x, float* y, size_t count, bool accumulate = false) const {
    parallel_for(count, kElementGrain, [&](size_t b, size_t e) {
      if (accumulate) TEMPER_DISPATCH(dropout_accumulate, x, y, seed, threshold, scale, offset, b, e);
      else TEMPER_DISPATCH(dropout_apply, x, y, seed, threshold, scale, offset, b, e);
    }, 8);
  }
};

/// Allocates every output that has no buffer yet (a primitive may first give an output a donated
/// input's buffer), then schedules `work(inputs, outputs)` on the primitive's CPU stream after the
/// work that produces the inputs. The copies keep the buffers alive until the task has run.
template <class Work>
void dispatch(mx::Stream stream, const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs, Work work) {
  for (auto& out : outputs) {
    if (!out.data_shared_ptr()) out.set_data(mx::allocator::malloc(out.nbytes()));
  }
  auto& encoder = mx::cpu::get_command_encoder(stream);
  for (auto& in : inputs) encoder.set_input_array(in);
  for (auto& out : outputs) encoder.set_output_array(out);
  encoder.dispatch([inputs, outputs, work]() mutable { work(inputs, outputs); });
}

/// Every output of a multi-output primitive holds its own copy of the input list, so each input
/// looks shared once per output (3k times for AdamW's) and MLX would never let it be donated.
/// Drops the copies held by the outputs other than the one being evaluated (whose list is
/// `inputs`), as MLX does once the step is scheduled, unless a transform is tracing the graph and
/// still needs them.
inline void release_sibling_inputs(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  for (auto& out : outputs) {
    if (out.is_tracer()) return;
  }
  for (auto& out : outputs) {
    if (&out.inputs() != &inputs) out.inputs().clear();
  }
}

[[noreturn]] inline void no_gpu(const char* name) {
  throw std::runtime_error(std::string("[") + name + "] Temper's fused kernels run on the CPU; use MLX's ops on the GPU");
}

}  // namespace temper::kernels
