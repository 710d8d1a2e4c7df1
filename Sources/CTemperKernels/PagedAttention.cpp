// Attention over a paged KV cache for inference (vLLM's PagedAttention, Kwon et al. 2023): each
// batch row's keys and values lie in fixed-size blocks of shared pools, listed in token order by the
// row's block table. One pass over a row's keys, block by block through the table, with an online
// softmax (running max and sum per query), so nothing is gathered and no mask is materialized.
// Query j of row b sees keys 0 ..< keyCounts[b] − Tq + j + 1; a query that sees none gives zeros.
//
// Work is split into tiles of at most kTileRows query rows of one (batch row, kv head) group, whose
// query heads share every key read (grouped-query attention). When a decode step has fewer tiles
// than threads (a single sequence), each tile's keys are also split across threads and the partial
// softmaxes merged (flash decoding). No gradient: the primitive is for inference.
#include <utility>

#include "Common.h"
#include "TemperKernels.h"

namespace temper::kernels {

namespace {

constexpr size_t kTileRows = 16;    // query rows per task: 16 queries of one head when prefilling
constexpr size_t kChunkKeys = 32;   // keys per online-softmax step: their K and V rows stay in L1 (64 measured no faster)
constexpr size_t kSplitKeys = 128;  // the fewest keys a split of one tile's keys gets

struct PagedGeometry {
  size_t batch, heads, kv_heads, queries, head_dim, block_size, max_blocks, pool_blocks;
  float scale;

  size_t group() const { return heads / kv_heads; }
  /// Query rows of a (batch row, kv head) group: its query heads one after the other, as laid out in q.
  size_t group_rows() const { return group() * queries; }
  size_t capacity() const { return max_blocks * block_size; }
  size_t padded_head_dim() const { return (head_dim + 15) / 16 * 16; }
};

struct PagedBuffers {
  const float *q, *k, *v;
  const int32_t *block_table, *key_counts;
  const size_t* row_keys;  // per batch row: the keys that may be read (see row_keys_of)
};

/// Rows [r0, r0 + rows) of group (batch, kv_head), against keys [key_begin, key_end).
struct PagedTile {
  size_t batch, kv_head, r0, rows, key_begin, key_end;
};

}  // namespace

#define TEMPER_BODIES "PagedAttentionBodies.inc"
#define TEMPER_BODIES_8_LANES  // decoding is bound by reading K and V: wider registers would not pay
#include "PerInstructionSet.inc"

namespace {

/// Keys of a row that may be read: its count, at most the table's capacity, and ending before the
/// first block id outside the pool (whose keys the reference's gather leaves undefined; here they end
/// the row, so that a bad table never reads outside the pool).
size_t row_keys_of(const PagedGeometry& g, const PagedBuffers& in, size_t b) {
  int64_t count = std::clamp<int64_t>(in.key_counts[b], 0, static_cast<int64_t>(g.capacity()));
  size_t keys = static_cast<size_t>(count);
  const int32_t* table = in.block_table + b * g.max_blocks;
  for (size_t block = 0; block * g.block_size < keys; block++) {
    if (table[block] < 0 || static_cast<size_t>(table[block]) >= g.pool_blocks) return block * g.block_size;
  }
  return keys;
}

/// Splits of each tile's keys: as many as make the tasks fill the threads in the fewest rounds
/// (counted in whole tiles), none shorter than kSplitKeys.
size_t key_splits(size_t tiles, size_t longest) {
  size_t threads = static_cast<size_t>(thread_count()), best = 1;
  double best_time = double((tiles + threads - 1) / threads);
  for (size_t s = 2; s <= threads && s * kSplitKeys <= longest; s++) {
    double time = double((tiles * s + threads - 1) / threads) / double(s);
    if (time < best_time - 1e-9) {
      best = s;
      best_time = time;
    }
  }
  return best;
}

void scale_row(float* y, float factor, size_t width) { TEMPER_DISPATCH_8_LANES(row_scale, y, factor, width); }

/// Scratch floats of one task: scaled queries and one chunk's scores.
size_t scratch_floats(const PagedGeometry& g) { return kTileRows * (g.padded_head_dim() + kChunkKeys) + 16; }

void paged_forward(const PagedGeometry& g, const PagedBuffers& buffers, float* out) {
  std::vector<size_t> row_keys(g.batch);
  for (size_t b = 0; b < g.batch; b++) row_keys[b] = row_keys_of(g, buffers, b);
  PagedBuffers in = buffers;
  in.row_keys = row_keys.data();
  size_t d = g.head_dim, rows = g.group_rows(), tiles_per_group = (rows + kTileRows - 1) / kTileRows;
  size_t tiles = g.batch * g.kv_heads * tiles_per_group;
  size_t longest = row_keys.empty() ? 0 : *std::max_element(row_keys.begin(), row_keys.end());
  size_t splits = key_splits(tiles, longest);
  size_t split_keys = (longest + splits - 1) / splits;
  split_keys = (split_keys + kChunkKeys - 1) / kChunkKeys * kChunkKeys;
  auto tile_of = [&](size_t index) {
    // Alternate light and heavy tiles of a group (early and late queries of a causal prefill),
    // so that each thread's contiguous range of tasks gets a fair share.
    size_t group = index / tiles_per_group, k = index % tiles_per_group;
    size_t tile = k % 2 == 0 ? k / 2 : tiles_per_group - 1 - k / 2;
    size_t r0 = tile * kTileRows;
    return PagedTile{group / g.kv_heads, group % g.kv_heads, r0, std::min(kTileRows, rows - r0), 0, g.capacity()};
  };
  auto normalize = [&](const PagedTile& t, float* acc, const float* l) {
    for (size_t i = 0; i < t.rows; i++) scale_row(acc + i * d, l[i] > 0.0f ? 1.0f / l[i] : 0.0f, d);
  };
  if (splits == 1) {
    // The output rows of a tile are contiguous: accumulate there and normalize in place.
    parallel_for(tiles, 1, [&](size_t begin, size_t end) {
      std::vector<float> scratch(scratch_floats(g));
      float m[kTileRows], l[kTileRows];
      for (size_t index = begin; index < end; index++) {
        PagedTile t = tile_of(index);
        float* acc = out + ((t.batch * g.kv_heads + t.kv_head) * rows + t.r0) * d;
        TEMPER_DISPATCH_8_LANES(paged_attention_tile, g, in, t, acc, m, l, scratch.data());
        normalize(t, acc, l);
      }
    });
    return;
  }
  // Each split leaves [kTileRows][d] unnormalized outputs, then kTileRows maxima and sums.
  size_t part = kTileRows * (d + 2);
  std::vector<float> partials(tiles * splits * part);
  parallel_for(tiles * splits, 1, [&](size_t begin, size_t end) {
    std::vector<float> scratch(scratch_floats(g));
    for (size_t task = begin; task < end; task++) {
      PagedTile t = tile_of(task / splits);
      t.key_begin = task % splits * split_keys;
      t.key_end = std::min(g.capacity(), t.key_begin + split_keys);
      float* acc = partials.data() + task * part;
      float* m = acc + kTileRows * d;
      TEMPER_DISPATCH_8_LANES(paged_attention_tile, g, in, t, acc, m, m + kTileRows, scratch.data());
    }
  });
  // Merge: o = Σ_s e^(m_s − M)·acc_s / Σ_s e^(m_s − M)·l_s with M the largest m_s.
  parallel_for(tiles, 4, [&](size_t begin, size_t end) {
    for (size_t index = begin; index < end; index++) {
      PagedTile t = tile_of(index);
      float* y = out + ((t.batch * g.kv_heads + t.kv_head) * rows + t.r0) * d;
      const float* first = partials.data() + index * splits * part;
      for (size_t i = 0; i < t.rows; i++) {
        float top = -__builtin_inff(), sum = 0.0f;
        for (size_t s = 0; s < splits; s++) {
          const float* p = first + s * part + kTileRows * d;
          if (p[kTileRows + i] > 0.0f) top = std::max(top, p[i]);
        }
        std::fill_n(y + i * d, d, 0.0f);
        for (size_t s = 0; s < splits; s++) {
          const float* p = first + s * part;
          float split_sum = p[kTileRows * d + kTileRows + i];
          if (split_sum <= 0.0f) continue;
          float weight = std::exp(p[kTileRows * d + i] - top);
          sum += weight * split_sum;
          for (size_t j = 0; j < d; j++) y[i * d + j] += weight * p[i * d + j];
        }
        float inverse = sum > 0.0f ? 1.0f / sum : 0.0f;
        for (size_t j = 0; j < d; j++) y[i * d + j] *= inverse;
      }
    }
  });
}

/// Inputs: q [B, H, Tq, Dh], key and value pools [slots, Hkv, Dh] (float32), block table [B,
/// maxBlocks] and key counts [B] (int32). Output: [B, H, Tq, Dh]. Inference only.
class PagedAttention : public mx::Primitive {
 public:
  PagedAttention(mx::Stream stream, int block_size, float scale)
      : mx::Primitive(stream), block_size_(block_size), scale_(scale) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override {
    dispatch(stream(), inputs, outputs, [block_size = size_t(block_size_), scale = scale_](auto& in, auto& out) {
      auto& q = in[0];
      PagedGeometry g{static_cast<size_t>(q.shape(0)), static_cast<size_t>(q.shape(1)),
                      static_cast<size_t>(in[1].shape(1)), static_cast<size_t>(q.shape(2)),
                      static_cast<size_t>(q.shape(3)), block_size, static_cast<size_t>(in[3].shape(1)),
                      static_cast<size_t>(in[1].shape(0)) / block_size, scale};
      PagedBuffers buffers{q.template data<float>(), in[1].template data<float>(), in[2].template data<float>(),
                           in[3].template data<int32_t>(), in[4].template data<int32_t>(), nullptr};
      paged_forward(g, buffers, out[0].template data<float>());
    });
  }
  void eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) override { no_gpu(name()); }

  std::vector<mx::array> vjp(const std::vector<mx::array>&, const std::vector<mx::array>&, const std::vector<int>&,
                             const std::vector<mx::array>&) override {
    throw std::invalid_argument(
        "[TemperPagedAttention] paged attention is for inference and has no gradient; differentiate "
        "Kernels.attention over gathered keys instead");
  }
  const char* name() const override { return "TemperPagedAttention"; }
  bool is_equivalent(const mx::Primitive& other) const override {
    auto& o = static_cast<const PagedAttention&>(other);
    return block_size_ == o.block_size_ && scale_ == o.scale_;
  }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override { return {inputs[0].shape()}; }

 private:
  int block_size_;
  float scale_;
};

}  // namespace

mx::array paged_attention(const mx::array& queries, const mx::array& key_pool, const mx::array& value_pool,
                          const mx::array& block_table, const mx::array& key_counts, int block_size, float scale) {
  auto s = cpu_stream();
  if (queries.ndim() != 4 || key_pool.ndim() != 3 || value_pool.shape() != key_pool.shape() ||
      key_pool.shape(2) != queries.shape(3) || key_pool.shape(1) == 0 || queries.shape(1) % key_pool.shape(1) != 0) {
    throw std::invalid_argument(
        "[temper::kernels::paged_attention] expects q [B, H, Tq, Dh] and key, value pools [slots, Hkv, Dh] with H a "
        "multiple of Hkv");
  }
  if (block_table.ndim() != 2 || block_table.shape(0) != queries.shape(0) || key_counts.ndim() != 1 ||
      key_counts.shape(0) != queries.shape(0)) {
    throw std::invalid_argument("[temper::kernels::paged_attention] expects a block table [B, maxBlocks] and key counts [B]");
  }
  if (block_size <= 0) throw std::invalid_argument("[temper::kernels::paged_attention] block size must be positive");
  if (queries.dtype() != mx::float32 || key_pool.dtype() != mx::float32 || value_pool.dtype() != mx::float32) {
    throw std::invalid_argument("[temper::kernels::paged_attention] expects float32 queries and pools");
  }
  std::vector<mx::array> inputs{mx::contiguous(queries, false, s), mx::contiguous(key_pool, false, s),
                                mx::contiguous(value_pool, false, s),
                                mx::contiguous(mx::astype(block_table, mx::int32, s), false, s),
                                mx::contiguous(mx::astype(key_counts, mx::int32, s), false, s)};
  return mx::array(queries.shape(), mx::float32, std::make_shared<PagedAttention>(s, block_size, scale), inputs);
}

}  // namespace temper::kernels
