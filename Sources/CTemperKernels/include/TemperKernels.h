// Fused, vectorized, multi-threaded MLX primitives for the CPU hot spots (C++ API, used by the shim).
// Inputs are float32; non-contiguous inputs are made contiguous first. Every op has exact gradients
// through its own backward primitive.
#ifndef TEMPER_KERNELS_H
#define TEMPER_KERNELS_H
#ifdef __cplusplus

#include "mlx/array.h"

namespace temper::kernels {

/// The elementwise functions with a fused kernel.
enum class Unary : int { exp = 0, log, sigmoid, silu, gelu_tanh, gelu_erf, tanh, softplus };

mlx::core::array unary(Unary op, const mlx::core::array& x);
/// silu(gate) * up.
mlx::core::array swiglu(const mlx::core::array& gate, const mlx::core::array& up);
/// Along the last axis.
mlx::core::array softmax(const mlx::core::array& x);
mlx::core::array log_softmax(const mlx::core::array& x);
/// Along the last axis, which is removed.
mlx::core::array logsumexp(const mlx::core::array& x);

/// The number of worker threads kernels split work across.
int thread_count();

}  // namespace temper::kernels

#endif
#endif
