// C ABI over MLX. Opaque handles, 0/1 status codes, the message of the last failure per thread.
// No logic lives here beyond translating calls and errors; no C++ exception crosses this boundary.
#ifndef CMLXSHIM_H
#define CMLXSHIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tmx_array_s* tmx_array;       // owns one mlx::core::array
typedef struct tmx_vec_s* tmx_vec;           // owns a std::vector<mlx::core::array>
typedef struct tmx_strvec_s* tmx_strvec;     // owns a std::vector<std::string>
typedef struct tmx_closure_s* tmx_closure;   // owns a compiled function and its Swift context
typedef struct tmx_gguf_meta_s* tmx_gguf_meta;

/// Data types, in the order of mlx::core::Dtype::Val.
typedef enum {
  TMX_BOOL = 0, TMX_UINT8, TMX_UINT16, TMX_UINT32, TMX_UINT64,
  TMX_INT8, TMX_INT16, TMX_INT32, TMX_INT64,
  TMX_FLOAT16, TMX_FLOAT32, TMX_FLOAT64, TMX_BFLOAT16, TMX_COMPLEX64
} tmx_dtype;

/// The message of the last failed call on this thread (valid until the next failure).
const char* tmx_last_error(void);

// MARK: arrays and vectors
void tmx_array_free(tmx_array a);
int tmx_array_from_data(tmx_array* out, const void* data, const int* shape, int ndim, int dtype);
int tmx_array_ndim(tmx_array a);
void tmx_array_shape(tmx_array a, int* shape);
size_t tmx_array_size(tmx_array a);
int tmx_array_dtype(tmx_array a);
size_t tmx_array_itemsize(tmx_array a);
/// Evaluates `a` and copies its elements, row-major, into `dst` (`bytes` must equal size*itemsize).
int tmx_array_copy_data(tmx_array a, void* dst, size_t bytes);
/// A printable description; free with tmx_string_free.
int tmx_array_describe(tmx_array a, char** out);
void tmx_string_free(char* s);

tmx_vec tmx_vec_new(void);
void tmx_vec_free(tmx_vec v);
void tmx_vec_push(tmx_vec v, tmx_array a);
size_t tmx_vec_size(tmx_vec v);
tmx_array tmx_vec_get(tmx_vec v, size_t i);

tmx_strvec tmx_strvec_new(void);
void tmx_strvec_free(tmx_strvec v);
void tmx_strvec_push(tmx_strvec v, const char* s);
size_t tmx_strvec_size(tmx_strvec v);
const char* tmx_strvec_get(tmx_strvec v, size_t i);

int tmx_eval(tmx_vec arrays);
int tmx_async_eval(tmx_vec arrays);

// MARK: devices
/// 0 = CPU, 1 = GPU.
int tmx_set_default_device(int kind);
int tmx_default_device(void);
bool tmx_gpu_is_available(void);

// MARK: creation
int tmx_full(tmx_array* out, const int* shape, int ndim, tmx_array value, int dtype);
int tmx_arange(tmx_array* out, double start, double stop, double step, int dtype);
int tmx_linspace(tmx_array* out, double start, double stop, int num, int dtype);
int tmx_astype(tmx_array* out, tmx_array a, int dtype);

// MARK: random
int tmx_random_seed(uint64_t seed);
int tmx_random_key(tmx_array* out, uint64_t seed);
int tmx_random_split(tmx_array* out, tmx_array key, int num);
int tmx_random_normal(tmx_array* out, const int* shape, int ndim, int dtype, float loc, float scale, tmx_array key);
int tmx_random_uniform(tmx_array* out, float low, float high, const int* shape, int ndim, int dtype, tmx_array key);
int tmx_random_bernoulli(tmx_array* out, tmx_array p, const int* shape, int ndim, tmx_array key);
int tmx_random_categorical(tmx_array* out, tmx_array logits, int axis, int num_samples, tmx_array key);

// MARK: shape
int tmx_reshape(tmx_array* out, tmx_array a, const int* shape, int ndim);
int tmx_transpose(tmx_array* out, tmx_array a, const int* axes, int naxes);
int tmx_expand_dims(tmx_array* out, tmx_array a, const int* axes, int naxes);
int tmx_squeeze(tmx_array* out, tmx_array a, const int* axes, int naxes);
int tmx_broadcast_to(tmx_array* out, tmx_array a, const int* shape, int ndim);
int tmx_concatenate(tmx_array* out, tmx_vec arrays, int axis);
int tmx_stack(tmx_array* out, tmx_vec arrays, int axis);
int tmx_split_sections(tmx_vec out, tmx_array a, int sections, int axis);
int tmx_split_indices(tmx_vec out, tmx_array a, const int* indices, int nindices, int axis);
int tmx_slice(tmx_array* out, tmx_array a, const int* start, const int* stop, const int* strides, int n);
int tmx_slice_update(tmx_array* out, tmx_array src, tmx_array update, const int* start, const int* stop, const int* strides, int n);
int tmx_take(tmx_array* out, tmx_array a, tmx_array indices, int axis);
int tmx_take_along_axis(tmx_array* out, tmx_array a, tmx_array indices, int axis);
int tmx_put_along_axis(tmx_array* out, tmx_array a, tmx_array indices, tmx_array values, int axis);
int tmx_scatter_add_axis(tmx_array* out, tmx_array a, tmx_array indices, tmx_array values, int axis);
int tmx_where(tmx_array* out, tmx_array condition, tmx_array x, tmx_array y);
int tmx_pad(tmx_array* out, tmx_array a, const int* axes, const int* low, const int* high, int n, tmx_array value, const char* mode);
int tmx_triu(tmx_array* out, tmx_array a, int k);
int tmx_tril(tmx_array* out, tmx_array a, int k);
int tmx_contiguous(tmx_array* out, tmx_array a);

// MARK: elementwise
#define TMX_DECLARE_UNARY(name) int tmx_##name(tmx_array* out, tmx_array a);
#define TMX_DECLARE_BINARY(name) int tmx_##name(tmx_array* out, tmx_array a, tmx_array b);
TMX_DECLARE_UNARY(abs)
TMX_DECLARE_UNARY(negative)
TMX_DECLARE_UNARY(sign)
TMX_DECLARE_UNARY(exp)
TMX_DECLARE_UNARY(expm1)
TMX_DECLARE_UNARY(log)
TMX_DECLARE_UNARY(log1p)
TMX_DECLARE_UNARY(sqrt)
TMX_DECLARE_UNARY(rsqrt)
TMX_DECLARE_UNARY(square)
TMX_DECLARE_UNARY(reciprocal)
TMX_DECLARE_UNARY(sigmoid)
TMX_DECLARE_UNARY(tanh)
TMX_DECLARE_UNARY(sin)
TMX_DECLARE_UNARY(cos)
TMX_DECLARE_UNARY(erf)
TMX_DECLARE_UNARY(floor)
TMX_DECLARE_UNARY(ceil)
TMX_DECLARE_UNARY(logical_not)
TMX_DECLARE_UNARY(stop_gradient)
TMX_DECLARE_BINARY(add)
TMX_DECLARE_BINARY(subtract)
TMX_DECLARE_BINARY(multiply)
TMX_DECLARE_BINARY(divide)
TMX_DECLARE_BINARY(remainder)
TMX_DECLARE_BINARY(maximum)
TMX_DECLARE_BINARY(minimum)
TMX_DECLARE_BINARY(power)
TMX_DECLARE_BINARY(equal)
TMX_DECLARE_BINARY(not_equal)
TMX_DECLARE_BINARY(less)
TMX_DECLARE_BINARY(less_equal)
TMX_DECLARE_BINARY(greater)
TMX_DECLARE_BINARY(greater_equal)
TMX_DECLARE_BINARY(logical_and)
TMX_DECLARE_BINARY(logical_or)
TMX_DECLARE_BINARY(matmul)
int tmx_addmm(tmx_array* out, tmx_array c, tmx_array a, tmx_array b, float alpha, float beta);
/// Null bounds are open.
int tmx_clip(tmx_array* out, tmx_array a, tmx_array low, tmx_array high);

// MARK: reductions, scans and sorting (naxes == 0 reduces over all axes)
#define TMX_DECLARE_REDUCTION(name) int tmx_##name(tmx_array* out, tmx_array a, const int* axes, int naxes, bool keepdims);
TMX_DECLARE_REDUCTION(sum)
TMX_DECLARE_REDUCTION(mean)
TMX_DECLARE_REDUCTION(max)
TMX_DECLARE_REDUCTION(min)
TMX_DECLARE_REDUCTION(prod)
TMX_DECLARE_REDUCTION(all)
TMX_DECLARE_REDUCTION(any)
TMX_DECLARE_REDUCTION(logsumexp)
int tmx_var(tmx_array* out, tmx_array a, const int* axes, int naxes, bool keepdims, int ddof);
int tmx_std(tmx_array* out, tmx_array a, const int* axes, int naxes, bool keepdims, int ddof);
int tmx_softmax(tmx_array* out, tmx_array a, const int* axes, int naxes, bool precise);
int tmx_argmax(tmx_array* out, tmx_array a, int axis, bool keepdims);
int tmx_argmin(tmx_array* out, tmx_array a, int axis, bool keepdims);
int tmx_cumsum(tmx_array* out, tmx_array a, int axis, bool reverse, bool inclusive);
int tmx_sort(tmx_array* out, tmx_array a, int axis);
int tmx_argsort(tmx_array* out, tmx_array a, int axis);
int tmx_topk(tmx_array* out, tmx_array a, int k, int axis);
int tmx_argpartition(tmx_array* out, tmx_array a, int kth, int axis);

// MARK: fast kernels (null optional arrays are absent)
int tmx_rms_norm(tmx_array* out, tmx_array x, tmx_array weight, float eps);
int tmx_layer_norm(tmx_array* out, tmx_array x, tmx_array weight, tmx_array bias, float eps);
int tmx_rope(tmx_array* out, tmx_array x, int dims, bool traditional, float base, float scale, int offset);
/// mask_mode is "" (none or explicit mask) or "causal".
int tmx_scaled_dot_product_attention(tmx_array* out, tmx_array q, tmx_array k, tmx_array v, float scale, const char* mask_mode, tmx_array mask);

// MARK: Temper's fused CPU kernels (float32 inputs; see CTemperKernels)
/// op: 0 exp, 1 log, 2 sigmoid, 3 silu, 4 gelu (tanh form), 5 gelu (erf form), 6 tanh, 7 softplus.
int tmx_kernel_unary(tmx_array* out, int op, tmx_array x);
int tmx_kernel_swiglu(tmx_array* out, tmx_array gate, tmx_array up);
/// Inverted dropout whose mask is a hash of (seed, element index).
int tmx_kernel_dropout(tmx_array* out, tmx_array x, float probability, uint64_t seed, uint64_t offset);
int tmx_kernel_rms_norm(tmx_array* out, tmx_array x, tmx_array weight, float eps);
/// Rotary embedding of x [B, T, H, D] by cos, sin [1 or B, T, D/2] into [B, H, T, D].
int tmx_kernel_rope_heads(tmx_array* out, tmx_array x, tmx_array cos, tmx_array sin);
int tmx_kernel_softmax(tmx_array* out, tmx_array x);
int tmx_kernel_log_softmax(tmx_array* out, tmx_array x);
int tmx_kernel_logsumexp(tmx_array* out, tmx_array x);
/// Fused linear cross-entropy; writes {loss sum, weight sum, log-probs [N], logsumexp [N], entropy [N]}.
/// token_weights may be null (all ones). gradients_in_forward: 0 none, 1 the hidden states', 2 also
/// the weight's (the forward then also writes them).
int tmx_kernel_linear_cross_entropy(tmx_vec out, tmx_array hidden, tmx_array weight, tmx_array targets,
                                    tmx_array token_weights, int ignore_index, bool entropy,
                                    int token_chunk, int vocabulary_chunk, int gradients_in_forward);
/// One AdamW step over k tensors: `inputs` holds k parameters, k gradients, k first and k second
/// moments; `out` receives k parameters, k first and k second moments.
int tmx_kernel_adamw(tmx_vec out, tmx_vec inputs, const float* weight_decays, float learning_rate,
                     float beta1, float beta2, float eps, float bias_correction1, float bias_correction2);
/// One blockwise 8-bit AdamW step over k tensors: `inputs` holds k parameters, k gradients, k first
/// moment codes (uint8), k first moment absmax, k second moment codes, k second moment absmax; `out`
/// receives k parameters, k first codes, k first absmax, k second codes, k second absmax. The
/// codebooks are sorted and have 256 entries each.
int tmx_kernel_adamw_8bit(tmx_vec out, tmx_vec inputs, const float* weight_decays, float learning_rate,
                          float beta1, float beta2, float eps, float bias_correction1, float bias_correction2,
                          const float* first_map, const float* second_map, int block_size);
int tmx_kernel_nf4_dequantize(tmx_array* out, tmx_array packed, tmx_array absmax, const int* shape, int ndim, int block_size);
int tmx_kernel_int8_dequantize(tmx_array* out, tmx_array codes, tmx_array absmax, const int* shape, int ndim, int block_size);
/// Tiled attention; query_segments/key_segments/mask may be null.
int tmx_kernel_attention(tmx_array* out, tmx_array queries, tmx_array keys, tmx_array values, float scale,
                         bool causal, tmx_array query_segments, tmx_array key_segments, tmx_array mask);
/// Attention over a paged KV cache (float32 queries and pools, int32 block table and key counts).
int tmx_kernel_paged_attention(tmx_array* out, tmx_array queries, tmx_array key_pool, tmx_array value_pool,
                               tmx_array block_table, tmx_array key_counts, int block_size, float scale);
/// y = x·Wᵀ (+ bias; may be null) for 2-D float32 x and weight; W's gradient comes out row-major.
int tmx_kernel_dense_linear(tmx_array* out, tmx_array x, tmx_array weight, tmx_array bias);
/// LoRA linear layer x·Wᵀ (+ bias) + scale·(x'·Aᵀ)·Bᵀ; bias and dropped_input (x') may be null;
/// dropout > 0 drops x inside the kernel with the mask tmx_kernel_dropout draws for dropout_seed.
int tmx_kernel_lora_linear(tmx_array* out, tmx_array x, tmx_array weight, tmx_array bias, tmx_array a, tmx_array b,
                           float scale, tmx_array dropped_input, float dropout, uint64_t dropout_seed, uint64_t dropout_offset);
/// y = x·dequant(W)ᵀ (+ bias) for weight-only quantized W (bits 8: int8 codes, scales; bits 4: uint8
/// nibble codes, scales, mins); null mins/bias are absent. instruction_set: -1 widest, 0 portable, 1 AVX2, 2 AVX-512.
int tmx_kernel_quantized_linear(tmx_array* out, tmx_array x, tmx_array codes, tmx_array scales, tmx_array mins,
                                tmx_array bias, int bits, int group_size, int instruction_set);
int tmx_kernel_thread_count(void);
int tmx_kernel_instruction_set(void);
float tmx_host_max(const float* x, size_t count);
float tmx_host_exp_weights(const float* x, size_t count, float shift, float scale, float* weights);
/// The kernel set OpenBLAS runs; free with tmx_string_free.
char* tmx_openblas_core(void);

// MARK: quantization
/// Writes (weights, scales[, biases]) into `out`.
int tmx_quantize(tmx_vec out, tmx_array w, int group_size, int bits, const char* mode);
int tmx_dequantize(tmx_array* out, tmx_array w, tmx_array scales, tmx_array biases, int group_size, int bits, const char* mode);
int tmx_quantized_matmul(tmx_array* out, tmx_array x, tmx_array w, tmx_array scales, tmx_array biases, bool transpose, int group_size, int bits, const char* mode);

// MARK: transforms
/// A function of arrays implemented by the caller: read `inputs`, push results to `outputs`,
/// return 0, or non-zero after recording the failure on the caller's side.
typedef int (*tmx_function)(void* context, tmx_vec inputs, tmx_vec outputs);
int tmx_vjp(tmx_function f, void* context, tmx_vec primals, tmx_vec cotangents, tmx_vec outputs, tmx_vec vjps);
int tmx_jvp(tmx_function f, void* context, tmx_vec primals, tmx_vec tangents, tmx_vec outputs, tmx_vec jvps);
int tmx_value_and_grad(tmx_function f, void* context, tmx_vec inputs, const int* argnums, int nargnums, tmx_vec values, tmx_vec grads);
/// `release` is called with `context` when the compiled function is freed.
int tmx_compile(tmx_closure* out, tmx_function f, void* context, void (*release)(void*), bool shapeless);
/// f's outputs are recomputed in the backward pass instead of kept (gradient checkpointing);
/// `release` is called with `context` once no copy of the function remains.
int tmx_checkpoint(tmx_closure* out, tmx_function f, void* context, void (*release)(void*));
int tmx_closure_apply(tmx_closure c, tmx_vec inputs, tmx_vec outputs);
void tmx_closure_free(tmx_closure c);
void tmx_set_compile_enabled(bool enabled);

// MARK: memory
size_t tmx_active_memory(void);
size_t tmx_peak_memory(void);
size_t tmx_cache_memory(void);
void tmx_reset_peak_memory(void);
size_t tmx_set_cache_limit(size_t limit);
size_t tmx_set_memory_limit(size_t limit);
void tmx_clear_cache(void);

// MARK: files
int tmx_load_safetensors(const char* path, tmx_strvec names, tmx_vec arrays, tmx_strvec metadata_keys, tmx_strvec metadata_values);
int tmx_save_safetensors(const char* path, tmx_strvec names, tmx_vec arrays, tmx_strvec metadata_keys, tmx_strvec metadata_values);

/// GGUF metadata values are one of: none, an array, a string, or a list of strings.
typedef enum { TMX_GGUF_NONE = 0, TMX_GGUF_ARRAY, TMX_GGUF_STRING, TMX_GGUF_STRINGS } tmx_gguf_kind;
tmx_gguf_meta tmx_gguf_meta_new(void);
void tmx_gguf_meta_free(tmx_gguf_meta m);
size_t tmx_gguf_meta_size(tmx_gguf_meta m);
const char* tmx_gguf_meta_key(tmx_gguf_meta m, size_t i);
int tmx_gguf_meta_kind(tmx_gguf_meta m, size_t i);
tmx_array tmx_gguf_meta_array(tmx_gguf_meta m, size_t i);
const char* tmx_gguf_meta_string(tmx_gguf_meta m, size_t i);
/// Copies the string list of entry i into `out`.
void tmx_gguf_meta_strings(tmx_gguf_meta m, size_t i, tmx_strvec out);
void tmx_gguf_meta_set_array(tmx_gguf_meta m, const char* key, tmx_array a);
void tmx_gguf_meta_set_string(tmx_gguf_meta m, const char* key, const char* value);
void tmx_gguf_meta_set_strings(tmx_gguf_meta m, const char* key, tmx_strvec values);
int tmx_load_gguf(const char* path, tmx_strvec names, tmx_vec arrays, tmx_gguf_meta metadata);
int tmx_save_gguf(const char* path, tmx_strvec names, tmx_vec arrays, tmx_gguf_meta metadata);

// MARK: distributed (MLX's collectives over the process group)

/// Whether MLX was built with the backend ("ring", "mpi", "nccl", or "any").
bool tmx_distributed_is_available(const char* backend);
/// Joins the process group of `backend` (the ring backend reads MLX_RANK and MLX_HOSTFILE) and keeps
/// it for tmx_all_sum; `strict` makes a failure to join an error instead of a group of one.
int tmx_distributed_init(const char* backend, bool strict, int* rank, int* size);
/// The elementwise sum of `a` over every process of the group joined last (lazy, like any op).
int tmx_all_sum(tmx_array* out, tmx_array a);

#ifdef __cplusplus
}
#endif
#endif
