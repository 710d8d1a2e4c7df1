// Fused linear cross-entropy: loss, per-token target log-probs and entropy from hidden states and
// the LM-head weight, in chunks of tokens and of vocabulary, so the [N, V] logits never exist whole.
// Rows whose target is the ignore index are skipped (they cost nothing). The logits of a chunk come
// from OpenBLAS's sgemm; the softmax work is vectorized and split across cores.
#include <vector>

#include "Common.h"
#include "TemperKernels.h"

extern "C" void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, const float* a,
                            int lda, const float* b, int ldb, float beta, float* c, int ldc);

namespace temper::kernels {

namespace {

constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

/// logits [count, width] = block [count, D] · weight[v0 ..< v0 + width]ᵀ, through OpenBLAS.
void chunk_logits(const float* block, size_t count, const float* weight, size_t v0, size_t width, size_t d,
                  float* logits) {
  cblas_sgemm(kRowMajor, kNoTrans, kTrans, count, width, d, 1.0f, block, d, weight + v0 * d, d, 0.0f, logits, width);
}

/// Positions of the rows that take part (target ≠ ignore index).
std::vector<int64_t> active_rows(const int32_t* targets, size_t n, int32_t ignore_index) {
  std::vector<int64_t> rows;
  for (size_t i = 0; i < n; i++) if (targets[i] != ignore_index) rows.push_back(static_cast<int64_t>(i));
  return rows;
}

/// Copies the listed rows of a [*, width] matrix into a dense block.
void gather_rows(const float* source, const std::vector<int64_t>& rows, size_t first, size_t count, size_t width,
                 float* block) {
  for (size_t i = 0; i < count; i++) std::memcpy(block + i * width, source + rows[first + i] * width, width * sizeof(float));
}

struct Shapes {
  size_t tokens, hidden, vocabulary;
};

Shapes shapes_of(const std::vector<mx::array>& inputs) {
  return {static_cast<size_t>(inputs[0].shape(0)), static_cast<size_t>(inputs[0].shape(1)),
          static_cast<size_t>(inputs[1].shape(0))};
}

/// Inputs: hidden [N, D], weight [V, D], targets [N] int32, token weights [N], lse [N], loss
/// cotangent [], log-prob cotangent [N]. Outputs: d hidden [N, D] and/or d weight [V, D].
class CrossEntropyBackward : public mx::Primitive {
 public:
  CrossEntropyBackward(mx::Stream stream, CrossEntropyOptions options, bool hidden_gradient, bool weight_gradient)
      : mx::Primitive(stream), options_(options), hidden_gradient_(hidden_gradient), weight_gradient_(weight_gradient) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override {
    dispatch(stream(), inputs, outputs, [options = options_, want_hidden = hidden_gradient_, want_weight = weight_gradient_](auto& in, auto& out) {
      auto [n, d, v] = shapes_of(in);
      const float* hidden = in[0].template data<float>();
      const float* weight = in[1].template data<float>();
      const int32_t* targets = in[2].template data<int32_t>();
      const float* token_weights = in[3].template data<float>();
      const float* lse = in[4].template data<float>();
      float loss_seed = in[5].template data<float>()[0];
      const float* logprob_seed = in[6].template data<float>();
      float* d_hidden = want_hidden ? out[0].template data<float>() : nullptr;
      float* d_weight = want_weight ? out[want_hidden ? 1 : 0].template data<float>() : nullptr;
      if (d_hidden) std::memset(d_hidden, 0, n * d * sizeof(float));
      if (d_weight) std::memset(d_weight, 0, v * d * sizeof(float));

      auto rows = active_rows(targets, n, options.ignore_index);
      size_t token_chunk = options.token_chunk, vocab_chunk = options.vocabulary_chunk;
      std::vector<float> block(token_chunk * d), block_gradient(token_chunk * d), logits(token_chunk * vocab_chunk);
      std::vector<int32_t> block_targets(token_chunk);
      std::vector<float> block_lse(token_chunk), coefficient(token_chunk);
      for (size_t first = 0; first < rows.size(); first += token_chunk) {
        size_t count = std::min(token_chunk, rows.size() - first);
        gather_rows(hidden, rows, first, count, d, block.data());
        for (size_t i = 0; i < count; i++) {
          int64_t r = rows[first + i];
          block_targets[i] = targets[r];
          block_lse[i] = lse[r];
          // d/d logprob_r of (−Σ w·logprob)·loss_seed + Σ logprob·logprob_seed.
          coefficient[i] = logprob_seed[r] - token_weights[r] * loss_seed;
        }
        std::fill(block_gradient.begin(), block_gradient.begin() + count * d, 0.0f);
        for (size_t v0 = 0; v0 < v; v0 += vocab_chunk) {
          size_t width = std::min(vocab_chunk, v - v0);
          chunk_logits(block.data(), count, weight, v0, width, d, logits.data());
          parallel_for(count, row_grain(width), [&](size_t b, size_t e) {
            TEMPER_DISPATCH(cross_entropy_gradient_rows, logits.data(), width, v0, block_targets.data(), block_lse.data(),
                            coefficient.data(), b, e);
          });
          if (d_hidden) {
            cblas_sgemm(kRowMajor, kNoTrans, kNoTrans, count, d, width, 1.0f, logits.data(), width, weight + v0 * d, d,
                        1.0f, block_gradient.data(), d);
          }
          if (d_weight) {
            cblas_sgemm(kRowMajor, kTrans, kNoTrans, width, d, count, 1.0f, logits.data(), width, block.data(), d, 1.0f,
                        d_weight + v0 * d, d);
          }
        }
        if (d_hidden) {
          for (size_t i = 0; i < count; i++) std::memcpy(d_hidden + rows[first + i] * d, block_gradient.data() + i * d, d * sizeof(float));
        }
      }
    });
  }
  void eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) override { no_gpu(name()); }
  const char* name() const override { return "TemperCrossEntropyBackward"; }

 private:
  CrossEntropyOptions options_;
  bool hidden_gradient_, weight_gradient_;
};

/// The forward with the loss sum's gradients (for a loss cotangent of 1) computed on the way, as
/// Liger-Kernel does when the loss is the last op: each chunk of `gradient_token_chunk` rows gets
/// its logits over the whole vocabulary at once, so the softmax is known before the chunk's logits
/// are turned into their gradient in place and multiplied back through the weight. The backward
/// then only scales, and the logits are computed once instead of twice.
void forward_with_gradients(const CrossEntropyOptions& options, const std::vector<int64_t>& rows, size_t n, size_t d,
                            size_t v, const float* hidden, const float* weight, const int32_t* targets,
                            const float* token_weights, float* logprob, float* lse, float* entropy, float* d_hidden,
                            float* d_weight, float* loss_out, float* weight_sum_out) {
  std::memset(d_hidden, 0, n * d * sizeof(float));
  if (d_weight) std::memset(d_weight, 0, v * d * sizeof(float));
  size_t chunk = options.gradient_token_chunk;
  std::vector<float> block(chunk * d), block_gradient(chunk * d), logits(chunk * v);
  std::vector<int32_t> block_targets(chunk);
  std::vector<float> running_max(chunk), running_sum(chunk), running_dot(chunk), target_logit(chunk);
  std::vector<float> block_lse(chunk), coefficient(chunk);
  double loss = 0, weight_total = 0;
  for (size_t first = 0; first < rows.size(); first += chunk) {
    size_t count = std::min(chunk, rows.size() - first);
    gather_rows(hidden, rows, first, count, d, block.data());
    for (size_t i = 0; i < count; i++) {
      block_targets[i] = targets[rows[first + i]];
      running_max[i] = -__builtin_inff();
      running_sum[i] = running_dot[i] = 0;
      target_logit[i] = -__builtin_inff();
    }
    chunk_logits(block.data(), count, weight, 0, v, d, logits.data());
    parallel_for(count, row_grain(v), [&](size_t b, size_t e) {
      TEMPER_DISPATCH(cross_entropy_fold_rows, logits.data(), v, 0, block_targets.data(), running_max.data(),
                      running_sum.data(), running_dot.data(), target_logit.data(), options.entropy, b, e);
    });
    for (size_t i = 0; i < count; i++) {
      int64_t r = rows[first + i];
      block_lse[i] = running_max[i] + std::log(running_sum[i]);
      lse[r] = block_lse[i];
      logprob[r] = target_logit[i] - block_lse[i];
      if (options.entropy) entropy[r] = block_lse[i] - running_dot[i] / running_sum[i];
      loss -= static_cast<double>(token_weights[r]) * logprob[r];
      weight_total += token_weights[r];
      coefficient[i] = -token_weights[r];
    }
    parallel_for(count, row_grain(v), [&](size_t b, size_t e) {
      TEMPER_DISPATCH(cross_entropy_gradient_rows, logits.data(), v, 0, block_targets.data(), block_lse.data(),
                      coefficient.data(), b, e);
    });
    cblas_sgemm(kRowMajor, kNoTrans, kNoTrans, count, d, v, 1.0f, logits.data(), v, weight, d, 0.0f,
                block_gradient.data(), d);
    for (size_t i = 0; i < count; i++) std::memcpy(d_hidden + rows[first + i] * d, block_gradient.data() + i * d, d * sizeof(float));
    if (d_weight) {
      cblas_sgemm(kRowMajor, kTrans, kNoTrans, v, d, count, 1.0f, logits.data(), v, block.data(), d, 1.0f, d_weight, d);
    }
  }
  *loss_out = static_cast<float>(loss);
  *weight_sum_out = static_cast<float>(weight_total);
}

/// Inputs: hidden [N, D], weight [V, D], targets [N] int32, token weights [N].
/// Outputs: loss sum [], weight sum [], target log-probs [N], logsumexp [N], entropy [N], then with
/// `gradient_in_forward` the loss sum's gradient for hidden [N, D] (and for weight [V, D]).
class CrossEntropyForward : public mx::Primitive {
 public:
  CrossEntropyForward(mx::Stream stream, CrossEntropyOptions options) : mx::Primitive(stream), options_(options) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override {
    dispatch(stream(), inputs, outputs, [options = options_](auto& in, auto& out) {
      auto [n, d, v] = shapes_of(in);
      const float* hidden = in[0].template data<float>();
      const float* weight = in[1].template data<float>();
      const int32_t* targets = in[2].template data<int32_t>();
      const float* token_weights = in[3].template data<float>();
      float* logprob = out[2].template data<float>();
      float* lse = out[3].template data<float>();
      float* entropy = out[4].template data<float>();
      std::fill(logprob, logprob + n, 0.0f);
      std::fill(lse, lse + n, 0.0f);
      std::fill(entropy, entropy + n, 0.0f);

      auto rows = active_rows(targets, n, options.ignore_index);
      if (options.gradient_in_forward) {
        float* d_hidden = out[5].template data<float>();
        float* d_weight = options.weight_gradient_in_forward ? out[6].template data<float>() : nullptr;
        forward_with_gradients(options, rows, n, d, v, hidden, weight, targets, token_weights, logprob, lse, entropy,
                               d_hidden, d_weight, out[0].template data<float>(), out[1].template data<float>());
        return;
      }
      size_t token_chunk = options.token_chunk, vocab_chunk = options.vocabulary_chunk;
      std::vector<float> block(token_chunk * d), logits(token_chunk * vocab_chunk);
      std::vector<int32_t> block_targets(token_chunk);
      std::vector<float> running_max(token_chunk), running_sum(token_chunk), running_dot(token_chunk), target_logit(token_chunk);
      double loss = 0, weight_total = 0;
      for (size_t first = 0; first < rows.size(); first += token_chunk) {
        size_t count = std::min(token_chunk, rows.size() - first);
        gather_rows(hidden, rows, first, count, d, block.data());
        for (size_t i = 0; i < count; i++) {
          block_targets[i] = targets[rows[first + i]];
          running_max[i] = -__builtin_inff();
          running_sum[i] = running_dot[i] = 0;
          target_logit[i] = -__builtin_inff();  // a target outside [0, V) gets log-prob −inf
        }
        for (size_t v0 = 0; v0 < v; v0 += vocab_chunk) {
          size_t width = std::min(vocab_chunk, v - v0);
          chunk_logits(block.data(), count, weight, v0, width, d, logits.data());
          parallel_for(count, row_grain(width), [&](size_t b, size_t e) {
            TEMPER_DISPATCH(cross_entropy_fold_rows, logits.data(), width, v0, block_targets.data(), running_max.data(),
                            running_sum.data(), running_dot.data(), target_logit.data(), options.entropy, b, e);
          });
        }
        for (size_t i = 0; i < count; i++) {
          int64_t r = rows[first + i];
          float row_lse = running_max[i] + std::log(running_sum[i]);
          lse[r] = row_lse;
          logprob[r] = target_logit[i] - row_lse;
          if (options.entropy) entropy[r] = row_lse - running_dot[i] / running_sum[i];
          loss -= static_cast<double>(token_weights[r]) * logprob[r];
          weight_total += token_weights[r];
        }
      }
      out[0].template data<float>()[0] = static_cast<float>(loss);
      out[1].template data<float>()[0] = static_cast<float>(weight_total);
    });
  }
  void eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) override { no_gpu(name()); }

  std::vector<mx::array> vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cotangents,
                             const std::vector<int>& argnums, const std::vector<mx::array>& outputs) override {
    bool want_hidden = false, want_weight = false;
    for (int arg : argnums) {
      if (arg == 0) want_hidden = true;
      else if (arg == 1) want_weight = true;
    }
    auto s = cpu_stream();
    auto n = primals[0].shape(0);
    auto loss_seed = cotangents.size() > 0 ? mx::astype(cotangents[0], mx::float32, s) : mx::zeros({}, mx::float32, s);
    if (options_.gradient_in_forward) {
      // The forward holds the gradients for a loss cotangent of 1 (the log-probs carry none here).
      bool weight_ready = options_.weight_gradient_in_forward;
      std::vector<mx::array> result;
      for (int arg : argnums) {
        if (arg == 0) {
          result.push_back(mx::multiply(outputs[5], loss_seed, s));
        } else if (arg == 1 && weight_ready) {
          result.push_back(mx::multiply(outputs[6], loss_seed, s));
        } else if (arg == 1) {
          auto no_logprob_seed = mx::zeros({n}, mx::float32, s);
          result.push_back(mx::array::make_arrays(
              {primals[1].shape()}, {mx::float32}, std::make_shared<CrossEntropyBackward>(s, options_, false, true),
              {primals[0], primals[1], primals[2], primals[3], outputs[3], loss_seed, no_logprob_seed})[0]);
        } else {
          result.push_back(mx::zeros_like(primals[arg], s));
        }
      }
      return result;
    }
    auto logprob_seed = cotangents.size() > 2 ? mx::contiguous(mx::broadcast_to(mx::astype(cotangents[2], mx::float32, s), {n}, s), false, s)
                                              : mx::zeros({n}, mx::float32, s);
    std::vector<mx::Shape> shapes;
    std::vector<mx::Dtype> types;
    if (want_hidden) { shapes.push_back(primals[0].shape()); types.push_back(mx::float32); }
    if (want_weight) { shapes.push_back(primals[1].shape()); types.push_back(mx::float32); }
    std::vector<mx::array> grads;
    if (!shapes.empty()) {
      grads = mx::array::make_arrays(shapes, types,
                                     std::make_shared<CrossEntropyBackward>(s, options_, want_hidden, want_weight),
                                     {primals[0], primals[1], primals[2], primals[3], outputs[3], loss_seed, logprob_seed});
    }
    std::vector<mx::array> result;
    size_t next = 0;
    for (int arg : argnums) {
      if (arg == 0 || arg == 1) {
        result.push_back(grads[next++]);
      } else {
        result.push_back(mx::zeros_like(primals[arg], s));  // targets and token weights: no gradient
      }
    }
    return result;
  }
  const char* name() const override { return "TemperCrossEntropy"; }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    mx::Shape row{inputs[0].shape(0)};
    std::vector<mx::Shape> shapes{{}, {}, row, row, row};
    if (options_.gradient_in_forward) shapes.push_back(inputs[0].shape());
    if (options_.weight_gradient_in_forward) shapes.push_back(inputs[1].shape());
    return shapes;
  }

 private:
  CrossEntropyOptions options_;
};

}  // namespace

std::vector<mx::array> linear_cross_entropy(const mx::array& hidden, const mx::array& weight, const mx::array& targets,
                                            const std::optional<mx::array>& token_weights, CrossEntropyOptions options) {
  auto s = cpu_stream();
  if (hidden.ndim() != 2 || weight.ndim() != 2 || hidden.shape(1) != weight.shape(1)) {
    throw std::invalid_argument("[temper::kernels::linear_cross_entropy] hidden must be [N, D] and weight [V, D]");
  }
  if (targets.ndim() != 1 || targets.shape(0) != hidden.shape(0)) {
    throw std::invalid_argument("[temper::kernels::linear_cross_entropy] targets must be [N] for hidden [N, D]");
  }
  if (hidden.dtype() != mx::float32 || weight.dtype() != mx::float32) {
    throw std::invalid_argument("[temper::kernels::linear_cross_entropy] expects float32 hidden states and weight");
  }
  options.token_chunk = std::max<size_t>(1, options.token_chunk);
  options.vocabulary_chunk = std::max<size_t>(1, options.vocabulary_chunk);
  mx::Shape row{hidden.shape(0)};
  auto w = token_weights ? mx::contiguous(mx::broadcast_to(mx::astype(*token_weights, mx::float32, s), row, s), false, s)
                         : mx::ones(row, mx::float32, s);
  std::vector<mx::array> inputs{mx::contiguous(hidden, false, s), mx::contiguous(weight, false, s),
                                mx::contiguous(mx::astype(targets, mx::int32, s), false, s), w};
  options.gradient_token_chunk = std::max<size_t>(1, options.gradient_token_chunk);
  options.weight_gradient_in_forward = options.weight_gradient_in_forward && options.gradient_in_forward;
  std::vector<mx::Shape> shapes{{}, {}, row, row, row};
  if (options.gradient_in_forward) shapes.push_back(hidden.shape());
  if (options.weight_gradient_in_forward) shapes.push_back(weight.shape());
  return mx::array::make_arrays(shapes, std::vector<mx::Dtype>(shapes.size(), mx::float32),
                                std::make_shared<CrossEntropyForward>(s, options), inputs);
}

}  // namespace temper::kernels
