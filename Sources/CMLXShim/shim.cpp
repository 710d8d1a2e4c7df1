// C ABI over MLX: every entry point catches what MLX throws and returns 1 with the message kept per
// thread, so no C++ exception crosses into Swift.
#include <memory>
#include "CMLXShim.h"

#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "TemperKernels.h"
#include "mlx/mlx.h"

namespace mx = mlx::core;

struct tmx_array_s { mx::array a; };
struct tmx_vec_s { std::vector<mx::array> v; };
struct tmx_strvec_s { std::vector<std::string> v; };
struct tmx_gguf_meta_s {
  std::vector<std::string> keys;
  std::vector<mx::GGUFMetaData> values;
};
struct tmx_closure_s {
  std::function<std::vector<mx::array>(const std::vector<mx::array>&)> compiled;
  void* context;
  void (*release)(void*);
  ~tmx_closure_s() { if (release) release(context); }
};

namespace {

thread_local std::string last_error;

int fail(const char* message) {
  last_error = message;
  return 1;
}

#define TMX_TRY(...)                                      \
  try {                                                   \
    __VA_ARGS__;                                          \
    return 0;                                             \
  } catch (const std::exception& e) {                     \
    return fail(e.what());                                \
  } catch (...) {                                         \
    return fail("unknown C++ exception from MLX");        \
  }

tmx_array wrap(mx::array a) { return new tmx_array_s{std::move(a)}; }

mx::Shape shape_of(const int* shape, int ndim) { return mx::Shape(shape, shape + ndim); }
std::vector<int> ints(const int* values, int n) { return std::vector<int>(values, values + n); }

std::optional<mx::array> optional(tmx_array a) {
  if (a == nullptr) return std::nullopt;
  return a->a;
}

mx::Dtype dtype_of(int code) {
  switch (code) {
    case TMX_BOOL: return mx::bool_;
    case TMX_UINT8: return mx::uint8;
    case TMX_UINT16: return mx::uint16;
    case TMX_UINT32: return mx::uint32;
    case TMX_UINT64: return mx::uint64;
    case TMX_INT8: return mx::int8;
    case TMX_INT16: return mx::int16;
    case TMX_INT32: return mx::int32;
    case TMX_INT64: return mx::int64;
    case TMX_FLOAT16: return mx::float16;
    case TMX_FLOAT32: return mx::float32;
    case TMX_FLOAT64: return mx::float64;
    case TMX_BFLOAT16: return mx::bfloat16;
    case TMX_COMPLEX64: return mx::complex64;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(code));
}

int code_of(mx::Dtype dtype) {
  switch (dtype.val()) {
    case mx::Dtype::Val::bool_: return TMX_BOOL;
    case mx::Dtype::Val::uint8: return TMX_UINT8;
    case mx::Dtype::Val::uint16: return TMX_UINT16;
    case mx::Dtype::Val::uint32: return TMX_UINT32;
    case mx::Dtype::Val::uint64: return TMX_UINT64;
    case mx::Dtype::Val::int8: return TMX_INT8;
    case mx::Dtype::Val::int16: return TMX_INT16;
    case mx::Dtype::Val::int32: return TMX_INT32;
    case mx::Dtype::Val::int64: return TMX_INT64;
    case mx::Dtype::Val::float16: return TMX_FLOAT16;
    case mx::Dtype::Val::float32: return TMX_FLOAT32;
    case mx::Dtype::Val::float64: return TMX_FLOAT64;
    case mx::Dtype::Val::bfloat16: return TMX_BFLOAT16;
    case mx::Dtype::Val::complex64: return TMX_COMPLEX64;
  }
  return -1;
}

std::optional<mx::array> maybe_key(tmx_array key) { return optional(key); }

// Calls a caller-provided function; a failure on the caller's side becomes a C++ exception that
// unwinds through MLX's transform and is caught by the entry point's TMX_TRY.
std::vector<mx::array> call(tmx_function f, void* context, const std::vector<mx::array>& inputs) {
  tmx_vec_s in{inputs};
  tmx_vec_s out;
  if (f(context, &in, &out) != 0) {
    throw std::runtime_error("the differentiated function failed");
  }
  return std::move(out.v);
}

// Appends tensors sorted by name, so that callers see a stable order, after reading their bytes so
// that a damaged file fails here and not in a later computation.
void append_loaded(const std::unordered_map<std::string, mx::array>& tensors, tmx_strvec names, tmx_vec arrays) {
  std::map<std::string, mx::array> sorted(tensors.begin(), tensors.end());
  std::vector<mx::array> loaded;
  for (auto& [name, a] : sorted) loaded.push_back(a);
  mx::eval(loaded);
  for (auto& [name, a] : sorted) {
    names->v.push_back(name);
    arrays->v.push_back(a);
  }
}

std::unordered_map<std::string, mx::array> named(tmx_strvec names, tmx_vec arrays) {
  std::unordered_map<std::string, mx::array> tensors;
  for (size_t i = 0; i < names->v.size(); i++) tensors.insert_or_assign(names->v[i], arrays->v[i]);
  return tensors;
}

}  // namespace

extern "C" {

const char* tmx_last_error(void) { return last_error.c_str(); }

// MARK: arrays and vectors

void tmx_array_free(tmx_array a) { delete a; }

int tmx_array_from_data(tmx_array* out, const void* data, const int* shape, int ndim, int dtype) {
  TMX_TRY({
    auto dt = dtype_of(dtype);
    auto s = shape_of(shape, ndim);
    size_t count = 1;
    for (int d : s) count *= static_cast<size_t>(d);
    // Copy the caller's bytes into an MLX-owned buffer.
    mx::array a(mx::allocator::malloc(count * dt.size()), s, dt);
    if (count > 0) std::memcpy(a.data<char>(), data, count * dt.size());
    *out = wrap(std::move(a));
  })
}

int tmx_array_ndim(tmx_array a) { return static_cast<int>(a->a.ndim()); }
void tmx_array_shape(tmx_array a, int* shape) {
  for (size_t i = 0; i < a->a.ndim(); i++) shape[i] = a->a.shape(static_cast<int>(i));
}
size_t tmx_array_size(tmx_array a) { return a->a.size(); }
int tmx_array_dtype(tmx_array a) { return code_of(a->a.dtype()); }
size_t tmx_array_itemsize(tmx_array a) { return a->a.itemsize(); }

int tmx_array_copy_data(tmx_array a, void* dst, size_t bytes) {
  TMX_TRY({
    auto c = mx::contiguous(a->a);
    c.eval();
    if (c.nbytes() != bytes) {
      throw std::invalid_argument("copy of " + std::to_string(c.nbytes()) + " bytes into a buffer of " +
                                  std::to_string(bytes));
    }
    if (bytes > 0) std::memcpy(dst, c.data<char>(), bytes);
  })
}

int tmx_array_describe(tmx_array a, char** out) {
  TMX_TRY({
    std::ostringstream s;
    s << a->a;
    *out = strdup(s.str().c_str());
  })
}
void tmx_string_free(char* s) { free(s); }

tmx_vec tmx_vec_new(void) { return new tmx_vec_s{}; }
void tmx_vec_free(tmx_vec v) { delete v; }
void tmx_vec_push(tmx_vec v, tmx_array a) { v->v.push_back(a->a); }
size_t tmx_vec_size(tmx_vec v) { return v->v.size(); }
tmx_array tmx_vec_get(tmx_vec v, size_t i) { return wrap(v->v[i]); }

tmx_strvec tmx_strvec_new(void) { return new tmx_strvec_s{}; }
void tmx_strvec_free(tmx_strvec v) { delete v; }
void tmx_strvec_push(tmx_strvec v, const char* s) { v->v.emplace_back(s); }
size_t tmx_strvec_size(tmx_strvec v) { return v->v.size(); }
const char* tmx_strvec_get(tmx_strvec v, size_t i) { return v->v[i].c_str(); }

int tmx_eval(tmx_vec arrays) { TMX_TRY(mx::eval(arrays->v)) }
int tmx_async_eval(tmx_vec arrays) { TMX_TRY(mx::async_eval(arrays->v)) }

// MARK: devices

int tmx_set_default_device(int kind) {
  TMX_TRY(mx::set_default_device(kind == 1 ? mx::Device::gpu : mx::Device::cpu))
}
int tmx_default_device(void) { return mx::default_device() == mx::Device::gpu ? 1 : 0; }
bool tmx_gpu_is_available(void) { return mx::is_available(mx::Device::gpu); }

// MARK: creation

int tmx_full(tmx_array* out, const int* shape, int ndim, tmx_array value, int dtype) {
  TMX_TRY(*out = wrap(mx::full(shape_of(shape, ndim), value->a, dtype_of(dtype))))
}
int tmx_arange(tmx_array* out, double start, double stop, double step, int dtype) {
  TMX_TRY(*out = wrap(mx::arange(start, stop, step, dtype_of(dtype))))
}
int tmx_linspace(tmx_array* out, double start, double stop, int num, int dtype) {
  TMX_TRY(*out = wrap(mx::linspace(start, stop, num, dtype_of(dtype))))
}
int tmx_astype(tmx_array* out, tmx_array a, int dtype) {
  TMX_TRY(*out = wrap(mx::astype(a->a, dtype_of(dtype))))
}

// MARK: random

int tmx_random_seed(uint64_t seed) { TMX_TRY(mx::random::seed(seed)) }
int tmx_random_key(tmx_array* out, uint64_t seed) { TMX_TRY(*out = wrap(mx::random::key(seed))) }
int tmx_random_split(tmx_array* out, tmx_array key, int num) {
  TMX_TRY(*out = wrap(mx::random::split(key->a, num)))
}
int tmx_random_normal(tmx_array* out, const int* shape, int ndim, int dtype, float loc, float scale, tmx_array key) {
  TMX_TRY(*out = wrap(mx::random::normal(shape_of(shape, ndim), dtype_of(dtype), loc, scale, maybe_key(key))))
}
int tmx_random_uniform(tmx_array* out, float low, float high, const int* shape, int ndim, int dtype, tmx_array key) {
  TMX_TRY(*out = wrap(mx::random::uniform(mx::array(low), mx::array(high), shape_of(shape, ndim),
                                          dtype_of(dtype), maybe_key(key))))
}
int tmx_random_bernoulli(tmx_array* out, tmx_array p, const int* shape, int ndim, tmx_array key) {
  TMX_TRY(*out = wrap(mx::random::bernoulli(p->a, shape_of(shape, ndim), maybe_key(key))))
}
int tmx_random_categorical(tmx_array* out, tmx_array logits, int axis, int num_samples, tmx_array key) {
  TMX_TRY({
    if (num_samples < 0) {
      *out = wrap(mx::random::categorical(logits->a, axis, maybe_key(key)));
    } else {
      *out = wrap(mx::random::categorical(logits->a, axis, num_samples, maybe_key(key)));
    }
  })
}

// MARK: shape

int tmx_reshape(tmx_array* out, tmx_array a, const int* shape, int ndim) {
  TMX_TRY(*out = wrap(mx::reshape(a->a, shape_of(shape, ndim))))
}
int tmx_transpose(tmx_array* out, tmx_array a, const int* axes, int naxes) {
  TMX_TRY(*out = wrap(naxes == 0 ? mx::transpose(a->a) : mx::transpose(a->a, ints(axes, naxes))))
}
int tmx_expand_dims(tmx_array* out, tmx_array a, const int* axes, int naxes) {
  TMX_TRY(*out = wrap(mx::expand_dims(a->a, ints(axes, naxes))))
}
int tmx_squeeze(tmx_array* out, tmx_array a, const int* axes, int naxes) {
  TMX_TRY(*out = wrap(naxes == 0 ? mx::squeeze(a->a) : mx::squeeze(a->a, ints(axes, naxes))))
}
int tmx_broadcast_to(tmx_array* out, tmx_array a, const int* shape, int ndim) {
  TMX_TRY(*out = wrap(mx::broadcast_to(a->a, shape_of(shape, ndim))))
}
int tmx_concatenate(tmx_array* out, tmx_vec arrays, int axis) {
  TMX_TRY(*out = wrap(mx::concatenate(arrays->v, axis)))
}
int tmx_stack(tmx_array* out, tmx_vec arrays, int axis) { TMX_TRY(*out = wrap(mx::stack(arrays->v, axis))) }
int tmx_split_sections(tmx_vec out, tmx_array a, int sections, int axis) {
  TMX_TRY(out->v = mx::split(a->a, sections, axis))
}
int tmx_split_indices(tmx_vec out, tmx_array a, const int* indices, int nindices, int axis) {
  TMX_TRY(out->v = mx::split(a->a, shape_of(indices, nindices), axis))
}
int tmx_slice(tmx_array* out, tmx_array a, const int* start, const int* stop, const int* strides, int n) {
  TMX_TRY(*out = wrap(mx::slice(a->a, shape_of(start, n), shape_of(stop, n), shape_of(strides, n))))
}
int tmx_slice_update(tmx_array* out, tmx_array src, tmx_array update, const int* start, const int* stop,
                     const int* strides, int n) {
  TMX_TRY(*out = wrap(mx::slice_update(src->a, update->a, shape_of(start, n), shape_of(stop, n),
                                       shape_of(strides, n))))
}
int tmx_take(tmx_array* out, tmx_array a, tmx_array indices, int axis) {
  TMX_TRY(*out = wrap(mx::take(a->a, indices->a, axis)))
}
int tmx_take_along_axis(tmx_array* out, tmx_array a, tmx_array indices, int axis) {
  TMX_TRY(*out = wrap(mx::take_along_axis(a->a, indices->a, axis)))
}
int tmx_put_along_axis(tmx_array* out, tmx_array a, tmx_array indices, tmx_array values, int axis) {
  TMX_TRY(*out = wrap(mx::put_along_axis(a->a, indices->a, values->a, axis)))
}
int tmx_scatter_add_axis(tmx_array* out, tmx_array a, tmx_array indices, tmx_array values, int axis) {
  TMX_TRY(*out = wrap(mx::scatter_add_axis(a->a, indices->a, values->a, axis)))
}
int tmx_where(tmx_array* out, tmx_array condition, tmx_array x, tmx_array y) {
  TMX_TRY(*out = wrap(mx::where(condition->a, x->a, y->a)))
}
int tmx_pad(tmx_array* out, tmx_array a, const int* axes, const int* low, const int* high, int n, tmx_array value,
            const char* mode) {
  TMX_TRY(*out = wrap(mx::pad(a->a, ints(axes, n), shape_of(low, n), shape_of(high, n), value->a, mode)))
}
int tmx_triu(tmx_array* out, tmx_array a, int k) { TMX_TRY(*out = wrap(mx::triu(a->a, k))) }
int tmx_tril(tmx_array* out, tmx_array a, int k) { TMX_TRY(*out = wrap(mx::tril(a->a, k))) }
int tmx_contiguous(tmx_array* out, tmx_array a) { TMX_TRY(*out = wrap(mx::contiguous(a->a))) }

// MARK: elementwise

#define TMX_DEFINE_UNARY(name) \
  int tmx_##name(tmx_array* out, tmx_array a) { TMX_TRY(*out = wrap(mx::name(a->a))) }
#define TMX_DEFINE_BINARY(name) \
  int tmx_##name(tmx_array* out, tmx_array a, tmx_array b) { TMX_TRY(*out = wrap(mx::name(a->a, b->a))) }

TMX_DEFINE_UNARY(abs)
TMX_DEFINE_UNARY(negative)
TMX_DEFINE_UNARY(sign)
TMX_DEFINE_UNARY(exp)
TMX_DEFINE_UNARY(expm1)
TMX_DEFINE_UNARY(log)
TMX_DEFINE_UNARY(log1p)
TMX_DEFINE_UNARY(sqrt)
TMX_DEFINE_UNARY(rsqrt)
TMX_DEFINE_UNARY(square)
TMX_DEFINE_UNARY(reciprocal)
TMX_DEFINE_UNARY(sigmoid)
TMX_DEFINE_UNARY(tanh)
TMX_DEFINE_UNARY(sin)
TMX_DEFINE_UNARY(cos)
TMX_DEFINE_UNARY(erf)
TMX_DEFINE_UNARY(floor)
TMX_DEFINE_UNARY(ceil)
TMX_DEFINE_UNARY(logical_not)
TMX_DEFINE_UNARY(stop_gradient)
TMX_DEFINE_BINARY(add)
TMX_DEFINE_BINARY(subtract)
TMX_DEFINE_BINARY(multiply)
TMX_DEFINE_BINARY(divide)
TMX_DEFINE_BINARY(remainder)
TMX_DEFINE_BINARY(maximum)
TMX_DEFINE_BINARY(minimum)
TMX_DEFINE_BINARY(power)
TMX_DEFINE_BINARY(equal)
TMX_DEFINE_BINARY(not_equal)
TMX_DEFINE_BINARY(less)
TMX_DEFINE_BINARY(less_equal)
TMX_DEFINE_BINARY(greater)
TMX_DEFINE_BINARY(greater_equal)
TMX_DEFINE_BINARY(logical_and)
TMX_DEFINE_BINARY(logical_or)
TMX_DEFINE_BINARY(matmul)

int tmx_addmm(tmx_array* out, tmx_array c, tmx_array a, tmx_array b, float alpha, float beta) {
  TMX_TRY(*out = wrap(mx::addmm(c->a, a->a, b->a, alpha, beta)))
}
int tmx_clip(tmx_array* out, tmx_array a, tmx_array low, tmx_array high) {
  TMX_TRY(*out = wrap(mx::clip(a->a, optional(low), optional(high))))
}

// MARK: reductions, scans and sorting

#define TMX_DEFINE_REDUCTION(name)                                                               \
  int tmx_##name(tmx_array* out, tmx_array a, const int* axes, int naxes, bool keepdims) {       \
    TMX_TRY(*out = wrap(naxes == 0 ? mx::name(a->a, keepdims) : mx::name(a->a, ints(axes, naxes), keepdims))) \
  }
TMX_DEFINE_REDUCTION(sum)
TMX_DEFINE_REDUCTION(mean)
TMX_DEFINE_REDUCTION(max)
TMX_DEFINE_REDUCTION(min)
TMX_DEFINE_REDUCTION(prod)
TMX_DEFINE_REDUCTION(all)
TMX_DEFINE_REDUCTION(any)
TMX_DEFINE_REDUCTION(logsumexp)

int tmx_var(tmx_array* out, tmx_array a, const int* axes, int naxes, bool keepdims, int ddof) {
  TMX_TRY(*out = wrap(naxes == 0 ? mx::var(a->a, keepdims, ddof) : mx::var(a->a, ints(axes, naxes), keepdims, ddof)))
}
int tmx_std(tmx_array* out, tmx_array a, const int* axes, int naxes, bool keepdims, int ddof) {
  TMX_TRY(*out = wrap(naxes == 0 ? mx::std(a->a, keepdims, ddof) : mx::std(a->a, ints(axes, naxes), keepdims, ddof)))
}
int tmx_softmax(tmx_array* out, tmx_array a, const int* axes, int naxes, bool precise) {
  TMX_TRY(*out = wrap(naxes == 0 ? mx::softmax(a->a, precise) : mx::softmax(a->a, ints(axes, naxes), precise)))
}
int tmx_argmax(tmx_array* out, tmx_array a, int axis, bool keepdims) {
  TMX_TRY(*out = wrap(mx::argmax(a->a, axis, keepdims)))
}
int tmx_argmin(tmx_array* out, tmx_array a, int axis, bool keepdims) {
  TMX_TRY(*out = wrap(mx::argmin(a->a, axis, keepdims)))
}
int tmx_cumsum(tmx_array* out, tmx_array a, int axis, bool reverse, bool inclusive) {
  TMX_TRY(*out = wrap(mx::cumsum(a->a, axis, reverse, inclusive)))
}
int tmx_sort(tmx_array* out, tmx_array a, int axis) { TMX_TRY(*out = wrap(mx::sort(a->a, axis))) }
int tmx_argsort(tmx_array* out, tmx_array a, int axis) { TMX_TRY(*out = wrap(mx::argsort(a->a, axis))) }
int tmx_topk(tmx_array* out, tmx_array a, int k, int axis) { TMX_TRY(*out = wrap(mx::topk(a->a, k, axis))) }
int tmx_argpartition(tmx_array* out, tmx_array a, int kth, int axis) {
  TMX_TRY(*out = wrap(mx::argpartition(a->a, kth, axis)))
}

// MARK: fast kernels

int tmx_rms_norm(tmx_array* out, tmx_array x, tmx_array weight, float eps) {
  TMX_TRY(*out = wrap(mx::fast::rms_norm(x->a, optional(weight), eps)))
}
int tmx_layer_norm(tmx_array* out, tmx_array x, tmx_array weight, tmx_array bias, float eps) {
  TMX_TRY(*out = wrap(mx::fast::layer_norm(x->a, optional(weight), optional(bias), eps)))
}
int tmx_rope(tmx_array* out, tmx_array x, int dims, bool traditional, float base, float scale, int offset) {
  TMX_TRY(*out = wrap(mx::fast::rope(x->a, dims, traditional, base, scale, offset)))
}
int tmx_scaled_dot_product_attention(tmx_array* out, tmx_array q, tmx_array k, tmx_array v, float scale,
                                     const char* mask_mode, tmx_array mask) {
  TMX_TRY(*out = wrap(mx::fast::scaled_dot_product_attention(q->a, k->a, v->a, scale, mask_mode, optional(mask))))
}

// MARK: Temper's fused CPU kernels

int tmx_kernel_unary(tmx_array* out, int op, tmx_array x) {
  TMX_TRY(*out = wrap(temper::kernels::unary(static_cast<temper::kernels::Unary>(op), x->a)))
}
int tmx_kernel_swiglu(tmx_array* out, tmx_array gate, tmx_array up) {
  TMX_TRY(*out = wrap(temper::kernels::swiglu(gate->a, up->a)))
}
int tmx_kernel_dropout(tmx_array* out, tmx_array x, float probability, uint64_t seed, uint64_t offset) {
  TMX_TRY(*out = wrap(temper::kernels::dropout(x->a, probability, seed, offset)))
}
int tmx_kernel_rms_norm(tmx_array* out, tmx_array x, tmx_array weight, float eps) {
  TMX_TRY(*out = wrap(temper::kernels::rms_norm(x->a, weight->a, eps)))
}
int tmx_kernel_rope_heads(tmx_array* out, tmx_array x, tmx_array cos, tmx_array sin) {
  TMX_TRY(*out = wrap(temper::kernels::rope_heads(x->a, cos->a, sin->a)))
}
int tmx_kernel_softmax(tmx_array* out, tmx_array x) { TMX_TRY(*out = wrap(temper::kernels::softmax(x->a))) }
int tmx_kernel_log_softmax(tmx_array* out, tmx_array x) { TMX_TRY(*out = wrap(temper::kernels::log_softmax(x->a))) }
int tmx_kernel_logsumexp(tmx_array* out, tmx_array x) { TMX_TRY(*out = wrap(temper::kernels::logsumexp(x->a))) }
int tmx_kernel_linear_cross_entropy(tmx_vec out, tmx_array hidden, tmx_array weight, tmx_array targets,
                                    tmx_array token_weights, int ignore_index, bool entropy,
                                    int token_chunk, int vocabulary_chunk, int gradients_in_forward) {
  TMX_TRY({
    temper::kernels::CrossEntropyOptions options;
    options.gradient_in_forward = gradients_in_forward > 0;
    options.weight_gradient_in_forward = gradients_in_forward > 1;
    options.ignore_index = ignore_index;
    options.entropy = entropy;
    options.token_chunk = static_cast<size_t>(token_chunk);
    options.vocabulary_chunk = static_cast<size_t>(vocabulary_chunk);
    out->v = temper::kernels::linear_cross_entropy(hidden->a, weight->a, targets->a, optional(token_weights), options);
  })
}
int tmx_kernel_adamw(tmx_vec out, tmx_vec inputs, const float* weight_decays, float learning_rate,
                     float beta1, float beta2, float eps, float bias_correction1, float bias_correction2) {
  TMX_TRY({
    size_t k = inputs->v.size() / 4;
    auto group = [&](size_t g) {
      return std::vector<mx::array>(inputs->v.begin() + g * k, inputs->v.begin() + (g + 1) * k);
    };
    temper::kernels::AdamWOptions options{learning_rate, beta1, beta2, eps, bias_correction1, bias_correction2};
    out->v = temper::kernels::adamw_update(group(0), group(1), group(2), group(3),
                                           std::vector<float>(weight_decays, weight_decays + k), options);
  })
}
int tmx_kernel_adamw_8bit(tmx_vec out, tmx_vec inputs, const float* weight_decays, float learning_rate,
                          float beta1, float beta2, float eps, float bias_correction1, float bias_correction2,
                          const float* first_map, const float* second_map, int block_size) {
  TMX_TRY({
    size_t k = inputs->v.size() / 6;
    auto group = [&](size_t g) {
      return std::vector<mx::array>(inputs->v.begin() + g * k, inputs->v.begin() + (g + 1) * k);
    };
    temper::kernels::AdamWOptions options{learning_rate, beta1, beta2, eps, bias_correction1, bias_correction2};
    out->v = temper::kernels::adamw_8bit_update(group(0), group(1), group(2), group(3), group(4), group(5),
                                                std::vector<float>(weight_decays, weight_decays + k), options,
                                                std::vector<float>(first_map, first_map + 256),
                                                std::vector<float>(second_map, second_map + 256),
                                                static_cast<size_t>(block_size));
  })
}
int tmx_kernel_nf4_dequantize(tmx_array* out, tmx_array packed, tmx_array absmax, const int* shape, int ndim, int block_size) {
  TMX_TRY(*out = wrap(temper::kernels::nf4_dequantize(packed->a, absmax->a, shape_of(shape, ndim), block_size)))
}
int tmx_kernel_int8_dequantize(tmx_array* out, tmx_array codes, tmx_array absmax, const int* shape, int ndim, int block_size) {
  TMX_TRY(*out = wrap(temper::kernels::int8_dequantize(codes->a, absmax->a, shape_of(shape, ndim), block_size)))
}
int tmx_kernel_attention(tmx_array* out, tmx_array queries, tmx_array keys, tmx_array values, float scale,
                         bool causal, tmx_array query_segments, tmx_array key_segments, tmx_array mask) {
  TMX_TRY({
    temper::kernels::AttentionOptions options;
    options.scale = scale;
    options.causal = causal;
    *out = wrap(temper::kernels::attention(queries->a, keys->a, values->a, options, optional(query_segments),
                                           optional(key_segments), optional(mask)));
  })
}
int tmx_kernel_paged_attention(tmx_array* out, tmx_array queries, tmx_array key_pool, tmx_array value_pool,
                               tmx_array block_table, tmx_array key_counts, int block_size, float scale) {
  TMX_TRY(*out = wrap(temper::kernels::paged_attention(queries->a, key_pool->a, value_pool->a, block_table->a,
                                                       key_counts->a, block_size, scale)))
}
int tmx_kernel_dense_linear(tmx_array* out, tmx_array x, tmx_array weight, tmx_array bias) {
  TMX_TRY(*out = wrap(temper::kernels::dense_linear(x->a, weight->a, optional(bias))))
}
int tmx_kernel_lora_linear(tmx_array* out, tmx_array x, tmx_array weight, tmx_array bias, tmx_array a, tmx_array b,
                           float scale, tmx_array dropped_input, float dropout, uint64_t dropout_seed,
                           uint64_t dropout_offset) {
  TMX_TRY(*out = wrap(temper::kernels::lora_linear(x->a, weight->a, optional(bias), a->a, b->a, scale,
                                                   optional(dropped_input), dropout, dropout_seed, dropout_offset)))
}
int tmx_kernel_quantized_linear(tmx_array* out, tmx_array x, tmx_array codes, tmx_array scales, tmx_array mins,
                                tmx_array bias, int bits, int group_size, int instruction_set) {
  TMX_TRY(*out = wrap(temper::kernels::quantized_linear(x->a, codes->a, scales->a, optional(mins), optional(bias), bits,
                                                        group_size, instruction_set)))
}
int tmx_kernel_thread_count(void) { return temper::kernels::thread_count(); }
int tmx_kernel_instruction_set(void) { return temper::kernels::instruction_set(); }
float tmx_host_max(const float* x, size_t count) { return temper::kernels::host_max(x, count); }
float tmx_host_exp_weights(const float* x, size_t count, float shift, float scale, float* weights) {
  return temper::kernels::host_exp_weights(x, count, shift, scale, weights);
}
char* tmx_openblas_core(void) { return strdup(temper::kernels::openblas_core().c_str()); }

// MARK: quantization

int tmx_quantize(tmx_vec out, tmx_array w, int group_size, int bits, const char* mode) {
  TMX_TRY(out->v = mx::quantize(w->a, group_size, bits, mode))
}
int tmx_dequantize(tmx_array* out, tmx_array w, tmx_array scales, tmx_array biases, int group_size, int bits,
                   const char* mode) {
  TMX_TRY(*out = wrap(mx::dequantize(w->a, scales->a, optional(biases), group_size, bits, mode)))
}
int tmx_quantized_matmul(tmx_array* out, tmx_array x, tmx_array w, tmx_array scales, tmx_array biases,
                         bool transpose, int group_size, int bits, const char* mode) {
  TMX_TRY(*out = wrap(mx::quantized_matmul(x->a, w->a, scales->a, optional(biases), transpose, group_size, bits, mode)))
}

// MARK: transforms

int tmx_vjp(tmx_function f, void* context, tmx_vec primals, tmx_vec cotangents, tmx_vec outputs, tmx_vec vjps) {
  TMX_TRY({
    auto fn = [=](const std::vector<mx::array>& xs) { return call(f, context, xs); };
    auto [outs, grads] = mx::vjp(fn, primals->v, cotangents->v);
    outputs->v = std::move(outs);
    vjps->v = std::move(grads);
  })
}
int tmx_jvp(tmx_function f, void* context, tmx_vec primals, tmx_vec tangents, tmx_vec outputs, tmx_vec jvps) {
  TMX_TRY({
    auto fn = [=](const std::vector<mx::array>& xs) { return call(f, context, xs); };
    auto [outs, tans] = mx::jvp(fn, primals->v, tangents->v);
    outputs->v = std::move(outs);
    jvps->v = std::move(tans);
  })
}
int tmx_value_and_grad(tmx_function f, void* context, tmx_vec inputs, const int* argnums, int nargnums,
                       tmx_vec values, tmx_vec grads) {
  TMX_TRY({
    auto fn = [=](const std::vector<mx::array>& xs) { return call(f, context, xs); };
    auto vg = mx::value_and_grad(fn, ints(argnums, nargnums));
    auto [vals, gs] = vg(inputs->v);
    values->v = std::move(vals);
    grads->v = std::move(gs);
  })
}
int tmx_compile(tmx_closure* out, tmx_function f, void* context, void (*release)(void*), bool shapeless) {
  auto closure = new tmx_closure_s{{}, context, release};
  try {
    auto fn = [=](const std::vector<mx::array>& xs) { return call(f, context, xs); };
    closure->compiled = mx::compile(fn, shapeless);
    *out = closure;
    return 0;
  } catch (const std::exception& e) {
    delete closure;
    return fail(e.what());
  }
}
int tmx_closure_apply(tmx_closure c, tmx_vec inputs, tmx_vec outputs) {
  TMX_TRY(outputs->v = c->compiled(inputs->v))
}
void tmx_closure_free(tmx_closure c) { delete c; }
int tmx_checkpoint(tmx_closure* out, tmx_function f, void* context, void (*release)(void*)) {
  // The backward pass calls f again, possibly after the closure itself is freed, so the context
  // lives as long as any copy of the function (the graph keeps one): a shared owner releases it.
  std::shared_ptr<void> owner(context, [release](void* c) { if (release) release(c); });
  try {
    auto fn = [f, owner](const std::vector<mx::array>& xs) { return call(f, owner.get(), xs); };
    *out = new tmx_closure_s{mx::checkpoint(fn), nullptr, nullptr};
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}
void tmx_set_compile_enabled(bool enabled) {
  if (enabled) mx::enable_compile(); else mx::disable_compile();
}

// MARK: memory

size_t tmx_active_memory(void) { return mx::get_active_memory(); }
size_t tmx_peak_memory(void) { return mx::get_peak_memory(); }
size_t tmx_cache_memory(void) { return mx::get_cache_memory(); }
void tmx_reset_peak_memory(void) { mx::reset_peak_memory(); }
size_t tmx_set_cache_limit(size_t limit) { return mx::set_cache_limit(limit); }
size_t tmx_set_memory_limit(size_t limit) { return mx::set_memory_limit(limit); }
void tmx_clear_cache(void) { mx::clear_cache(); }

// MARK: files

int tmx_load_safetensors(const char* path, tmx_strvec names, tmx_vec arrays, tmx_strvec metadata_keys,
                         tmx_strvec metadata_values) {
  TMX_TRY({
    auto [tensors, metadata] = mx::load_safetensors(std::string(path));
    append_loaded(tensors, names, arrays);
    std::map<std::string, std::string> sorted_meta(metadata.begin(), metadata.end());
    for (auto& [k, v] : sorted_meta) {
      metadata_keys->v.push_back(k);
      metadata_values->v.push_back(v);
    }
  })
}

int tmx_save_safetensors(const char* path, tmx_strvec names, tmx_vec arrays, tmx_strvec metadata_keys,
                         tmx_strvec metadata_values) {
  TMX_TRY({
    auto tensors = named(names, arrays);
    std::unordered_map<std::string, std::string> metadata;
    for (size_t i = 0; i < metadata_keys->v.size(); i++) metadata[metadata_keys->v[i]] = metadata_values->v[i];
    mx::save_safetensors(std::string(path), tensors, metadata);
  })
}

tmx_gguf_meta tmx_gguf_meta_new(void) { return new tmx_gguf_meta_s{}; }
void tmx_gguf_meta_free(tmx_gguf_meta m) { delete m; }
size_t tmx_gguf_meta_size(tmx_gguf_meta m) { return m->keys.size(); }
const char* tmx_gguf_meta_key(tmx_gguf_meta m, size_t i) { return m->keys[i].c_str(); }
int tmx_gguf_meta_kind(tmx_gguf_meta m, size_t i) { return static_cast<int>(m->values[i].index()); }
tmx_array tmx_gguf_meta_array(tmx_gguf_meta m, size_t i) { return wrap(std::get<mx::array>(m->values[i])); }
const char* tmx_gguf_meta_string(tmx_gguf_meta m, size_t i) { return std::get<std::string>(m->values[i]).c_str(); }
void tmx_gguf_meta_strings(tmx_gguf_meta m, size_t i, tmx_strvec out) {
  out->v = std::get<std::vector<std::string>>(m->values[i]);
}
void tmx_gguf_meta_set_array(tmx_gguf_meta m, const char* key, tmx_array a) {
  m->keys.emplace_back(key);
  m->values.emplace_back(a->a);
}
void tmx_gguf_meta_set_string(tmx_gguf_meta m, const char* key, const char* value) {
  m->keys.emplace_back(key);
  m->values.emplace_back(std::string(value));
}
void tmx_gguf_meta_set_strings(tmx_gguf_meta m, const char* key, tmx_strvec values) {
  m->keys.emplace_back(key);
  m->values.emplace_back(values->v);
}

int tmx_load_gguf(const char* path, tmx_strvec names, tmx_vec arrays, tmx_gguf_meta metadata) {
  TMX_TRY({
    auto [tensors, meta] = mx::load_gguf(std::string(path));
    append_loaded(tensors, names, arrays);
    std::map<std::string, mx::GGUFMetaData> sorted_meta(meta.begin(), meta.end());
    for (auto& [k, v] : sorted_meta) {
      metadata->keys.push_back(k);
      metadata->values.push_back(v);
    }
  })
}

int tmx_save_gguf(const char* path, tmx_strvec names, tmx_vec arrays, tmx_gguf_meta metadata) {
  TMX_TRY({
    auto tensors = named(names, arrays);
    std::unordered_map<std::string, mx::GGUFMetaData> meta;
    for (size_t i = 0; i < metadata->keys.size(); i++) meta.insert_or_assign(metadata->keys[i], metadata->values[i]);
    mx::save_gguf(std::string(path), tensors, meta);
  })
}

// MARK: distributed

namespace {
std::optional<mx::distributed::Group> joined_group;
}

bool tmx_distributed_is_available(const char* backend) {
  try {
    return mx::distributed::is_available(std::string(backend));
  } catch (...) {
    return false;
  }
}

int tmx_distributed_init(const char* backend, bool strict, int* rank, int* size) {
  TMX_TRY({
    joined_group = mx::distributed::init(strict, std::string(backend));
    *rank = joined_group->rank();
    *size = joined_group->size();
  })
}

int tmx_all_sum(tmx_array* out, tmx_array a) {
  TMX_TRY(*out = wrap(mx::distributed::all_sum(a->a, joined_group)))
}

}  // extern "C"
