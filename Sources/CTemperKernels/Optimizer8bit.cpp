// Blockwise 8-bit AdamW (bitsandbytes' 8-bit optimizers, Dettmers et al. 2022, "8-bit Optimizers
// via Block-wise Quantization"): both moments live as uint8 codes into a 256-entry codebook with
// one float32 absmax per block. A step dequantizes a block, takes AdamW's float32 step (the same
// arithmetic as adamw_update) with the unquantized new moments, and stores each new moment as the
// code nearest to value / (new block absmax). Not differentiated. With AVX2 (and unless
// TEMPER_KERNEL_ISA=portable) blocks run 8 lanes at a time; both paths round alike, bit for bit.
#include <array>
#include <limits>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "Common.h"
#include "TemperKernels.h"

// No fused multiply-adds: the step must round exactly as the composition of MLX ops that the
// Swift fallback runs, so that both pick the same codes.
#pragma STDC FP_CONTRACT OFF

namespace temper::kernels {

namespace {

/// A sorted 256-entry codebook and the midpoints between neighbouring entries.
struct Codebook {
  std::array<float, 256> values;
  /// midpoints[j] = (values[j] + values[j + 1]) / 2; midpoints[255] = +∞.
  std::array<float, 256> midpoints;
  /// The midpoints that halving step L = 1…6 of the search can compare against (the AVX2 path
  /// picks them with register permutes): levels[L − 1][j] = midpoints[j·2h + h − 1], h = 256 >> L.
  std::array<std::array<float, 32>, 6> levels{};

  explicit Codebook(const std::vector<float>& map) {
    if (map.size() != 256) throw std::invalid_argument("[temper::kernels::adamw_8bit_update] a codebook has 256 entries");
    for (size_t j = 0; j < 256; j++) {
      if (j > 0 && !(map[j - 1] <= map[j])) {
        throw std::invalid_argument("[temper::kernels::adamw_8bit_update] a codebook must be sorted ascending");
      }
      values[j] = map[j];
    }
    for (size_t j = 0; j < 255; j++) midpoints[j] = (values[j] + values[j + 1]) * 0.5f;
    midpoints[255] = std::numeric_limits<float>::infinity();
    for (size_t level = 1; level <= 6; level++) {
      size_t half = 256 >> level;
      for (size_t j = 0; j < (size_t(1) << (level - 1)); j++) levels[level - 1][j] = midpoints[j * 2 * half + half - 1];
    }
  }

  /// The code of the entry nearest x (ties to the lower one): the number of midpoints below x,
  /// found by binary search (eight halving steps; NaN gets 0).
  uint8_t code(float x) const {
    uint32_t index = 0;
    for (uint32_t half = 128; half > 0; half >>= 1) index += midpoints[index + half - 1] < x ? half : 0;
    return static_cast<uint8_t>(index);
  }

  /// codes[i] = code(x[i] · inverse_scale).
  void quantize(const float* x, float inverse_scale, uint8_t* codes, size_t n) const {
    for (size_t i = 0; i < n; i++) codes[i] = code(x[i] * inverse_scale);
  }
};

/// One tensor's pointers for a step.
struct Tensor8bit {
  const float* p;
  const float* g;
  const uint8_t* m_codes;
  const float* m_absmax;
  const uint8_t* v_codes;
  const float* v_absmax;
  float* p_out;
  uint8_t* m_codes_out;
  float* m_absmax_out;
  uint8_t* v_codes_out;
  float* v_absmax_out;
};

/// The scalars of a step, rounded once as adamw_update rounds them.
struct StepConstants {
  float decay, beta1, beta2, one_minus_beta1, one_minus_beta2, step_size, inverse_root_c2, eps;

  explicit StepConstants(const AdamWStep& s)
      : decay(1.0f - s.learning_rate * s.weight_decay),
        beta1(s.beta1),
        beta2(s.beta2),
        one_minus_beta1(1.0f - s.beta1),
        one_minus_beta2(1.0f - s.beta2),
        step_size(s.learning_rate / s.bias_correction1),
        inverse_root_c2(1.0f / std::sqrt(s.bias_correction2)),
        eps(s.eps) {}
};

/// Elements [begin, end) of the block at `start` (scale m_scale, v_scale): the new parameters,
/// and the new moments into m, v (indexed from the block's start) with their running absmax.
void step_elements(const Tensor8bit& t, const StepConstants& c, const Codebook& first, const Codebook& second,
                   size_t start, size_t begin, size_t end, float m_scale, float v_scale, float* m, float* v,
                   float& m_max, float& v_max) {
  for (size_t i = begin; i < end; i++) {
    size_t e = start + i;
    float g = t.g[e];
    float mi = c.beta1 * (first.values[t.m_codes[e]] * m_scale) + c.one_minus_beta1 * g;
    float vi = c.beta2 * (second.values[t.v_codes[e]] * v_scale) + c.one_minus_beta2 * (g * g);
    float denominator = std::sqrt(vi) * c.inverse_root_c2 + c.eps;
    t.p_out[e] = t.p[e] * c.decay - c.step_size * mi / denominator;
    m[i] = mi;
    v[i] = vi;
    m_max = std::max(m_max, std::fabs(mi));
    v_max = std::max(v_max, std::fabs(vi));
  }
}

#if defined(__x86_64__)
#define TEMPER_AVX2 __attribute__((target("avx2,fma")))

TEMPER_AVX2 inline float horizontal_max(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

/// table[j] per lane for j < 8·vectors (vectors 1, 2 or 4), by permutes and blends on j's bits.
TEMPER_AVX2 inline __m256 pick(const float* table, int vectors, __m256i j) {
  __m256 r0 = _mm256_permutevar8x32_ps(_mm256_loadu_ps(table), j);
  if (vectors == 1) return r0;
  __m256 bit3 = _mm256_castsi256_ps(_mm256_slli_epi32(j, 28));  // blendv reads the sign bit
  __m256 low = _mm256_blendv_ps(r0, _mm256_permutevar8x32_ps(_mm256_loadu_ps(table + 8), j), bit3);
  if (vectors == 2) return low;
  __m256 high = _mm256_blendv_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(table + 16), j),
                                 _mm256_permutevar8x32_ps(_mm256_loadu_ps(table + 24), j), bit3);
  return _mm256_blendv_ps(low, high, _mm256_castsi256_ps(_mm256_slli_epi32(j, 27)));
}

/// Codebook::quantize, 8 lanes at a time: the same halving steps over up to 32 vectors at once, the
/// first six comparing against midpoints picked from registers, the last two against gathered ones.
TEMPER_AVX2 void quantize_avx2(const Codebook& book, const float* x, float inverse_scale, uint8_t* codes, size_t n) {
  constexpr size_t kGroup = 32;
  __m256 scale = _mm256_set1_ps(inverse_scale);
  size_t vectors = n / 8;
  for (size_t first = 0; first < vectors; first += kGroup) {
    size_t count = std::min(kGroup, vectors - first);
    __m256 xs[kGroup];
    __m256i index[kGroup];
    for (size_t k = 0; k < count; k++) {
      xs[k] = _mm256_mul_ps(_mm256_loadu_ps(x + 8 * (first + k)), scale);
      index[k] = _mm256_setzero_si256();
    }
    for (int level = 1; level <= 8; level++) {
      int half = 256 >> level;
      __m256i step = _mm256_set1_epi32(half), offset = _mm256_set1_epi32(half - 1);
      int table_vectors = level <= 4 ? 1 : level == 5 ? 2 : 4;
      for (size_t k = 0; k < count; k++) {
        __m256 probe = level <= 6
                           ? pick(book.levels[level - 1].data(), table_vectors, _mm256_srli_epi32(index[k], 9 - level))
                           : _mm256_i32gather_ps(book.midpoints.data(), _mm256_add_epi32(index[k], offset), 4);
        __m256i below = _mm256_castps_si256(_mm256_cmp_ps(probe, xs[k], _CMP_LT_OQ));
        index[k] = _mm256_add_epi32(index[k], _mm256_and_si256(below, step));
      }
    }
    for (size_t k = 0; k < count; k++) {
      __m256i words = _mm256_packus_epi32(index[k], index[k]);  // per 128-bit half: 4 codes, twice
      __m256i bytes = _mm256_packus_epi16(words, words);
      uint32_t low = static_cast<uint32_t>(_mm256_extract_epi32(bytes, 0));
      uint32_t high = static_cast<uint32_t>(_mm256_extract_epi32(bytes, 4));
      std::memcpy(codes + 8 * (first + k), &low, 4);
      std::memcpy(codes + 8 * (first + k) + 4, &high, 4);
    }
  }
  book.quantize(x + 8 * vectors, inverse_scale, codes + 8 * vectors, n - 8 * vectors);
}

/// step_elements over [0, n), 8 lanes at a time; rounds every lane as the scalar code does.
TEMPER_AVX2 void step_elements_avx2(const Tensor8bit& t, const StepConstants& c, const Codebook& first,
                                    const Codebook& second, size_t start, size_t n, float m_scale, float v_scale,
                                    float* m, float* v, float& m_max, float& v_max) {
  const __m256 beta1 = _mm256_set1_ps(c.beta1), beta2 = _mm256_set1_ps(c.beta2);
  const __m256 one_minus_beta1 = _mm256_set1_ps(c.one_minus_beta1), one_minus_beta2 = _mm256_set1_ps(c.one_minus_beta2);
  const __m256 decay = _mm256_set1_ps(c.decay), step_size = _mm256_set1_ps(c.step_size);
  const __m256 inverse_root_c2 = _mm256_set1_ps(c.inverse_root_c2), eps = _mm256_set1_ps(c.eps);
  const __m256 m_scales = _mm256_set1_ps(m_scale), v_scales = _mm256_set1_ps(v_scale);
  const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 m_maxes = _mm256_setzero_ps(), v_maxes = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    size_t e = start + i;
    __m256i m_code = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(t.m_codes + e)));
    __m256i v_code = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(t.v_codes + e)));
    __m256 g = _mm256_loadu_ps(t.g + e);
    __m256 m0 = _mm256_mul_ps(_mm256_i32gather_ps(first.values.data(), m_code, 4), m_scales);
    __m256 v0 = _mm256_mul_ps(_mm256_i32gather_ps(second.values.data(), v_code, 4), v_scales);
    __m256 mi = _mm256_add_ps(_mm256_mul_ps(beta1, m0), _mm256_mul_ps(one_minus_beta1, g));
    __m256 vi = _mm256_add_ps(_mm256_mul_ps(beta2, v0), _mm256_mul_ps(one_minus_beta2, _mm256_mul_ps(g, g)));
    __m256 denominator = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vi), inverse_root_c2), eps);
    __m256 p = _mm256_mul_ps(_mm256_loadu_ps(t.p + e), decay);
    _mm256_storeu_ps(t.p_out + e, _mm256_sub_ps(p, _mm256_div_ps(_mm256_mul_ps(step_size, mi), denominator)));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    m_maxes = _mm256_max_ps(m_maxes, _mm256_and_ps(mi, magnitude));
    v_maxes = _mm256_max_ps(v_maxes, _mm256_and_ps(vi, magnitude));
  }
  m_max = std::max(m_max, horizontal_max(m_maxes));
  v_max = std::max(v_max, horizontal_max(v_maxes));
  step_elements(t, c, first, second, start, i, n, m_scale, v_scale, m, v, m_max, v_max);
}
#endif

/// The step for elements [begin, end), whole blocks of `block` (the last may be short). Each
/// block's codes and absmax are read before they are written, so outputs may alias inputs.
void adamw_8bit_blocks(const Tensor8bit& t, const AdamWStep& s, const Codebook& first, const Codebook& second,
                       size_t block, size_t begin, size_t end) {
  const StepConstants c(s);
  std::vector<float> m(block), v(block);
#if defined(__x86_64__)
  const bool avx2 = kernel_instruction_set() != InstructionSet::portable;
#endif
  for (size_t start = begin; start < end; start += block) {
    size_t n = std::min(block, end - start);
    size_t b = start / block;
    const float m_scale = t.m_absmax[b], v_scale = t.v_absmax[b];
    float m_max = 0.0f, v_max = 0.0f;
#if defined(__x86_64__)
    if (avx2) {
      step_elements_avx2(t, c, first, second, start, n, m_scale, v_scale, m.data(), v.data(), m_max, v_max);
      t.m_absmax_out[b] = m_max;
      t.v_absmax_out[b] = v_max;
      quantize_avx2(first, m.data(), m_max > 0.0f ? 1.0f / m_max : 0.0f, t.m_codes_out + start, n);
      quantize_avx2(second, v.data(), v_max > 0.0f ? 1.0f / v_max : 0.0f, t.v_codes_out + start, n);
      continue;
    }
#endif
    step_elements(t, c, first, second, start, 0, n, m_scale, v_scale, m.data(), v.data(), m_max, v_max);
    t.m_absmax_out[b] = m_max;
    t.v_absmax_out[b] = v_max;
    first.quantize(m.data(), m_max > 0.0f ? 1.0f / m_max : 0.0f, t.m_codes_out + start, n);
    second.quantize(v.data(), v_max > 0.0f ? 1.0f / v_max : 0.0f, t.v_codes_out + start, n);
  }
}

/// Inputs: k parameters, k gradients (float32), k m codes (uint8), k m absmax (float32), k v codes,
/// k v absmax, each group in the same order. Outputs: k parameters, k m codes, k m absmax, k v
/// codes, k v absmax.
class AdamW8bitUpdate : public mx::Primitive {
 public:
  AdamW8bitUpdate(mx::Stream stream, AdamWOptions options, std::vector<float> weight_decays,
                  std::shared_ptr<const Codebook> first, std::shared_ptr<const Codebook> second, size_t block_size)
      : mx::Primitive(stream),
        options_(options),
        weight_decays_(std::move(weight_decays)),
        first_(std::move(first)),
        second_(std::move(second)),
        block_size_(block_size) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override {
    // In place when nothing else holds the old tensors, as AdamWUpdate does.
    release_sibling_inputs(inputs, outputs);
    size_t k = inputs.size() / 6;
    const size_t source_group[5] = {0, 2, 3, 4, 5};  // p, m codes, m absmax, v codes, v absmax
    for (size_t group = 0; group < 5; group++) {
      for (size_t j = 0; j < k; j++) {
        auto& in = inputs[source_group[group] * k + j];
        auto& out = outputs[group * k + j];
        if (in.is_donatable() && in.flags().row_contiguous && in.nbytes() == out.nbytes()) out.copy_shared_buffer(in);
      }
    }
    dispatch(stream(), inputs, outputs,
             [options = options_, decays = weight_decays_, first = first_, second = second_,
              block = block_size_](auto& in, auto& out) {
               size_t k = in.size() / 6;
               for (size_t j = 0; j < k; j++) {
                 AdamWStep step{options.learning_rate, options.beta1, options.beta2, options.eps, decays[j],
                                options.bias_correction1, options.bias_correction2};
                 Tensor8bit t{in[j].template data<float>(),
                              in[k + j].template data<float>(),
                              in[2 * k + j].template data<uint8_t>(),
                              in[3 * k + j].template data<float>(),
                              in[4 * k + j].template data<uint8_t>(),
                              in[5 * k + j].template data<float>(),
                              out[j].template data<float>(),
                              out[k + j].template data<uint8_t>(),
                              out[2 * k + j].template data<float>(),
                              out[3 * k + j].template data<uint8_t>(),
                              out[4 * k + j].template data<float>()};
                 parallel_for(in[j].size(), kElementGrain, [&](size_t b, size_t e) {
                   adamw_8bit_blocks(t, step, *first, *second, block, b, e);
                 }, block);
               }
             });
  }
  void eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) override { no_gpu(name()); }
  const char* name() const override { return "TemperAdamW8bit"; }

 private:
  AdamWOptions options_;
  std::vector<float> weight_decays_;
  std::shared_ptr<const Codebook> first_, second_;
  size_t block_size_;
};

}  // namespace

std::vector<mx::array> adamw_8bit_update(const std::vector<mx::array>& parameters,
                                         const std::vector<mx::array>& gradients,
                                         const std::vector<mx::array>& first_codes,
                                         const std::vector<mx::array>& first_absmax,
                                         const std::vector<mx::array>& second_codes,
                                         const std::vector<mx::array>& second_absmax,
                                         const std::vector<float>& weight_decays, AdamWOptions options,
                                         const std::vector<float>& first_map, const std::vector<float>& second_map,
                                         size_t block_size) {
  const std::string where = "[temper::kernels::adamw_8bit_update] ";
  size_t k = parameters.size();
  if (gradients.size() != k || first_codes.size() != k || first_absmax.size() != k || second_codes.size() != k ||
      second_absmax.size() != k || weight_decays.size() != k) {
    throw std::invalid_argument(where + "needs as many gradients, codes, absmax and decays as parameters");
  }
  if (block_size == 0 || block_size > (1u << 20)) throw std::invalid_argument(where + "block size must be in 1...2^20");
  auto first = std::make_shared<const Codebook>(first_map);
  auto second = std::make_shared<const Codebook>(second_map);
  if (k == 0) return {};
  auto s = cpu_stream();
  std::vector<mx::array> inputs;
  auto add = [&](const mx::array& a) {
    inputs.push_back(a.is_available() && a.flags().row_contiguous ? a : mx::contiguous(a, false, s));
  };
  auto check = [&](const mx::array& a, size_t j, mx::Dtype dtype, size_t size, const char* what) {
    if (a.dtype() != dtype || a.size() != size) {
      throw std::invalid_argument(where + what + " " + std::to_string(j) + " must have " + std::to_string(size) +
                                  " elements of the right type");
    }
  };
  std::vector<size_t> blocks(k);
  for (size_t j = 0; j < k; j++) {
    blocks[j] = (parameters[j].size() + block_size - 1) / block_size;
    check(parameters[j], j, mx::float32, parameters[j].size(), "parameter");
    check(gradients[j], j, mx::float32, parameters[j].size(), "gradient");
    if (gradients[j].shape() != parameters[j].shape()) {
      throw std::invalid_argument(where + "gradient " + std::to_string(j) + " must have its parameter's shape");
    }
    check(first_codes[j], j, mx::uint8, parameters[j].size(), "m codes");
    check(second_codes[j], j, mx::uint8, parameters[j].size(), "v codes");
    check(first_absmax[j], j, mx::float32, blocks[j], "m absmax");
    check(second_absmax[j], j, mx::float32, blocks[j], "v absmax");
  }
  for (const auto* group : {&parameters, &gradients, &first_codes, &first_absmax, &second_codes, &second_absmax}) {
    for (const auto& a : *group) add(a);
  }
  std::vector<mx::Shape> shapes;
  std::vector<mx::Dtype> types;
  auto outputs = [&](bool codes) {
    for (size_t j = 0; j < k; j++) {
      shapes.push_back(parameters[j].shape());
      types.push_back(codes ? mx::uint8 : mx::float32);
    }
  };
  auto absmax_outputs = [&] {
    for (size_t j = 0; j < k; j++) {
      shapes.push_back({static_cast<int>(blocks[j])});
      types.push_back(mx::float32);
    }
  };
  outputs(false);
  outputs(true);
  absmax_outputs();
  outputs(true);
  absmax_outputs();
  return mx::array::make_arrays(
      shapes, types, std::make_shared<AdamW8bitUpdate>(s, options, weight_decays, first, second, block_size), inputs);
}

}  // namespace temper::kernels
