// Tiled ("flash") attention for the CPU: softmax(q·kᵀ·scale + masks)·v computed block by block with
// an online softmax, so memory stays O(T·d) (Dao et al. 2022; backward as in FlashAttention-2).
// Grouped-query heads, causal masking aligned to the end (queries are the last Tq of Tk positions,
// as in decoding against a KV cache), segment ids for packed sequences (a token attends only within
// its own sample; a negative id is padding and attends to nothing), and an optional additive mask.
// Block products go to OpenBLAS's sgemm, sized to stay below its multi-threading threshold so the
// kernel's own threads (one per (batch, head) task) do not contend with OpenBLAS's.
#include <algorithm>

#include "Common.h"
#include "TemperKernels.h"

extern "C" void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, const float* a,
                            int lda, const float* b, int ldb, float beta, float* c, int ldc);

namespace temper::kernels {

namespace {

constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
constexpr float kNegativeInfinity = -__builtin_inff();

struct Geometry {
  size_t batch, heads, kv_heads, queries, keys, head_dim;
  size_t query_block, key_block;
  float scale;
  bool causal, segments, mask;

  size_t group() const { return heads / kv_heads; }
  /// Causal masking aligns the queries with the last positions of the keys.
  size_t causal_offset() const { return keys - queries; }
};

Geometry geometry_of(const mx::array& q, const mx::array& k, const AttentionOptions& options) {
  Geometry g{static_cast<size_t>(q.shape(0)), static_cast<size_t>(q.shape(1)), static_cast<size_t>(k.shape(1)),
             static_cast<size_t>(q.shape(2)), static_cast<size_t>(k.shape(2)), static_cast<size_t>(q.shape(3)),
             64, 64, options.scale, options.causal, options.segments, options.mask};
  // Keep every block product at or below 64·64·64 multiply-adds: OpenBLAS runs those on the
  // calling thread.
  g.key_block = std::max<size_t>(8, std::min<size_t>(64, 4096 / std::max<size_t>(g.head_dim, 1)));
  return g;
}

/// Fills the masked entries of a score block with −inf and adds the additive mask.
void apply_masks(const Geometry& g, float* scores, size_t rows, size_t cols, size_t b, size_t h, size_t q0, size_t k0,
                 const int32_t* query_segments, const int32_t* key_segments, const float* mask) {
  for (size_t r = 0; r < rows; r++) {
    float* row = scores + r * cols;
    size_t query = q0 + r;
    if (g.causal) {
      size_t last = query + g.causal_offset();  // the last key this query may see
      for (size_t c = 0; c < cols; c++) if (k0 + c > last) row[c] = kNegativeInfinity;
    }
    if (g.segments) {
      int32_t segment = query_segments[b * g.queries + query];
      const int32_t* keys = key_segments + b * g.keys + k0;
      for (size_t c = 0; c < cols; c++) if (segment < 0 || keys[c] != segment) row[c] = kNegativeInfinity;
    }
    if (g.mask) {
      const float* m = mask + ((b * g.heads + h) * g.queries + query) * g.keys + k0;
      for (size_t c = 0; c < cols; c++) row[c] += m[c];
    }
  }
}

/// Whether a key block lies entirely after every query of a query block (causal skip).
bool causally_empty(const Geometry& g, size_t q0, size_t rows, size_t k0) {
  return g.causal && k0 > q0 + rows - 1 + g.causal_offset();
}

struct Buffers {
  const float *q, *k, *v;
  const int32_t *query_segments, *key_segments;
  const float* mask;
};

Buffers buffers_of(const std::vector<mx::array>& in, const Geometry& g) {
  size_t next = 3;
  Buffers b{in[0].data<float>(), in[1].data<float>(), in[2].data<float>(), nullptr, nullptr, nullptr};
  if (g.segments) {
    b.query_segments = in[next++].data<int32_t>();
    b.key_segments = in[next++].data<int32_t>();
  }
  if (g.mask) b.mask = in[next++].data<float>();
  return b;
}

void forward(const Geometry& g, const Buffers& in, float* out, float* lse) {
  size_t query_blocks = (g.queries + g.query_block - 1) / g.query_block;
  size_t tasks = g.batch * g.heads * query_blocks;
  parallel_for(tasks, 1, [&](size_t begin, size_t end) {
    std::vector<float> scores(g.query_block * g.key_block), acc(g.query_block * g.head_dim);
    std::vector<float> running_max(g.query_block), running_sum(g.query_block);
    for (size_t task = begin; task < end; task++) {
      size_t qb = task % query_blocks, bh = task / query_blocks;
      size_t b = bh / g.heads, h = bh % g.heads, kvh = h / g.group();
      size_t q0 = qb * g.query_block, rows = std::min(g.query_block, g.queries - q0);
      const float* q = in.q + (bh * g.queries + q0) * g.head_dim;
      const float* k = in.k + (b * g.kv_heads + kvh) * g.keys * g.head_dim;
      const float* v = in.v + (b * g.kv_heads + kvh) * g.keys * g.head_dim;
      std::fill(acc.begin(), acc.begin() + rows * g.head_dim, 0.0f);
      std::fill(running_max.begin(), running_max.end(), kNegativeInfinity);
      std::fill(running_sum.begin(), running_sum.end(), 0.0f);
      for (size_t k0 = 0; k0 < g.keys; k0 += g.key_block) {
        if (causally_empty(g, q0, rows, k0)) break;
        size_t cols = std::min(g.key_block, g.keys - k0);
        cblas_sgemm(kRowMajor, kNoTrans, kTrans, rows, cols, g.head_dim, g.scale, q, g.head_dim, k + k0 * g.head_dim,
                    g.head_dim, 0.0f, scores.data(), cols);
        apply_masks(g, scores.data(), rows, cols, b, h, q0, k0, in.query_segments, in.key_segments, in.mask);
        for (size_t r = 0; r < rows; r++) {
          float* row = scores.data() + r * cols;
          float block_max = TEMPER_DISPATCH(row_max, row, cols);
          float m = std::max(running_max[r], block_max);
          if (m == kNegativeInfinity) {  // nothing visible yet: this block adds nothing
            std::fill(row, row + cols, 0.0f);
            continue;
          }
          float rescale = running_max[r] == kNegativeInfinity ? 0.0f : std::exp(running_max[r] - m);
          float sum = TEMPER_DISPATCH(row_exp_sum, row, m, row, cols);
          running_sum[r] = running_sum[r] * rescale + sum;
          running_max[r] = m;
          if (rescale != 1.0f) TEMPER_DISPATCH(row_scale, acc.data() + r * g.head_dim, rescale, g.head_dim);
        }
        cblas_sgemm(kRowMajor, kNoTrans, kNoTrans, rows, g.head_dim, cols, 1.0f, scores.data(), cols,
                    v + k0 * g.head_dim, g.head_dim, 1.0f, acc.data(), g.head_dim);
      }
      for (size_t r = 0; r < rows; r++) {
        float* o = out + (bh * g.queries + q0 + r) * g.head_dim;
        float l = running_sum[r];
        // A query that sees no key (fully masked) gets zeros and lse −inf.
        float inverse = l > 0 ? 1.0f / l : 0.0f;
        for (size_t d = 0; d < g.head_dim; d++) o[d] = acc[r * g.head_dim + d] * inverse;
        lse[bh * g.queries + q0 + r] = l > 0 ? running_max[r] + std::log(l) : kNegativeInfinity;
      }
    }
  });
}

void backward(const Geometry& g, const Buffers& in, const float* out, const float* lse, const float* d_out, float* dq,
              float* dk, float* dv) {
  std::memset(dq, 0, g.batch * g.heads * g.queries * g.head_dim * sizeof(float));
  std::memset(dk, 0, g.batch * g.kv_heads * g.keys * g.head_dim * sizeof(float));
  std::memset(dv, 0, g.batch * g.kv_heads * g.keys * g.head_dim * sizeof(float));
  // One task per (batch, kv head): it owns dk, dv of that head and dq of the query heads it serves.
  parallel_for(g.batch * g.kv_heads, 1, [&](size_t begin, size_t end) {
    std::vector<float> p(g.query_block * g.key_block), dp(g.query_block * g.key_block), delta(g.query_block);
    for (size_t task = begin; task < end; task++) {
      size_t b = task / g.kv_heads, kvh = task % g.kv_heads;
      const float* k = in.k + task * g.keys * g.head_dim;
      const float* v = in.v + task * g.keys * g.head_dim;
      float* dk_head = dk + task * g.keys * g.head_dim;
      float* dv_head = dv + task * g.keys * g.head_dim;
      for (size_t h = kvh * g.group(); h < (kvh + 1) * g.group(); h++) {
        size_t bh = b * g.heads + h;
        for (size_t q0 = 0; q0 < g.queries; q0 += g.query_block) {
          size_t rows = std::min(g.query_block, g.queries - q0);
          size_t offset = (bh * g.queries + q0) * g.head_dim;
          const float* q = in.q + offset;
          const float* o = out + offset;
          const float* d_o = d_out + offset;
          float* d_q = dq + offset;
          const float* row_lse = lse + bh * g.queries + q0;
          for (size_t r = 0; r < rows; r++) delta[r] = TEMPER_DISPATCH(row_dot, d_o + r * g.head_dim, o + r * g.head_dim, g.head_dim);
          for (size_t k0 = 0; k0 < g.keys; k0 += g.key_block) {
            if (causally_empty(g, q0, rows, k0)) break;
            size_t cols = std::min(g.key_block, g.keys - k0);
            cblas_sgemm(kRowMajor, kNoTrans, kTrans, rows, cols, g.head_dim, g.scale, q, g.head_dim,
                        k + k0 * g.head_dim, g.head_dim, 0.0f, p.data(), cols);
            apply_masks(g, p.data(), rows, cols, b, h, q0, k0, in.query_segments, in.key_segments, in.mask);
            for (size_t r = 0; r < rows; r++) {
              float* row = p.data() + r * cols;
              if (row_lse[r] == kNegativeInfinity) {
                std::fill(row, row + cols, 0.0f);
              } else {
                TEMPER_DISPATCH(row_exp_sum, row, row_lse[r], row, cols);  // P = exp(S − lse)
              }
            }
            // dV += Pᵀ·dO;  dP = dO·Vᵀ;  dS = P ⊙ (dP − Δ);  dQ += dS·K·scale;  dK += dSᵀ·Q·scale.
            cblas_sgemm(kRowMajor, kTrans, kNoTrans, cols, g.head_dim, rows, 1.0f, p.data(), cols, d_o, g.head_dim,
                        1.0f, dv_head + k0 * g.head_dim, g.head_dim);
            cblas_sgemm(kRowMajor, kNoTrans, kTrans, rows, cols, g.head_dim, 1.0f, d_o, g.head_dim,
                        v + k0 * g.head_dim, g.head_dim, 0.0f, dp.data(), cols);
            for (size_t r = 0; r < rows; r++) {
              for (size_t c = 0; c < cols; c++) dp[r * cols + c] = p[r * cols + c] * (dp[r * cols + c] - delta[r]);
            }
            cblas_sgemm(kRowMajor, kNoTrans, kNoTrans, rows, g.head_dim, cols, g.scale, dp.data(), cols,
                        k + k0 * g.head_dim, g.head_dim, 1.0f, d_q, g.head_dim);
            cblas_sgemm(kRowMajor, kTrans, kNoTrans, cols, g.head_dim, rows, g.scale, dp.data(), cols, q, g.head_dim,
                        1.0f, dk_head + k0 * g.head_dim, g.head_dim);
          }
        }
      }
    }
  });
}

/// Inputs: q, k, v, o, lse, dO, then the segment ids and mask as in the forward.
class AttentionBackward : public mx::Primitive {
 public:
  AttentionBackward(mx::Stream stream, AttentionOptions options) : mx::Primitive(stream), options_(options) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override {
    dispatch(stream(), inputs, outputs, [options = options_](auto& in, auto& out) {
      auto g = geometry_of(in[0], in[1], options);
      std::vector<mx::array> forward_inputs{in[0], in[1], in[2]};
      forward_inputs.insert(forward_inputs.end(), in.begin() + 6, in.end());
      auto buffers = buffers_of(forward_inputs, g);
      backward(g, buffers, in[3].template data<float>(), in[4].template data<float>(), in[5].template data<float>(),
               out[0].template data<float>(), out[1].template data<float>(), out[2].template data<float>());
    });
  }
  void eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) override { no_gpu(name()); }
  const char* name() const override { return "TemperAttentionBackward"; }

 private:
  AttentionOptions options_;
};

/// Inputs: q [B, H, Tq, Dh], k and v [B, Hkv, Tk, Dh], then optionally query and key segment ids
/// ([B, Tq], [B, Tk] int32) and an additive mask [B, H, Tq, Tk]. Outputs: o [B, H, Tq, Dh] and the
/// per-query logsumexp [B, H, Tq] (kept for the backward).
class AttentionForward : public mx::Primitive {
 public:
  AttentionForward(mx::Stream stream, AttentionOptions options) : mx::Primitive(stream), options_(options) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override {
    dispatch(stream(), inputs, outputs, [options = options_](auto& in, auto& out) {
      auto g = geometry_of(in[0], in[1], options);
      forward(g, buffers_of(in, g), out[0].template data<float>(), out[1].template data<float>());
    });
  }
  void eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) override { no_gpu(name()); }

  std::vector<mx::array> vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cotangents,
                             const std::vector<int>& argnums, const std::vector<mx::array>& outputs) override {
    auto s = cpu_stream();
    auto d_out = mx::contiguous(mx::astype(cotangents[0], mx::float32, s), false, s);
    std::vector<mx::array> inputs{primals[0], primals[1], primals[2], outputs[0], outputs[1], d_out};
    inputs.insert(inputs.end(), primals.begin() + 3, primals.end());
    auto grads = mx::array::make_arrays({primals[0].shape(), primals[1].shape(), primals[2].shape()},
                                        {mx::float32, mx::float32, mx::float32},
                                        std::make_shared<AttentionBackward>(s, options_), inputs);
    std::vector<mx::array> result;
    for (int arg : argnums) {
      // Segment ids and the additive mask get no gradient.
      result.push_back(arg < 3 ? grads[arg] : mx::zeros_like(primals[arg], s));
    }
    return result;
  }
  const char* name() const override { return "TemperAttention"; }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    auto& q = inputs[0];
    return {q.shape(), {q.shape(0), q.shape(1), q.shape(2)}};
  }

 private:
  AttentionOptions options_;
};

}  // namespace

mx::array attention(const mx::array& queries, const mx::array& keys, const mx::array& values, AttentionOptions options,
                    const std::optional<mx::array>& query_segments, const std::optional<mx::array>& key_segments,
                    const std::optional<mx::array>& mask) {
  auto s = cpu_stream();
  if (queries.ndim() != 4 || keys.ndim() != 4 || values.shape() != keys.shape() || queries.shape(0) != keys.shape(0) ||
      queries.shape(3) != keys.shape(3) || keys.shape(1) == 0 || queries.shape(1) % keys.shape(1) != 0) {
    throw std::invalid_argument(
        "[temper::kernels::attention] expects q [B, H, Tq, Dh] and k, v [B, Hkv, Tk, Dh] with H a multiple of Hkv");
  }
  if (queries.dtype() != mx::float32 || keys.dtype() != mx::float32 || values.dtype() != mx::float32) {
    throw std::invalid_argument("[temper::kernels::attention] expects float32 inputs");
  }
  if (options.causal && queries.shape(2) > keys.shape(2)) {
    throw std::invalid_argument("[temper::kernels::attention] causal attention needs at least as many keys as queries");
  }
  int B = queries.shape(0), H = queries.shape(1), Tq = queries.shape(2), Tk = keys.shape(2);
  std::vector<mx::array> inputs{mx::contiguous(queries, false, s), mx::contiguous(keys, false, s),
                                mx::contiguous(values, false, s)};
  options.segments = query_segments.has_value();
  if (options.segments) {
    if (!key_segments || query_segments->shape() != mx::Shape{B, Tq} || key_segments->shape() != mx::Shape{B, Tk}) {
      throw std::invalid_argument("[temper::kernels::attention] segment ids must be [B, Tq] for queries and [B, Tk] for keys");
    }
    inputs.push_back(mx::contiguous(mx::astype(*query_segments, mx::int32, s), false, s));
    inputs.push_back(mx::contiguous(mx::astype(*key_segments, mx::int32, s), false, s));
  }
  options.mask = mask.has_value();
  if (options.mask) {
    auto additive = mask->dtype() == mx::bool_
                        ? mx::where(*mask, mx::array(0.0f), mx::array(-__builtin_inff()), s)
                        : mx::astype(*mask, mx::float32, s);
    inputs.push_back(mx::contiguous(mx::broadcast_to(additive, {B, H, Tq, Tk}, s), false, s));
  }
  auto outputs = mx::array::make_arrays({queries.shape(), {B, H, Tq}}, {mx::float32, mx::float32},
                                        std::make_shared<AttentionForward>(s, options), inputs);
  return outputs[0];
}

}  // namespace temper::kernels
