// MLX custom primitives (MLX's documented extension mechanism) backed by the vectorized, threaded
// kernel bodies in KernelBodies.inc. Each forward primitive has a backward primitive for its vjp.
#include "TemperKernels.h"

#include "Common.h"

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace temper::kernels {

namespace {

// Row outputs this large (vocabulary-wide ones) are written around the caches, into pages each
// thread maps in for its rows first: glibc serves them fresh from mmap (above its 32 MiB
// threshold), so every call faults in all their pages, unless the process keeps freed pages
// mapped (ResidentMemory.keepFreedPagesMapped, as the temper binary does).
constexpr size_t kStreamBytes = size_t(32) << 20;

bool streams(const mx::array& out) { return out.nbytes() >= kStreamBytes; }

/// Maps in the pages of [p, p + count) in one call rather than one fault per page (measured ~8%
/// faster on the row outputs). Best effort: older kernels refuse it, and then the stores fault.
void map_in(float* p, size_t count) {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t first = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
  uintptr_t last = reinterpret_cast<uintptr_t>(p + count) & ~(page - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_POPULATE_WRITE);
#endif
}

/// Float32 and row-contiguous, as the kernels read their inputs.
mx::array prepared(const mx::array& x, const char* op) {
  if (x.dtype() != mx::float32) {
    throw std::invalid_argument(std::string("[temper::kernels::") + op + "] expects float32 input");
  }
  return mx::contiguous(x, false, cpu_stream());
}

// MARK: elementwise

mx::array unary_backward(Unary op, const mx::array& x, const mx::array& seed);

/// The backward code that reads the forward's output instead of its input (no exp to recompute).
std::optional<Unary> output_derivative(Unary op) {
  switch (op) {
    case Unary::exp: return static_cast<Unary>(8);
    case Unary::sigmoid: return static_cast<Unary>(9);
    case Unary::tanh: return static_cast<Unary>(10);
    default: return std::nullopt;
  }
}

class UnaryForward : public mx::UnaryPrimitive {
 public:
  UnaryForward(mx::Stream stream, Unary op) : mx::UnaryPrimitive(stream), op_(op) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override {
    std::vector<mx::array> outputs{out};
    dispatch(stream(), inputs, outputs, [op = static_cast<int>(op_)](auto& in, auto& out) {
      const float* x = in[0].template data<float>();
      float* y = out[0].template data<float>();
      parallel_for(in[0].size(), kElementGrain, [&](size_t b, size_t e) { TEMPER_DISPATCH(unary_forward, op, x, y, b, e); }, 8);
    });
  }
  void eval_gpu(const std::vector<mx::array>&, mx::array&) override { no_gpu(name()); }

  std::vector<mx::array> vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cotangents,
                             const std::vector<int>&, const std::vector<mx::array>& outputs) override {
    if (auto from_output = output_derivative(op_)) return {unary_backward(*from_output, outputs[0], cotangents[0])};
    return {unary_backward(op_, primals[0], cotangents[0])};
  }
  std::vector<mx::array> jvp(const std::vector<mx::array>& primals, const std::vector<mx::array>& tangents,
                             const std::vector<int>&) override {
    return {unary_backward(op_, primals[0], tangents[0])};
  }
  const char* name() const override { return "TemperUnary"; }
  bool is_equivalent(const mx::Primitive& other) const override {
    return op_ == static_cast<const UnaryForward&>(other).op_;
  }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override { return {inputs[0].shape()}; }

 private:
  Unary op_;
};

/// f'(x) · seed.
class UnaryBackward : public mx::UnaryPrimitive {
 public:
  UnaryBackward(mx::Stream stream, Unary op) : mx::UnaryPrimitive(stream), op_(op) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override {
    std::vector<mx::array> outputs{out};
    dispatch(stream(), inputs, outputs, [op = static_cast<int>(op_)](auto& in, auto& out) {
      const float* x = in[0].template data<float>();
      const float* seed = in[1].template data<float>();
      float* dx = out[0].template data<float>();
      parallel_for(in[0].size(), kElementGrain, [&](size_t b, size_t e) { TEMPER_DISPATCH(unary_backward, op, x, seed, dx, b, e); }, 8);
    });
  }
  void eval_gpu(const std::vector<mx::array>&, mx::array&) override { no_gpu(name()); }
  const char* name() const override { return "TemperUnaryBackward"; }
  bool is_equivalent(const mx::Primitive& other) const override {
    return op_ == static_cast<const UnaryBackward&>(other).op_;
  }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override { return {inputs[0].shape()}; }

 private:
  Unary op_;
};

mx::array unary_backward(Unary op, const mx::array& x, const mx::array& seed) {
  auto s = prepared(mx::broadcast_to(seed, x.shape(), cpu_stream()), "unary_backward");
  return mx::array(x.shape(), mx::float32, std::make_shared<UnaryBackward>(cpu_stream(), op), {x, s});
}

// MARK: SwiGLU

class SwiGLUBackward : public mx::Primitive {
 public:
  explicit SwiGLUBackward(mx::Stream stream) : mx::Primitive(stream) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override {
    dispatch(stream(), inputs, outputs, [](auto& in, auto& out) {
      const float* g = in[0].template data<float>();
      const float* u = in[1].template data<float>();
      const float* c = in[2].template data<float>();
      float* dg = out[0].template data<float>();
      float* du = out[1].template data<float>();
      parallel_for(in[0].size(), kElementGrain, [&](size_t b, size_t e) { TEMPER_DISPATCH(swiglu_backward, g, u, c, dg, du, b, e); }, 8);
    });
  }
  void eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) override { no_gpu(name()); }
  const char* name() const override { return "TemperSwiGLUBackward"; }
  bool is_equivalent(const mx::Primitive&) const override { return true; }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    return {inputs[0].shape(), inputs[0].shape()};
  }
};

/// (dgate, dup) for seed c.
std::vector<mx::array> swiglu_backward(const mx::array& g, const mx::array& u, const mx::array& seed) {
  auto c = prepared(mx::broadcast_to(seed, g.shape(), cpu_stream()), "swiglu_backward");
  return mx::array::make_arrays({g.shape(), g.shape()}, {mx::float32, mx::float32},
                                std::make_shared<SwiGLUBackward>(cpu_stream()), {g, u, c});
}

class SwiGLU : public mx::UnaryPrimitive {
 public:
  explicit SwiGLU(mx::Stream stream) : mx::UnaryPrimitive(stream) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override {
    std::vector<mx::array> outputs{out};
    dispatch(stream(), inputs, outputs, [](auto& in, auto& out) {
      const float* g = in[0].template data<float>();
      const float* u = in[1].template data<float>();
      float* y = out[0].template data<float>();
      parallel_for(in[0].size(), kElementGrain, [&](size_t b, size_t e) { TEMPER_DISPATCH(swiglu_forward, g, u, y, b, e); }, 8);
    });
  }
  void eval_gpu(const std::vector<mx::array>&, mx::array&) override { no_gpu(name()); }

  std::vector<mx::array> vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cotangents,
                             const std::vector<int>& argnums, const std::vector<mx::array>&) override {
    auto grads = swiglu_backward(primals[0], primals[1], cotangents[0]);
    std::vector<mx::array> result;
    for (int arg : argnums) result.push_back(grads[arg]);
    return result;
  }
  std::vector<mx::array> jvp(const std::vector<mx::array>& primals, const std::vector<mx::array>& tangents,
                             const std::vector<int>& argnums) override {
    // d(silu(g)·u) = silu'(g)·u·dg + silu(g)·du.
    std::optional<mx::array> total;
    for (size_t i = 0; i < argnums.size(); i++) {
      auto part = swiglu_backward(primals[0], primals[1], tangents[i])[argnums[i]];
      total = total ? mx::add(*total, part, cpu_stream()) : part;
    }
    return {*total};
  }
  const char* name() const override { return "TemperSwiGLU"; }
  bool is_equivalent(const mx::Primitive&) const override { return true; }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override { return {inputs[0].shape()}; }
};

// MARK: dropout

/// x through the Dropout primitive with `mask`.
mx::array dropped_by(const DropoutMask& mask, const mx::array& x);

/// Inverted dropout with a counter-based mask (see dropout_apply). The op is linear in x with the
/// mask as its derivative, so its vjp and jvp are the same op, same seed, on the cotangent.
class Dropout : public mx::UnaryPrimitive {
 public:
  Dropout(mx::Stream stream, DropoutMask mask) : mx::UnaryPrimitive(stream), mask_(mask) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override {
    std::vector<mx::array> outputs{out};
    dispatch(stream(), inputs, outputs, [mask = mask_](auto& in, auto& out) {
      mask.apply(in[0].template data<float>(), out[0].template data<float>(), in[0].size());
    });
  }
  void eval_gpu(const std::vector<mx::array>&, mx::array&) override { no_gpu(name()); }

  std::vector<mx::array> vjp(const std::vector<mx::array>&, const std::vector<mx::array>& cotangents,
                             const std::vector<int>&, const std::vector<mx::array>&) override {
    return {dropped_by(mask_, cotangents[0])};
  }
  std::vector<mx::array> jvp(const std::vector<mx::array>&, const std::vector<mx::array>& tangents,
                             const std::vector<int>&) override {
    return {dropped_by(mask_, tangents[0])};
  }
  const char* name() const override { return "TemperDropout"; }
  bool is_equivalent(const mx::Primitive& other) const override { return mask_ == static_cast<const Dropout&>(other).mask_; }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override { return {inputs[0].shape()}; }

 private:
  DropoutMask mask_;
};

mx::array dropped_by(const DropoutMask& mask, const mx::array& x) {
  return mx::array(x.shape(), mx::float32, std::make_shared<Dropout>(cpu_stream(), mask), {prepared(x, "dropout")});
}

// MARK: rows: softmax, log_softmax, logsumexp over the last axis

enum class RowOp : int { softmax = 0, log_softmax, logsumexp };

mx::Shape row_output_shape(RowOp op, const mx::Shape& shape) {
  if (op != RowOp::logsumexp) return shape;
  return mx::Shape(shape.begin(), shape.end() - 1);
}

class RowBackward : public mx::UnaryPrimitive {
 public:
  RowBackward(mx::Stream stream, RowOp op) : mx::UnaryPrimitive(stream), op_(op) {}

  // Inputs: softmax (s, c); log_softmax (y, c); logsumexp (x, lse, c).
  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override {
    std::vector<mx::array> outputs{out};
    dispatch(stream(), inputs, outputs, [op = op_, stream_out = streams(out)](auto& in, auto& out) {
      size_t width = in[0].shape().back();
      size_t rows = width == 0 ? 0 : in[0].size() / width;
      float* dx = out[0].template data<float>();
      const float* a = in[0].template data<float>();
      const float* b = in[1].template data<float>();
      parallel_for(rows, row_grain(width), [&](size_t begin, size_t end) {
        if (stream_out) map_in(dx + begin * width, (end - begin) * width);
        switch (op) {
          case RowOp::softmax: TEMPER_DISPATCH(softmax_backward_rows, a, b, dx, width, stream_out, begin, end); break;
          case RowOp::log_softmax:
            TEMPER_DISPATCH(log_softmax_backward_rows, a, b, dx, width, stream_out, begin, end);
            break;
          case RowOp::logsumexp: {
            const float* c = in[2].template data<float>();
            TEMPER_DISPATCH(logsumexp_backward_rows, a, b, c, dx, width, stream_out, begin, end);
            break;
          }
        }
      });
    });
  }
  void eval_gpu(const std::vector<mx::array>&, mx::array&) override { no_gpu(name()); }
  const char* name() const override { return "TemperRowBackward"; }
  bool is_equivalent(const mx::Primitive& other) const override {
    return op_ == static_cast<const RowBackward&>(other).op_;
  }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override { return {inputs[0].shape()}; }

 private:
  RowOp op_;
};

class RowForward : public mx::UnaryPrimitive {
 public:
  RowForward(mx::Stream stream, RowOp op) : mx::UnaryPrimitive(stream), op_(op) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override {
    std::vector<mx::array> outputs{out};
    // softmax measured faster with plain stores, exponentials first and then scaled in cache.
    bool stream_out = op_ == RowOp::log_softmax && streams(out);
    dispatch(stream(), inputs, outputs, [op = op_, stream_out](auto& in, auto& out) {
      size_t width = in[0].shape().back();
      size_t rows = width == 0 ? 0 : in[0].size() / width;
      const float* x = in[0].template data<float>();
      float* y = out[0].template data<float>();
      parallel_for(rows, row_grain(width), [&](size_t begin, size_t end) {
        if (stream_out) map_in(y + begin * width, (end - begin) * width);
        switch (op) {
          case RowOp::softmax: TEMPER_DISPATCH(softmax_rows, x, y, width, begin, end); break;
          case RowOp::log_softmax: TEMPER_DISPATCH(log_softmax_rows, x, y, width, stream_out, begin, end); break;
          case RowOp::logsumexp: TEMPER_DISPATCH(logsumexp_rows, x, y, width, begin, end); break;
        }
      });
    });
  }
  void eval_gpu(const std::vector<mx::array>&, mx::array&) override { no_gpu(name()); }

  std::vector<mx::array> vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cotangents,
                             const std::vector<int>&, const std::vector<mx::array>& outputs) override {
    auto s = cpu_stream();
    auto backward = std::make_shared<RowBackward>(s, op_);
    auto c = prepared(mx::broadcast_to(cotangents[0], outputs[0].shape(), s), "row_backward");
    if (op_ == RowOp::logsumexp) {
      return {mx::array(primals[0].shape(), mx::float32, backward, {primals[0], outputs[0], c})};
    }
    return {mx::array(primals[0].shape(), mx::float32, backward, {outputs[0], c})};
  }
  std::vector<mx::array> jvp(const std::vector<mx::array>& primals, const std::vector<mx::array>& tangents,
                             const std::vector<int>&) override {
    // Composed from MLX ops: forward-mode use is rare and not on a hot path.
    auto s = cpu_stream();
    auto x = primals[0];
    auto t = tangents[0];
    auto lse = mx::logsumexp(x, -1, true, s);
    auto p = mx::exp(mx::subtract(x, lse, s), s);
    auto dot = mx::sum(mx::multiply(p, t, s), -1, true, s);
    switch (op_) {
      case RowOp::softmax: return {mx::multiply(p, mx::subtract(t, dot, s), s)};
      case RowOp::log_softmax: return {mx::subtract(t, dot, s)};
      case RowOp::logsumexp: return {mx::squeeze(dot, -1, s)};
    }
    return {};
  }
  const char* name() const override { return "TemperRowForward"; }
  bool is_equivalent(const mx::Primitive& other) const override {
    return op_ == static_cast<const RowForward&>(other).op_;
  }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    return {row_output_shape(op_, inputs[0].shape())};
  }

 private:
  RowOp op_;
};

mx::array row_op(RowOp op, const mx::array& x, const char* name) {
  if (x.ndim() == 0) throw std::invalid_argument(std::string("[temper::kernels::") + name + "] needs at least one axis");
  auto input = prepared(x, name);
  return mx::array(row_output_shape(op, x.shape()), mx::float32, std::make_shared<RowForward>(cpu_stream(), op), {input});
}

}  // namespace

mx::array unary(Unary op, const mx::array& x) {
  auto input = prepared(x, "unary");
  return mx::array(x.shape(), mx::float32, std::make_shared<UnaryForward>(cpu_stream(), op), {input});
}

mx::array swiglu(const mx::array& gate, const mx::array& up) {
  if (gate.shape() != up.shape()) throw std::invalid_argument("[temper::kernels::swiglu] gate and up must have the same shape");
  auto g = prepared(gate, "swiglu");
  auto u = prepared(up, "swiglu");
  return mx::array(gate.shape(), mx::float32, std::make_shared<SwiGLU>(cpu_stream()), {g, u});
}

mx::array dropout(const mx::array& x, float probability, uint64_t seed, uint64_t offset) {
  return dropped_by(DropoutMask::of(probability, seed, offset), x);
}

mx::array softmax(const mx::array& x) { return row_op(RowOp::softmax, x, "softmax"); }
mx::array log_softmax(const mx::array& x) { return row_op(RowOp::log_softmax, x, "log_softmax"); }
mx::array logsumexp(const mx::array& x) { return row_op(RowOp::logsumexp, x, "logsumexp"); }

float host_max(const float* x, size_t count) { return TEMPER_DISPATCH(row_max, x, count); }
float host_exp_weights(const float* x, size_t count, float shift, float scale, float* weights) {
  return TEMPER_DISPATCH(exp_weights, x, count, shift, scale, weights);
}

int instruction_set() { return static_cast<int>(kernel_instruction_set()); }

}  // namespace temper::kernels
