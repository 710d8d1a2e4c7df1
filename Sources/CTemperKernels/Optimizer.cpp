// A fused AdamW update over many parameter tensors at once, and NF4 / int8 block dequantization
// for QLoRA's frozen base weights. Neither is differentiated.
#include "Common.h"
#include "TemperKernels.h"

namespace temper::kernels {

namespace {

/// Inputs: k parameters, k gradients, k first moments, k second moments (float32, each group in
/// the same order). Outputs: k parameters, k first moments, k second moments.
class AdamWUpdate : public mx::Primitive {
 public:
  AdamWUpdate(mx::Stream stream, AdamWOptions options, std::vector<float> weight_decays)
      : mx::Primitive(stream), options_(options), weight_decays_(std::move(weight_decays)) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override {
    // Update in place when nothing else holds the old parameters and moments (the usual case in a
    // training step): the kernel reads element i of each input before writing element i.
    release_sibling_inputs(inputs, outputs);
    size_t k = inputs.size() / 4;
    const size_t source_group[3] = {0, 2, 3};  // outputs p, m, v come from inputs p, m, v
    for (size_t group = 0; group < 3; group++) {
      for (size_t j = 0; j < k; j++) {
        auto& in = inputs[source_group[group] * k + j];
        auto& out = outputs[group * k + j];
        if (in.is_donatable() && in.flags().row_contiguous && in.nbytes() == out.nbytes()) out.copy_shared_buffer(in);
      }
    }
    dispatch(stream(), inputs, outputs, [options = options_, decays = weight_decays_](auto& in, auto& out) {
      size_t k = in.size() / 4;
      for (size_t j = 0; j < k; j++) {
        AdamWStep step{options.learning_rate, options.beta1, options.beta2, options.eps, decays[j],
                       options.bias_correction1, options.bias_correction2};
        const float* p = in[j].template data<float>();
        const float* g = in[k + j].template data<float>();
        const float* m = in[2 * k + j].template data<float>();
        const float* v = in[3 * k + j].template data<float>();
        float* p_out = out[j].template data<float>();
        float* m_out = out[k + j].template data<float>();
        float* v_out = out[2 * k + j].template data<float>();
        parallel_for(in[j].size(), kElementGrain, [&](size_t b, size_t e) {
          TEMPER_DISPATCH(adamw_update, p, g, m, v, p_out, m_out, v_out, step, b, e);
        }, 8);
      }
    });
  }
  void eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) override { no_gpu(name()); }
  const char* name() const override { return "TemperAdamW"; }

 private:
  AdamWOptions options_;
  std::vector<float> weight_decays_;
};

enum class BlockFormat { nf4, int8 };

/// Inputs: packed codes and per-block absmax. Output: float32 values of the given shape.
class BlockDequantize : public mx::UnaryPrimitive {
 public:
  BlockDequantize(mx::Stream stream, BlockFormat format, size_t block_size)
      : mx::UnaryPrimitive(stream), format_(format), block_size_(block_size) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override {
    std::vector<mx::array> outputs{out};
    dispatch(stream(), inputs, outputs, [format = format_, block = block_size_](auto& in, auto& out) {
      const float* absmax = in[1].template data<float>();
      float* values = out[0].template data<float>();
      parallel_for(out[0].size(), kElementGrain, [&](size_t b, size_t e) {
        if (format == BlockFormat::nf4) {
          TEMPER_DISPATCH(nf4_dequantize, in[0].template data<uint8_t>(), absmax, values, block, b, e);
        } else {
          TEMPER_DISPATCH(int8_dequantize, in[0].template data<int8_t>(), absmax, values, block, b, e);
        }
      }, 2 * block);
    });
  }
  void eval_gpu(const std::vector<mx::array>&, mx::array&) override { no_gpu(name()); }
  const char* name() const override { return "TemperBlockDequantize"; }

 private:
  BlockFormat format_;
  size_t block_size_;
};

mx::array block_dequantize(BlockFormat format, const mx::array& codes, const mx::array& absmax, const mx::Shape& shape,
                           size_t block_size, mx::Dtype code_type, const char* name) {
  size_t count = 1;
  for (int d : shape) count *= static_cast<size_t>(d);
  size_t codes_needed = format == BlockFormat::nf4 ? (count + 1) / 2 : count;
  if (codes.dtype() != code_type || codes.size() != codes_needed) {
    throw std::invalid_argument(std::string("[temper::kernels::") + name + "] expected " + std::to_string(codes_needed) +
                                " codes of the right type for " + std::to_string(count) + " values");
  }
  if (block_size == 0 || absmax.size() != (count + block_size - 1) / block_size) {
    throw std::invalid_argument(std::string("[temper::kernels::") + name + "] expected one absmax per block of " +
                                std::to_string(block_size));
  }
  auto s = cpu_stream();
  return mx::array(shape, mx::float32, std::make_shared<BlockDequantize>(s, format, block_size),
                   {mx::contiguous(codes, false, s), mx::contiguous(mx::astype(absmax, mx::float32, s), false, s)});
}

}  // namespace

std::vector<mx::array> adamw_update(const std::vector<mx::array>& parameters, const std::vector<mx::array>& gradients,
                                    const std::vector<mx::array>& first_moments,
                                    const std::vector<mx::array>& second_moments,
                                    const std::vector<float>& weight_decays, AdamWOptions options) {
  size_t k = parameters.size();
  if (gradients.size() != k || first_moments.size() != k || second_moments.size() != k || weight_decays.size() != k) {
    throw std::invalid_argument("[temper::kernels::adamw_update] needs as many gradients, moments and decays as parameters");
  }
  auto s = cpu_stream();
  std::vector<mx::array> inputs;
  std::vector<mx::Shape> shapes;
  for (const auto* group : {&parameters, &gradients, &first_moments, &second_moments}) {
    for (size_t j = 0; j < k; j++) {
      const auto& a = (*group)[j];
      if (a.shape() != parameters[j].shape() || a.dtype() != mx::float32) {
        throw std::invalid_argument("[temper::kernels::adamw_update] tensor " + std::to_string(j) +
                                    " must be float32 with its parameter's shape");
      }
      inputs.push_back(a.is_available() && a.flags().row_contiguous ? a : mx::contiguous(a, false, s));
    }
  }
  for (int copy = 0; copy < 3; copy++) for (size_t j = 0; j < k; j++) shapes.push_back(parameters[j].shape());
  std::vector<mx::Dtype> types(shapes.size(), mx::float32);
  return mx::array::make_arrays(shapes, types, std::make_shared<AdamWUpdate>(s, options, weight_decays), inputs);
}

mx::array nf4_dequantize(const mx::array& packed, const mx::array& absmax, const mx::Shape& shape, size_t block_size) {
  return block_dequantize(BlockFormat::nf4, packed, absmax, shape, block_size, mx::uint8, "nf4_dequantize");
}

mx::array int8_dequantize(const mx::array& codes, const mx::array& absmax, const mx::Shape& shape, size_t block_size) {
  return block_dequantize(BlockFormat::int8, codes, absmax, shape, block_size, mx::int8, "int8_dequantize");
}

}  // namespace temper::kernels
