// The LoRA linear layer y = x·Wᵀ (+ b) + scale·(x'·Aᵀ)·Bᵀ as one primitive, x' being x or its
// dropout. Composed from MLX ops, the rank-r products go to OpenBLAS, which is slow at rank 16
// (its packing dominates), and the scale, the add and the backward's gradient sums each take
// another pass over [N, out] or [N, in] arrays. Here the base product is one sgemm and every rank-r
// step is fused into a single pass over the rows, accumulating in place.
#include "Common.h"
#include "TemperKernels.h"

extern "C" void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, const float* a,
                            int lda, const float* b, int ldb, float beta, float* c, int ldc);

namespace temper::kernels {

#define TEMPER_BODIES "LoRABodies.inc"
#include "PerInstructionSet.inc"

namespace {

constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
constexpr size_t kMaxRank = 256;  // lora_forward_rows keeps a row's rank values on the stack

struct Sizes {
  size_t rows, in, out, rank;
};

Sizes sizes_of(const mx::array& x, const mx::array& a, const mx::array& b) {
  return {static_cast<size_t>(x.shape(0)), static_cast<size_t>(x.shape(1)), static_cast<size_t>(b.shape(0)),
          static_cast<size_t>(a.shape(0))};
}

/// What a call keeps in a scratch buffer; a backward call uses both at once.
enum class ScratchUse { widened_weight, dropped_input, count };

/// A buffer of at least `floats` (uninitialized) that outlives the call: the stream thread's own
/// (MLX runs the CPU stream's primitives one at a time on it), grown when too small and otherwise
/// reused, since a fresh block of megabytes is fresh pages to fault in at every call.
float* scratch(ScratchUse use, size_t floats) {
  thread_local std::unique_ptr<float[]> buffers[size_t(ScratchUse::count)];
  thread_local size_t capacities[size_t(ScratchUse::count)] = {};
  size_t slot = size_t(use);
  if (capacities[slot] < floats) {
    buffers[slot].reset(new float[floats]);
    capacities[slot] = floats;
  }
  return buffers[slot].get();
}

/// The base weight as float32: its own data, or (stored in bfloat16) widened in one threaded pass
/// into scratch, so no float32 copy of a frozen weight is kept between the forward and the backward.
class Float32Weight {
 public:
  explicit Float32Weight(const mx::array& w) {
    if (w.dtype() == mx::float32) {
      data_ = w.data<float>();
      return;
    }
    const uint16_t* bits = reinterpret_cast<const uint16_t*>(w.data<mx::bfloat16_t>());
    float* target = scratch(ScratchUse::widened_weight, w.size());
    parallel_for(w.size(), kElementGrain, [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; i++) {
        uint32_t word = uint32_t(bits[i]) << 16;  // bfloat16 is the top half of a float32
        std::memcpy(target + i, &word, sizeof word);
      }
    });
    data_ = target;
  }
  const float* data() const { return data_; }

 private:
  const float* data_;
};

/// Bᵀ [rank, out] from B [out, rank], so the rank-r passes read contiguous rows.
std::vector<float> transposed(const float* b, size_t out, size_t rank) {
  std::vector<float> t(rank * out);
  for (size_t o = 0; o < out; o++) {
    for (size_t k = 0; k < rank; k++) t[k * out + o] = b[o * rank + k];
  }
  return t;
}

/// y [rows, out] = x [rows, in]·Wᵀ (+ bias [out], or none when null), W [out, in] row-major.
void linear_forward(const float* x, const float* w, const float* bias, float* y, size_t rows, size_t in, size_t out) {
  if (bias) {
    for (size_t i = 0; i < rows; i++) std::memcpy(y + i * out, bias, out * sizeof(float));
  }
  cblas_sgemm(kRowMajor, kNoTrans, kTrans, rows, out, in, 1.0f, x, in, w, in, bias ? 1.0f : 0.0f, y, out);
}

/// Inputs: dy [N, out], x [N, in], W [out, in], A [rank, in], B [out, rank], xa [N, rank], then the
/// dropped input x' [N, in] when it differs from x. Outputs: dx, dA, dB, and dx' when x' is given.
/// Without `input_gradient` (nothing upstream of x is trained, as for the first layer's
/// projections in LoRA) the dx outputs are zeros and their products are skipped.
class LoRALinearBackward : public mx::Primitive {
 public:
  LoRALinearBackward(mx::Stream stream, float scale, bool input_gradient, std::optional<DropoutMask> dropout)
      : mx::Primitive(stream), scale_(scale), input_gradient_(input_gradient), dropout_(dropout) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override {
    dispatch(stream(), inputs, outputs, [scale = scale_, input_gradient = input_gradient_, mask = dropout_](auto& in, auto& out) {
      auto z = sizes_of(in[1], in[3], in[4]);
      const float *dy = in[0].template data<float>(), *x = in[1].template data<float>();
      const float* a = in[3].template data<float>();
      const float *b = in[4].template data<float>(), *xa = in[5].template data<float>();
      bool separate = in.size() > 6;  // an explicit dropped input: the rank-r path saw x', not x
      const float* dropped = separate ? in[6].template data<float>() : x;
      float *dx = out[0].template data<float>(), *da = out[1].template data<float>();
      float* db = out[2].template data<float>();
      float* d_dropped = separate ? out[3].template data<float>() : dx;
      // The kernel's own dropout: x' redrawn from the mask, and the same buffer then takes the
      // gradient reaching x' (each row is read for dA before its dx' is written over it).
      float* drawn = nullptr;
      if (mask) {
        drawn = scratch(ScratchUse::dropped_input, z.rows * z.in);
        mask->apply(x, drawn, z.rows * z.in);
        dropped = d_dropped = drawn;
      }

      if (input_gradient) {
        Float32Weight w(in[2]);
        cblas_sgemm(kRowMajor, kNoTrans, kNoTrans, z.rows, z.in, z.out, 1.0f, dy, z.out, w.data(), z.in, 0.0f, dx, z.in);
      } else {
        std::memset(dx, 0, z.rows * z.in * sizeof(float));
        if (separate) std::memset(d_dropped, 0, z.rows * z.in * sizeof(float));
      }
      auto bt = transposed(b, z.out, z.rank);
      std::vector<float> ga(z.rows * z.rank), dbt(z.rank * z.out);
      rows_with_partials(z.rows, z.rank * z.out, dbt.data(), [&](size_t begin, size_t end, float* partial) {
        TEMPER_DISPATCH(lora_output_gradient_rows, dy, bt.data(), xa, scale, ga.data(), partial, z.rank, z.out, begin, end);
      });
      for (size_t o = 0; o < z.out; o++) {
        for (size_t k = 0; k < z.rank; k++) db[o * z.rank + k] = scale * dbt[k * z.out + o];
      }
      rows_with_partials(z.rows, z.rank * z.in, da, [&](size_t begin, size_t end, float* partial) {
        TEMPER_DISPATCH(lora_input_gradient_rows, dropped, ga.data(), a, partial, input_gradient ? d_dropped : nullptr,
                        !separate && !mask, z.in, z.rank, begin, end);
      });
      if (mask && input_gradient) mask->apply(drawn, dx, z.rows * z.in, /*accumulate=*/true);
    });
  }
  void eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) override { no_gpu(name()); }
  const char* name() const override { return "TemperLoRALinearBackward"; }

 private:
  float scale_;
  bool input_gradient_;
  std::optional<DropoutMask> dropout_;
};

/// Inputs: x [N, in], W [out, in], A [rank, in], B [out, rank], then optionally the bias [out] and
/// the dropped input x' [N, in]. Outputs: y [N, out] and xa = x'·Aᵀ [N, rank] (for the backward).
class LoRALinear : public mx::Primitive {
 public:
  LoRALinear(mx::Stream stream, float scale, bool bias, bool dropped, std::optional<DropoutMask> dropout)
      : mx::Primitive(stream), scale_(scale), bias_(bias), dropped_(dropped), dropout_(dropout) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override {
    dispatch(stream(), inputs, outputs, [scale = scale_, has_bias = bias_, dropped = dropped_, mask = dropout_](auto& in, auto& out) {
      auto z = sizes_of(in[0], in[2], in[3]);
      const float* x = in[0].template data<float>();
      const float *a = in[2].template data<float>(), *b = in[3].template data<float>();
      const float* rank_input = dropped ? in[has_bias ? 5 : 4].template data<float>() : x;
      if (mask) {  // x' for this call only: the backward redraws it
        float* drawn = scratch(ScratchUse::dropped_input, z.rows * z.in);
        mask->apply(x, drawn, z.rows * z.in);
        rank_input = drawn;
      }
      float *y = out[0].template data<float>(), *xa = out[1].template data<float>();
      Float32Weight w(in[1]);
      linear_forward(x, w.data(), has_bias ? in[4].template data<float>() : nullptr, y, z.rows, z.in, z.out);
      auto bt = transposed(b, z.out, z.rank);
      parallel_for(z.rows, row_grain(z.in + z.out), [&](size_t begin, size_t end) {
        TEMPER_DISPATCH(lora_forward_rows, rank_input, a, bt.data(), scale, xa, y, z.in, z.rank, z.out, begin, end);
      });
    });
  }
  void eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) override { no_gpu(name()); }

  std::vector<mx::array> vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cotangents,
                             const std::vector<int>& argnums, const std::vector<mx::array>& outputs) override {
    auto s = cpu_stream();
    auto& x = primals[0];
    auto& w = primals[1];
    auto dy = mx::contiguous(mx::astype(cotangents[0], mx::float32, s), false, s);
    std::vector<mx::array> inputs{dy, x, w, primals[2], primals[3], outputs[1]};
    int dropped_index = dropped_ ? (bias_ ? 5 : 4) : -1;
    if (dropped_) inputs.push_back(primals[dropped_index]);
    std::vector<mx::Shape> shapes{x.shape(), primals[2].shape(), primals[3].shape()};
    if (dropped_) shapes.push_back(x.shape());
    bool input_gradient = std::any_of(argnums.begin(), argnums.end(),
                                      [&](int arg) { return arg == 0 || arg == dropped_index; });
    auto grads = mx::array::make_arrays(shapes, std::vector<mx::Dtype>(shapes.size(), mx::float32),
                                        std::make_shared<LoRALinearBackward>(s, scale_, input_gradient, dropout_), inputs);
    std::vector<mx::array> result;
    for (int arg : argnums) {
      if (arg == 0) {
        result.push_back(grads[0]);
      } else if (arg == 1) {  // the base weight is normally frozen; computed only when asked
        result.push_back(mx::matmul(mx::transpose(dy, s), x, s));
      } else if (arg == 2 || arg == 3) {
        result.push_back(grads[arg - 1]);
      } else if (arg == dropped_index) {
        result.push_back(grads[3]);
      } else {  // the bias
        result.push_back(mx::sum(dy, 0, false, s));
      }
    }
    return result;
  }
  const char* name() const override { return "TemperLoRALinear"; }
  bool is_equivalent(const mx::Primitive& other) const override {
    auto& o = static_cast<const LoRALinear&>(other);
    return scale_ == o.scale_ && bias_ == o.bias_ && dropped_ == o.dropped_ && dropout_ == o.dropout_;
  }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    return {{inputs[0].shape(0), inputs[3].shape(0)}, {inputs[0].shape(0), inputs[2].shape(0)}};
  }

 private:
  float scale_;
  bool bias_, dropped_;
  std::optional<DropoutMask> dropout_;
};

/// y = x·Wᵀ (+ b) for a trained W. MLX's matmul of x with the view Wᵀ gives W's gradient as the
/// view (xᵀ·dy)ᵀ, which the optimizer then copies to W's own [out, in] layout on one thread: 3% of a
/// full fine-tuning step on a Qwen2.5-0.5B shape. Here the gradient is dyᵀ·x, row-major from the
/// start. Inputs: x [N, in], W [out, in], then optionally the bias [out].
class DenseLinear : public mx::Primitive {
 public:
  DenseLinear(mx::Stream stream, bool bias) : mx::Primitive(stream), bias_(bias) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override {
    dispatch(stream(), inputs, outputs, [has_bias = bias_](auto& in, auto& out) {
      linear_forward(in[0].template data<float>(), in[1].template data<float>(),
                     has_bias ? in[2].template data<float>() : nullptr, out[0].template data<float>(), in[0].shape(0),
                     in[0].shape(1), in[1].shape(0));
    });
  }
  void eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) override { no_gpu(name()); }

  std::vector<mx::array> vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cotangents,
                             const std::vector<int>& argnums, const std::vector<mx::array>&) override {
    auto s = cpu_stream();
    auto dy = mx::astype(cotangents[0], mx::float32, s);
    std::vector<mx::array> result;
    for (int arg : argnums) {
      if (arg == 0) result.push_back(mx::matmul(dy, primals[1], s));
      else if (arg == 1) result.push_back(mx::matmul(mx::transpose(dy, s), primals[0], s));
      else result.push_back(mx::sum(dy, 0, false, s));
    }
    return result;
  }
  std::vector<mx::array> jvp(const std::vector<mx::array>& primals, const std::vector<mx::array>& tangents,
                             const std::vector<int>& argnums) override {
    auto s = cpu_stream();
    std::optional<mx::array> total;
    for (size_t i = 0; i < argnums.size(); i++) {
      auto& t = tangents[i];
      mx::array term = argnums[i] == 0   ? mx::matmul(t, mx::transpose(primals[1], s), s)
                       : argnums[i] == 1 ? mx::matmul(primals[0], mx::transpose(t, s), s)
                                         : mx::broadcast_to(t, {primals[0].shape(0), primals[1].shape(0)}, s);
      total = total ? mx::add(*total, term, s) : term;
    }
    return {*total};
  }
  const char* name() const override { return "TemperDenseLinear"; }
  bool is_equivalent(const mx::Primitive& other) const override {
    return bias_ == static_cast<const DenseLinear&>(other).bias_;
  }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    return {{inputs[0].shape(0), inputs[1].shape(0)}};
  }

 private:
  bool bias_;
};

}  // namespace

mx::array dense_linear(const mx::array& x, const mx::array& weight, const std::optional<mx::array>& bias) {
  auto s = cpu_stream();
  if (x.ndim() != 2 || weight.ndim() != 2 || x.dtype() != mx::float32 || weight.dtype() != mx::float32 ||
      weight.shape(1) != x.shape(1) || (bias && (bias->shape() != mx::Shape{weight.shape(0)}))) {
    throw std::invalid_argument("[temper::kernels::dense_linear] expects float32 x [N, in], weight [out, in], bias [out]");
  }
  std::vector<mx::array> inputs{mx::contiguous(x, false, s), mx::contiguous(weight, false, s)};
  if (bias) inputs.push_back(mx::contiguous(mx::astype(*bias, mx::float32, s), false, s));
  return mx::array({x.shape(0), weight.shape(0)}, mx::float32, std::make_shared<DenseLinear>(s, bias.has_value()),
                   inputs);
}

mx::array lora_linear(const mx::array& x, const mx::array& weight, const std::optional<mx::array>& bias,
                      const mx::array& a, const mx::array& b, float scale, const std::optional<mx::array>& dropped_input,
                      float dropout_probability, uint64_t dropout_seed, uint64_t dropout_offset) {
  auto s = cpu_stream();
  for (auto* t : {&x, &weight, &a, &b}) {
    bool stored_weight = t == &weight && t->dtype() == mx::bfloat16;  // frozen weights may be stored in bfloat16
    if (t->ndim() != 2 || (t->dtype() != mx::float32 && !stored_weight)) {
      throw std::invalid_argument("[temper::kernels::lora_linear] expects 2-D float32 x, A and B and a float32 or bfloat16 weight");
    }
  }
  int rows = x.shape(0), in = x.shape(1), out = weight.shape(0), rank = a.shape(0);
  if (weight.shape(1) != in || a.shape(1) != in || b.shape(0) != out || b.shape(1) != rank ||
      rank > static_cast<int>(kMaxRank)) {
    throw std::invalid_argument(
        "[temper::kernels::lora_linear] expects x [N, in], weight [out, in], A [r, in], B [out, r] with r <= 256");
  }
  std::vector<mx::array> inputs{mx::contiguous(x, false, s), mx::contiguous(weight, false, s),
                                mx::contiguous(a, false, s), mx::contiguous(b, false, s)};
  if (bias) {
    if (bias->shape() != mx::Shape{out}) throw std::invalid_argument("[temper::kernels::lora_linear] bias must be [out]");
    inputs.push_back(mx::contiguous(mx::astype(*bias, mx::float32, s), false, s));
  }
  if (dropped_input) {
    if (dropped_input->shape() != x.shape()) {
      throw std::invalid_argument("[temper::kernels::lora_linear] the dropped input must have x's shape");
    }
    inputs.push_back(mx::contiguous(mx::astype(*dropped_input, mx::float32, s), false, s));
  }
  std::optional<DropoutMask> dropout;
  if (dropout_probability > 0.0f) {
    if (dropped_input) throw std::invalid_argument("[temper::kernels::lora_linear] takes a dropped input or a dropout, not both");
    dropout = DropoutMask::of(dropout_probability, dropout_seed, dropout_offset);
  }
  auto outputs = mx::array::make_arrays(
      {{rows, out}, {rows, rank}}, {mx::float32, mx::float32},
      std::make_shared<LoRALinear>(s, scale, bias.has_value(), dropped_input.has_value(), dropout), inputs);
  return outputs[0];
}

}  // namespace temper::kernels
