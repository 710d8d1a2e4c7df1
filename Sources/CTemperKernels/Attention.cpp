// Tiled ("flash") attention for the CPU: softmax(q·kᵀ·scale + masks)·v computed block by block with
// an online softmax, so memory stays O(T·d) (Dao et al. 2022; backward as in FlashAttention-2).
// Grouped-query heads, causal masking aligned to the end (queries are the last Tq of Tk positions,
// as in decoding against a KV cache), segment ids for packed sequences (a token attends only within
// its own sample; a negative id is padding and attends to nothing), and an optional additive mask.
// Block products run on register-tiled loops of AttentionBodies.inc rather than sgemm: at these
// sizes (64-wide blocks) OpenBLAS's per-call packing and dispatch cost as much as the arithmetic,
// and our own tiles can stop at the causal diagonal and the segment bounds of each 16-query panel.
#include <algorithm>

#include "Common.h"
#include "TemperKernels.h"

namespace temper::kernels {

namespace {

constexpr size_t kPanel = 16;       // query rows per panel: the 16 lanes of two vectors
constexpr size_t kTileRows = 6;     // 6 × 16 tiles: 12 accumulators of the 16 AVX registers
// The backward's dK and dV tiles take 4 keys: with aligned causal panels the bounds fall on multiples
// of 16 keys, so a tile never pulls in a panel that sees none of its keys (~2% faster than 6).
constexpr size_t kKeyTileRows = 4;
constexpr size_t kChunkKeys = 256;  // keys per step, so a panel's scores stay in L1/L2
constexpr size_t kBlockRows = 64;   // backward rows per block: the depth of the dK and dV products
constexpr size_t kThinRows = 4;     // panels of at most this many queries (decoding) go row by row

struct Geometry {
  size_t batch, heads, kv_heads, queries, keys, head_dim;
  float scale;
  bool causal, segments, mask;

  size_t group() const { return heads / kv_heads; }
  /// Causal masking aligns the queries with the last positions of the keys.
  size_t causal_offset() const { return keys - queries; }
  /// head_dim rounded up to whole panels, the row length of the backward's copies of q and dO.
  size_t padded_head_dim() const { return (head_dim + kPanel - 1) / kPanel * kPanel; }
};

Geometry geometry_of(const mx::array& q, const mx::array& k, const AttentionOptions& options) {
  return {static_cast<size_t>(q.shape(0)), static_cast<size_t>(q.shape(1)), static_cast<size_t>(k.shape(1)),
          static_cast<size_t>(q.shape(2)), static_cast<size_t>(k.shape(2)), static_cast<size_t>(q.shape(3)),
          options.scale, options.causal, options.segments, options.mask};
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

}  // namespace

#define TEMPER_BODIES "AttentionBodies.inc"
#define TEMPER_BODIES_8_LANES  // a panel of 16 query rows is two 8-lane registers throughout
#include "PerInstructionSet.inc"

namespace {

/// Per-thread scratch of `floats` floats, aligned to a cache line so that panel rows are too.
class Scratch {
 public:
  explicit Scratch(size_t floats) : storage_(floats + kAlignment / sizeof(float)) {}
  float* data() {
    auto address = reinterpret_cast<uintptr_t>(storage_.data());
    return reinterpret_cast<float*>((address + kAlignment - 1) / kAlignment * kAlignment);
  }

 private:
  static constexpr size_t kAlignment = 64;
  std::vector<float> storage_;
};

size_t panels_per_group(const Geometry& g) { return (g.group() * g.queries + kPanel - 1) / kPanel; }

void forward(const Geometry& g, const Buffers& in, float* out, float* lse) {
  // One task per 16-row panel of a (batch, kv head) group.
  size_t panels = panels_per_group(g);
  parallel_for(g.batch * g.kv_heads * panels, 1, [&](size_t begin, size_t end) {
    Scratch scratch(2 * g.head_dim * kPanel + kChunkKeys * kPanel);
    for (size_t task = begin; task < end; task++) {
      TEMPER_DISPATCH_8_LANES(attention_forward_panel, g, in, task / panels, task % panels * kPanel, out, lse,
                      scratch.data());
    }
  });
}

void backward(const Geometry& g, const Buffers& in, const float* out, const float* lse, const float* d_out, float* dq,
              float* dk, float* dv) {
  std::memset(dk, 0, g.batch * g.kv_heads * g.keys * g.head_dim * sizeof(float));
  std::memset(dv, 0, g.batch * g.kv_heads * g.keys * g.head_dim * sizeof(float));
  // One task per (batch, kv head) group: it owns dk, dv of that head and dq of the query heads it serves.
  parallel_for(g.batch * g.kv_heads, 1, [&](size_t begin, size_t end) {
    Scratch scratch(3 * kBlockRows * g.head_dim + 2 * kBlockRows * g.padded_head_dim() +
                    2 * kChunkKeys * kBlockRows + kChunkKeys * kPanel);
    for (size_t group = begin; group < end; group++) {
      TEMPER_DISPATCH_8_LANES(attention_backward_group, g, in, out, lse, d_out, group, dq, dk, dv, scratch.data());
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
