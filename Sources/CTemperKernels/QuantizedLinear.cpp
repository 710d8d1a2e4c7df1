// y = x·dequant(W)ᵀ (+ b) for a weight-only quantized W, for inference at decode shapes (a few rows
// of x). Composed from MLX ops the weight is first dequantized to float32 (four bytes written and
// read again per element) and MLX's own quantized matmul runs at 2-4 GFLOPS on the CPU; here the
// threads split the output rows and each reads its rows' codes once per call, widening them to
// floats in registers for every row of x at once. Formats, per group of `group_size` consecutive
// input elements of an output row: int8 codes q with a float32 scale (w ≈ scale·q), or 4-bit codes
// q in 0..15, two per byte, low nibble first, with a float32 scale and min (w ≈ scale·q + min); or,
// with no groups, bfloat16 weights (half the bytes of float32, widened by a shift) or float32
// weights as they are: for plain float weights at decode shapes, where an sgemm packs the weight
// for every call and a few rows of x read it far slower per byte than one row's gemv.
#include "Common.h"
#include "TemperKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace temper::kernels {

#define TEMPER_BODIES "QuantizedLinearBodies.inc"
#include "PerInstructionSet.inc"

namespace {

/// The build to run: the widest this CPU runs (capped by TEMPER_KERNEL_ISA), or a narrower one a
/// caller asks for (0 portable, 1 AVX2, 2 AVX-512) to test each build on one machine.
InstructionSet chosen_instruction_set(int requested) {
  InstructionSet widest = kernel_instruction_set();
  if (requested < 0 || requested > int(widest)) return widest;
  return InstructionSet(requested);
}

template <class... Args>
void permute_input(InstructionSet isa, Args... args) {
  switch (isa) {
#if defined(__x86_64__)
    case InstructionSet::avx512: avx512::quantized_linear_permute(args...); return;
    case InstructionSet::avx2: avx2::quantized_linear_permute(args...); return;
#endif
    default: portable::quantized_linear_permute(args...); return;
  }
}

template <class... Args>
void rows_kernel(InstructionSet isa, Args... args) {
  switch (isa) {
#if defined(__x86_64__)
    case InstructionSet::avx512: avx512::quantized_linear_rows(args...); return;
    case InstructionSet::avx2: avx2::quantized_linear_rows(args...); return;
#endif
    default: portable::quantized_linear_rows(args...); return;
  }
}

/// A scratch buffer of at least `count` elements on the stream thread, reused between calls (one
/// per `Tag`, so that two buffers of one type can be held at once).
template <class Element, int Tag = 0>
Element* scratch(size_t count) {
  thread_local std::unique_ptr<Element[]> buffer;
  thread_local size_t capacity = 0;
  if (capacity < count) {
    buffer.reset(new Element[count]);
    capacity = count;
  }
  return buffer.get();
}

/// The W8A16 product on the x86 builds (int8 codes against x rounded to int16 per row); false on
/// the portable build or when x holds a NaN or an infinity, where the float kernel runs instead.
bool w8a16_product(InstructionSet isa, const float* x, const uint8_t* codes, const float* scales, const float* bias,
                   float* y, size_t rows, size_t in, size_t out, size_t group) {
#if defined(__x86_64__)
  if (isa == InstructionSet::portable) return false;
  int16_t* rounded = scratch<int16_t>(rows * in);
  float* row_scales = scratch<float, 1>(rows);
  bool finite = isa == InstructionSet::avx512 ? avx512::quantized_linear_round_rows(x, rounded, row_scales, rows, in)
                                              : avx2::quantized_linear_round_rows(x, rounded, row_scales, rows, in);
  if (!finite) return false;
  const int8_t* signed_codes = reinterpret_cast<const int8_t*>(codes);
  parallel_for(out, row_grain(in * rows), [&](size_t begin, size_t end) {
    if (isa == InstructionSet::avx512) {
      avx512::quantized_linear_rows_w8a16(rounded, row_scales, signed_codes, scales, bias, y, rows, in, out, group, begin, end);
    } else {
      avx2::quantized_linear_rows_w8a16(rounded, row_scales, signed_codes, scales, bias, y, rows, in, out, group, begin, end);
    }
  });
  return true;
#else
  (void)isa, (void)x, (void)codes, (void)scales, (void)bias, (void)y, (void)rows, (void)in, (void)out, (void)group;
  return false;
#endif
}

/// Inputs: x [N, in] float32, codes (int8 [out, in], uint8 [out, in/2], bfloat16 or float32 [out,
/// in]), scales [out, in/group] ([out, 0] for the float formats), then mins [out, in/group] (4-bit)
/// and optionally the bias [out]. Output: y [N, out].
class QuantizedLinear : public mx::Primitive {
 public:
  QuantizedLinear(mx::Stream stream, int bits, int group_size, bool bias, int instruction_set)
      : mx::Primitive(stream), bits_(bits), group_size_(group_size), bias_(bias), instruction_set_(instruction_set) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override {
    dispatch(stream(), inputs, outputs, [bits = bits_, group = size_t(group_size_), has_bias = bias_,
                                         requested = instruction_set_](auto& in, auto& out) {
      bool four_bit = bits == 4;
      size_t rows = in[0].shape(0), width = in[0].shape(1), outputs_count = in[2].shape(0);
      const float* x = in[0].template data<float>();
      const uint8_t* codes = in[1].template data<uint8_t>();
      const float* scales = in[2].template data<float>();
      const float* mins = four_bit ? in[3].template data<float>() : nullptr;
      const float* bias = has_bias ? in[four_bit ? 4 : 3].template data<float>() : nullptr;
      float* y = out[0].template data<float>();
      InstructionSet isa = chosen_instruction_set(requested);
      if (bits == 8 && w8a16_product(isa, x, codes, scales, bias, y, rows, width, outputs_count, group)) return;
      if (four_bit) {
        float* permuted = scratch<float>(rows * width);
        permute_input(isa, x, permuted, rows * width);
        x = permuted;
      }
      parallel_for(outputs_count, row_grain(width * rows), [&](size_t begin, size_t end) {
        rows_kernel(isa, x, codes, scales, mins, bias, y, rows, width, outputs_count, group, bits, begin, end);
      });
    });
  }
  void eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) override { no_gpu(name()); }

  std::vector<mx::array> vjp(const std::vector<mx::array>&, const std::vector<mx::array>&, const std::vector<int>&,
                             const std::vector<mx::array>&) override {
    throw std::invalid_argument(not_differentiable());
  }
  std::vector<mx::array> jvp(const std::vector<mx::array>&, const std::vector<mx::array>&,
                             const std::vector<int>&) override {
    throw std::invalid_argument(not_differentiable());
  }
  const char* name() const override { return "TemperQuantizedLinear"; }
  bool is_equivalent(const mx::Primitive& other) const override {
    auto& o = static_cast<const QuantizedLinear&>(other);
    return bits_ == o.bits_ && group_size_ == o.group_size_ && bias_ == o.bias_ && instruction_set_ == o.instruction_set_;
  }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    return {{inputs[0].shape(0), inputs[2].shape(0)}};
  }

 private:
  static std::string not_differentiable() {
    return "[TemperQuantizedLinear] is not differentiable: weight-only quantized products are for inference; "
           "differentiate through the dequantized weight instead";
  }
  int bits_, group_size_;
  bool bias_;
  int instruction_set_;
};

}  // namespace

mx::array quantized_linear(const mx::array& x, const mx::array& codes, const mx::array& scales,
                           const std::optional<mx::array>& mins, const std::optional<mx::array>& bias, int bits,
                           int group_size, int instruction_set) {
  auto s = cpu_stream();
  const std::string where = "[temper::kernels::quantized_linear] ";
  if (bits != 8 && bits != 4 && bits != 16 && bits != 32) {
    throw std::invalid_argument(where + "bits must be 8, 4, 16 (bfloat16) or 32 (float32), got " + std::to_string(bits));
  }
  bool scaled = bits <= 8;
  if (group_size <= 0 || group_size % 64 != 0) {
    throw std::invalid_argument(where + "group_size must be a multiple of 64, got " + std::to_string(group_size));
  }
  if (x.ndim() != 2 || x.dtype() != mx::float32) throw std::invalid_argument(where + "expects a float32 x [N, in]");
  int rows = x.shape(0), in = x.shape(1);
  if (in % group_size != 0) {
    throw std::invalid_argument(where + "x's width " + std::to_string(in) + " is not a multiple of the group size " +
                                std::to_string(group_size));
  }
  if (scales.ndim() != 2 || scales.dtype() != mx::float32 || scales.shape(1) != (scaled ? in / group_size : 0)) {
    throw std::invalid_argument(where + (scaled ? "expects float32 scales [out, in / group_size] for x's width " +
                                                      std::to_string(in)
                                                : std::string("float weights take empty float32 scales [out, 0]")));
  }
  int out = scales.shape(0);
  mx::Dtype code_type = bits == 8 ? mx::int8 : bits == 4 ? mx::uint8 : bits == 16 ? mx::bfloat16 : mx::float32;
  mx::Shape code_shape{out, bits == 4 ? in / 2 : in};
  if (codes.dtype() != code_type || codes.shape() != code_shape) {
    const char* expected = bits == 8    ? "expects int8 codes [out, in]"
                           : bits == 4  ? "expects uint8 codes [out, in / 2]"
                           : bits == 16 ? "expects bfloat16 weights [out, in]"
                                        : "expects float32 weights [out, in]";
    throw std::invalid_argument(where + expected + " matching the scales and x");
  }
  if (bits == 4 && (!mins || mins->dtype() != mx::float32 || mins->shape() != scales.shape())) {
    throw std::invalid_argument(where + "4-bit codes need float32 mins shaped like the scales");
  }
  if (bits != 4 && mins) throw std::invalid_argument(where + "only 4-bit codes take mins");
  if (bias && bias->shape() != mx::Shape{out}) throw std::invalid_argument(where + "bias must be [out]");
  std::vector<mx::array> inputs{mx::contiguous(x, false, s), mx::contiguous(codes, false, s),
                                mx::contiguous(scales, false, s)};
  if (mins) inputs.push_back(mx::contiguous(*mins, false, s));
  if (bias) inputs.push_back(mx::contiguous(mx::astype(*bias, mx::float32, s), false, s));
  return mx::array({rows, out}, mx::float32,
                   std::make_shared<QuantizedLinear>(s, bits, group_size, bias.has_value(), instruction_set), inputs);
}

}  // namespace temper::kernels
