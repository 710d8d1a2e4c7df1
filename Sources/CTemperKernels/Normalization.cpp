// RMSNorm and rotary embedding as primitives. MLX's fast::rms_norm and fast::rope have no CPU
// kernels: on the CPU they run as compositions of single-threaded ops (square, mean, rsqrt and
// three multiplies forward, about ten more backward; RoPE adds slices, a concatenation and the
// transposes around it), which took a tenth of a LoRA step once the matrix products ran on AVX-512.
// Here each is one threaded pass; RoPE also moves tokens between the projection's [B, T, H, D] and
// attention's [B, H, T, D] layout, so the transposes cost no pass of their own.
#include "Common.h"
#include "TemperKernels.h"

namespace temper::kernels {

#define TEMPER_BODIES "NormalizationBodies.inc"
#include "PerInstructionSet.inc"

namespace {

/// Inputs: x [N, D], w [D], inverse rms [N], dy [N, D]. Outputs: dx [N, D], dw [D].
class RMSNormBackward : public mx::Primitive {
 public:
  explicit RMSNormBackward(mx::Stream stream) : mx::Primitive(stream) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override {
    dispatch(stream(), inputs, outputs, [](auto& in, auto& out) {
      size_t rows = in[0].shape(0), d = in[0].shape(1);
      const float *x = in[0].template data<float>(), *w = in[1].template data<float>();
      const float *inverse_rms = in[2].template data<float>(), *dy = in[3].template data<float>();
      float *dx = out[0].template data<float>(), *dw = out[1].template data<float>();
      rows_with_partials(rows, d, dw, [&](size_t begin, size_t end, float* partial) {
        TEMPER_DISPATCH(rms_norm_backward_rows, x, w, inverse_rms, dy, dx, partial, d, begin, end);
      });
    });
  }
  void eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) override { no_gpu(name()); }
  const char* name() const override { return "TemperRMSNormBackward"; }
  bool is_equivalent(const mx::Primitive&) const override { return true; }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    return {inputs[0].shape(), inputs[1].shape()};
  }
};

/// Inputs: x [N, D], w [D]. Outputs: y [N, D] and the inverse rms [N] (for the backward).
class RMSNorm : public mx::Primitive {
 public:
  RMSNorm(mx::Stream stream, float eps) : mx::Primitive(stream), eps_(eps) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override {
    dispatch(stream(), inputs, outputs, [eps = eps_](auto& in, auto& out) {
      size_t rows = in[0].shape(0), d = in[0].shape(1);
      const float *x = in[0].template data<float>(), *w = in[1].template data<float>();
      float *y = out[0].template data<float>(), *inverse_rms = out[1].template data<float>();
      parallel_for(rows, row_grain(d), [&](size_t begin, size_t end) {
        TEMPER_DISPATCH(rms_norm_rows, x, w, eps, y, inverse_rms, d, begin, end);
      });
    });
  }
  void eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) override { no_gpu(name()); }

  std::vector<mx::array> vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cotangents,
                             const std::vector<int>& argnums, const std::vector<mx::array>& outputs) override {
    auto s = cpu_stream();
    auto dy = mx::contiguous(mx::astype(cotangents[0], mx::float32, s), false, s);
    auto grads = mx::array::make_arrays({primals[0].shape(), primals[1].shape()}, {mx::float32, mx::float32},
                                        std::make_shared<RMSNormBackward>(s), {primals[0], primals[1], outputs[1], dy});
    std::vector<mx::array> result;
    for (int arg : argnums) result.push_back(grads[arg]);
    return result;
  }
  const char* name() const override { return "TemperRMSNorm"; }
  bool is_equivalent(const mx::Primitive& other) const override { return eps_ == static_cast<const RMSNorm&>(other).eps_; }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    return {inputs[0].shape(), {inputs[0].shape(0)}};
  }

 private:
  float eps_;
};

/// Forward: x [B, T, H, D] → [B, H, T, D]. Backward: [B, H, T, D] → [B, T, H, D] rotated back.
/// Inputs: the tensor, cos [Bc, T, D/2], sin [Bc, T, D/2] with Bc 1 or B.
class Rope : public mx::UnaryPrimitive {
 public:
  Rope(mx::Stream stream, bool forward) : mx::UnaryPrimitive(stream), forward_(forward) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override {
    std::vector<mx::array> outputs{out};
    dispatch(stream(), inputs, outputs, [forward = forward_](auto& in, auto& out) {
      auto& x = in[0];  // [B, T, H, D] forward, [B, H, T, D] backward
      size_t batch = x.shape(0), tokens = x.shape(forward ? 1 : 2), heads = x.shape(forward ? 2 : 1), d = x.shape(3);
      bool batched_angles = in[1].shape(0) > 1;
      const float *source = x.template data<float>(), *cos_table = in[1].template data<float>();
      const float* sin_table = in[2].template data<float>();
      float* y = out[0].template data<float>();
      parallel_for(batch * tokens, row_grain(heads * d), [&](size_t begin, size_t end) {
        TEMPER_DISPATCH(rope_tokens, source, cos_table, sin_table, y, forward, batched_angles, tokens, heads, d, begin,
                        end);
      });
    });
  }
  void eval_gpu(const std::vector<mx::array>&, mx::array&) override { no_gpu(name()); }

  std::vector<mx::array> vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cotangents,
                             const std::vector<int>& argnums, const std::vector<mx::array>&) override {
    auto s = cpu_stream();
    std::vector<mx::array> result;
    for (int arg : argnums) {
      if (arg == 0) {
        auto seed = mx::contiguous(mx::astype(cotangents[0], mx::float32, s), false, s);
        result.push_back(mx::array(primals[0].shape(), mx::float32, std::make_shared<Rope>(s, !forward_),
                                   {seed, primals[1], primals[2]}));
      } else {
        result.push_back(mx::zeros_like(primals[arg], s));  // the angles come from positions: constants
      }
    }
    return result;
  }
  const char* name() const override { return forward_ ? "TemperRope" : "TemperRopeBackward"; }
  bool is_equivalent(const mx::Primitive& other) const override { return forward_ == static_cast<const Rope&>(other).forward_; }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    auto& x = inputs[0].shape();
    return {{x[0], x[2], x[1], x[3]}};
  }

 private:
  bool forward_;
};

}  // namespace

mx::array rms_norm(const mx::array& x, const mx::array& weight, float eps) {
  auto s = cpu_stream();
  if (x.ndim() < 1 || weight.ndim() != 1 || weight.shape(0) != x.shape(-1) || x.dtype() != mx::float32 ||
      weight.dtype() != mx::float32) {
    throw std::invalid_argument("[temper::kernels::rms_norm] expects float32 x [..., D] and weight [D]");
  }
  int d = x.shape(-1);
  int rows = d == 0 ? 0 : static_cast<int>(x.size() / d);
  auto flat = mx::contiguous(mx::reshape(x, {rows, d}, s), false, s);
  auto outputs = mx::array::make_arrays({{rows, d}, {rows}}, {mx::float32, mx::float32},
                                        std::make_shared<RMSNorm>(s, eps), {flat, mx::contiguous(weight, false, s)});
  return mx::reshape(outputs[0], x.shape(), s);
}

mx::array rope_heads(const mx::array& x, const mx::array& cos, const mx::array& sin) {
  auto s = cpu_stream();
  if (x.ndim() != 4 || x.shape(3) % 2 != 0 || x.dtype() != mx::float32) {
    throw std::invalid_argument("[temper::kernels::rope_heads] expects float32 x [B, T, H, D] with D even");
  }
  mx::Shape table{x.shape(1), x.shape(3) / 2};
  for (auto* t : {&cos, &sin}) {
    bool fits = t->ndim() == 3 && (t->shape(0) == 1 || t->shape(0) == x.shape(0)) && t->shape(1) == table[0] &&
                t->shape(2) == table[1] && t->dtype() == mx::float32;
    if (!fits) throw std::invalid_argument("[temper::kernels::rope_heads] cos and sin must be float32 [1 or B, T, D/2]");
  }
  return mx::array({x.shape(0), x.shape(2), x.shape(1), x.shape(3)}, mx::float32, std::make_shared<Rope>(s, true),
                   {mx::contiguous(x, false, s), mx::contiguous(cos, false, s), mx::contiguous(sin, false, s)});
}

}  // namespace temper::kernels
