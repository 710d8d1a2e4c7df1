// Fused, vectorized, multi-threaded MLX primitives for the CPU hot spots (C++ API, used by the shim).
// Inputs are float32; non-contiguous inputs are made contiguous first. Every op has exact gradients
// through its own backward primitive.
#ifndef TEMPER_KERNELS_H
#define TEMPER_KERNELS_H
#ifdef __cplusplus

#include <optional>
#include <string>
#include <vector>

#include "mlx/array.h"

namespace temper::kernels {

/// The elementwise functions with a fused kernel.
enum class Unary : int { exp = 0, log, sigmoid, silu, gelu_tanh, gelu_erf, tanh, softplus };

mlx::core::array unary(Unary op, const mlx::core::array& x);
/// silu(gate) * up.
mlx::core::array swiglu(const mlx::core::array& gate, const mlx::core::array& up);
/// Inverted dropout: each element is zeroed with `probability`, else scaled by 1 / (1 - probability).
/// The mask is a hash of (seed, element index): the same seed gives the same mask, in the backward too.
/// `offset`: x's first element's index in the tensor the mask is drawn for.
mlx::core::array dropout(const mlx::core::array& x, float probability, uint64_t seed, uint64_t offset = 0);
/// Along the last axis.
mlx::core::array softmax(const mlx::core::array& x);
mlx::core::array log_softmax(const mlx::core::array& x);
/// Along the last axis, which is removed.
mlx::core::array logsumexp(const mlx::core::array& x);
/// On host memory (the sampler's rows): the max ignoring NaN (−inf if none), and the weights
/// exp((x − shift)·scale) for shift ≥ max x (NaN weighs 0), written to `weights` when not null,
/// returning their sum.
float host_max(const float* x, size_t count);
float host_exp_weights(const float* x, size_t count, float shift, float scale, float* weights);

/// The kernel set OpenBLAS runs (its core name), and whether Temper chose it over OpenBLAS's
/// fallback for CPUs it does not recognize.
std::string openblas_core();

/// x / √(mean(x²) + eps) · weight over the last axis; gradients for x and weight.
mlx::core::array rms_norm(const mlx::core::array& x, const mlx::core::array& weight, float eps);
/// Rotary embedding (rotate-half layout) of x [B, T, H, D] by angle tables cos, sin [1 or B, T, D/2],
/// returned as [B, H, T, D]; gradient for x.
mlx::core::array rope_heads(const mlx::core::array& x, const mlx::core::array& cos, const mlx::core::array& sin);

struct CrossEntropyOptions {
  int32_t ignore_index = -100;
  bool entropy = false;
  size_t token_chunk = 512;
  size_t vocabulary_chunk = 8192;
  /// Compute the loss sum's gradient for hidden (and weight) during the forward, for training
  /// steps where the loss sum is what gets differentiated: the logits are computed once instead of
  /// again in the backward, but the log-probs then carry no gradient.
  bool gradient_in_forward = false;
  bool weight_gradient_in_forward = false;
  /// Rows per chunk in that mode, whose logits span the whole vocabulary (SmolLM2: 50 MB, a quarter
  /// of its 1024-token logits; OpenBLAS runs the chunk's three products 10-25% faster than at 128).
  size_t gradient_token_chunk = 256;
};

/// From hidden states [N, D] and the LM-head weight [V, D]: {loss sum (Σ −w·log p(target)), weight
/// sum, per-token target log-probs [N], per-token logsumexp [N], per-token entropy [N]}. Ignored
/// rows give 0 everywhere and cost nothing. Differentiable in hidden and weight through the loss
/// sum and the log-probs (entropy and logsumexp carry no gradient).
std::vector<mlx::core::array> linear_cross_entropy(const mlx::core::array& hidden, const mlx::core::array& weight,
                                                   const mlx::core::array& targets,
                                                   const std::optional<mlx::core::array>& token_weights,
                                                   CrossEntropyOptions options);

struct AdamWOptions {
  float learning_rate = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float bias_correction1 = 1, bias_correction2 = 1;  // 1 − β^t for the step t being taken
};

/// One AdamW step for k tensors at once: {k new parameters, k first moments, k second moments}.
std::vector<mlx::core::array> adamw_update(const std::vector<mlx::core::array>& parameters,
                                           const std::vector<mlx::core::array>& gradients,
                                           const std::vector<mlx::core::array>& first_moments,
                                           const std::vector<mlx::core::array>& second_moments,
                                           const std::vector<float>& weight_decays, AdamWOptions options);

/// One blockwise 8-bit AdamW step for k tensors at once (bitsandbytes' 8-bit optimizers, Dettmers
/// et al. 2022): each moment is stored as uint8 codes into a sorted 256-entry codebook (`first_map`
/// for m, `second_map` for v), one float32 absmax per block of `block_size` elements. The step
/// dequantizes, takes adamw_update's float32 step, and requantizes each block with its new absmax
/// to the nearest code. Codes have their parameter's shape, absmax [⌈count/block_size⌉].
/// Returns {k parameters, k m codes, k m absmax, k v codes, k v absmax}.
std::vector<mlx::core::array> adamw_8bit_update(const std::vector<mlx::core::array>& parameters,
                                                const std::vector<mlx::core::array>& gradients,
                                                const std::vector<mlx::core::array>& first_codes,
                                                const std::vector<mlx::core::array>& first_absmax,
                                                const std::vector<mlx::core::array>& second_codes,
                                                const std::vector<mlx::core::array>& second_absmax,
                                                const std::vector<float>& weight_decays, AdamWOptions options,
                                                const std::vector<float>& first_map,
                                                const std::vector<float>& second_map, size_t block_size);

/// NF4 codes (uint8, two per byte, first in the high nibble) × per-block absmax → float32 `shape`.
mlx::core::array nf4_dequantize(const mlx::core::array& packed, const mlx::core::array& absmax,
                                const mlx::core::Shape& shape, size_t block_size);
/// int8 codes × per-block absmax / 127 → float32 `shape`.
mlx::core::array int8_dequantize(const mlx::core::array& codes, const mlx::core::array& absmax,
                                 const mlx::core::Shape& shape, size_t block_size);

struct AttentionOptions {
  float scale = 1.0f;
  bool causal = false;
  bool segments = false;  // set by attention() from its arguments
  bool mask = false;      // set by attention() from its arguments
};

/// softmax(q·kᵀ·scale + masks)·v, tiled. q [B, H, Tq, Dh]; k, v [B, Hkv, Tk, Dh], H a multiple of
/// Hkv. Optional segment ids (query [B, Tq], key [B, Tk]; attend within equal ids, negative = none)
/// and an additive or boolean mask broadcastable to [B, H, Tq, Tk]. Fully masked queries give 0.
mlx::core::array attention(const mlx::core::array& queries, const mlx::core::array& keys,
                           const mlx::core::array& values, AttentionOptions options,
                           const std::optional<mlx::core::array>& query_segments,
                           const std::optional<mlx::core::array>& key_segments,
                           const std::optional<mlx::core::array>& mask);

/// Attention over a paged KV cache (inference only, no gradient): q [B, H, Tq, Dh]; key and value
/// pools [slots, Hkv, Dh] (float32) with slot = block·block_size + offset; block_table [B, maxBlocks]
/// lists each row's block ids in token order; query j of row b sees keys 0 ..< key_counts[b] − Tq + j + 1
/// (int32 tables). A query that sees no key gives zeros. Returns [B, H, Tq, Dh].
mlx::core::array paged_attention(const mlx::core::array& queries, const mlx::core::array& key_pool,
                                 const mlx::core::array& value_pool, const mlx::core::array& block_table,
                                 const mlx::core::array& key_counts, int block_size, float scale);

/// y = x·Wᵀ (+ bias) for x [N, in], weight [out, in] (float32), whose backward gives the weight's
/// gradient in the weight's own row-major layout.
mlx::core::array dense_linear(const mlx::core::array& x, const mlx::core::array& weight,
                              const std::optional<mlx::core::array>& bias);

/// The LoRA linear layer x·Wᵀ (+ bias) + scale·(x'·Aᵀ)·Bᵀ, x' being `dropped_input` (x after LoRA
/// dropout), x after the kernel's own dropout (`dropout_probability` > 0, the mask that dropout()
/// draws for `dropout_seed`, redrawn in the backward rather than stored), or x itself.
/// x [N, in], weight [out, in], A [r, in], B [out, r] with r <= 256. Differentiable in every
/// input; W's gradient is only computed when asked for.
mlx::core::array lora_linear(const mlx::core::array& x, const mlx::core::array& weight,
                             const std::optional<mlx::core::array>& bias, const mlx::core::array& a,
                             const mlx::core::array& b, float scale,
                             const std::optional<mlx::core::array>& dropped_input,
                             float dropout_probability = 0.0f, uint64_t dropout_seed = 0, uint64_t dropout_offset = 0);

/// y [N, out] = x [N, in]·dequant(W)ᵀ (+ bias [out]) for a weight-only quantized W [out, in], without
/// materializing the float weight. Per group of `group_size` (a multiple of 64) consecutive inputs of
/// an output row: bits 8, int8 codes [out, in] with float32 scales [out, in/group_size], w ≈ scale·q;
/// bits 4, uint8 codes [out, in/2] (two per byte, low nibble first, q in 0..15) with float32 scales
/// and mins, w ≈ scale·q + min; bits 16 or 32, the weight itself as bfloat16 or float32 [out, in]
/// with empty scales [out, 0] (in still a multiple of 64). Inference only: not differentiable.
/// `instruction_set` -1 runs the widest build the CPU runs; 0 (portable), 1 (AVX2) or 2 (AVX-512)
/// asks for a narrower one, for tests.
mlx::core::array quantized_linear(const mlx::core::array& x, const mlx::core::array& codes,
                                  const mlx::core::array& scales, const std::optional<mlx::core::array>& mins,
                                  const std::optional<mlx::core::array>& bias, int bits, int group_size,
                                  int instruction_set = -1);

/// The number of worker threads kernels split work across.
int thread_count();

/// The kernel build that runs: 0 portable, 1 AVX2, 2 AVX-512 (see TEMPER_KERNEL_ISA).
int instruction_set();

}  // namespace temper::kernels

#endif
#endif
