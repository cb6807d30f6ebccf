// Kernel lab for the CPU backend at the `cpu-small` training shapes
// (d 256, 4 heads, 2 kv heads, head dim 64, ffn 768, vocab 256, batch 16 x seq 256).
//   lumina_kernel_bench --benchmark_filter=Cpu
// Counters: bytes_per_second for memory-bound ops, FLOP/s for attention and gemm.
#include <benchmark/benchmark.h>

#include <vector>

#include "lumina/backend/backend.h"
#include "lumina/core/rng.h"

namespace lumina {
namespace {

constexpr int64_t kBatch = 16, kSeq = 256, kHidden = 256, kHeads = 4, kKvHeads = 2, kHeadDim = 64;
constexpr int64_t kFfn = 768, kVocab = 256, kTokens = kBatch * kSeq;
constexpr int64_t kParams = 3'279'104;  // cpu-small, tied embeddings

// f32 host tensors with N(0, std) values; owned by the benchmark.
class Tensors {
 public:
  explicit Tensors(Backend& backend) : backend_(backend) {}
  Tensor make(Shape s, double std = 1.0, double mean = 0.0) {
    buffers_.push_back(backend_.allocate(static_cast<size_t>(s.numel()) * sizeof(float)));
    Tensor t = buffers_.back().as_tensor(DType::f32, s);
    Rng(buffers_.size(), RngPurpose::test, 0).fill_normal(t.ptr<float>(), t.numel(), mean, std);
    return t;
  }
  Tensor tokens(int64_t n, int32_t vocab) {
    buffers_.push_back(backend_.allocate(static_cast<size_t>(n) * sizeof(int32_t)));
    Tensor t = buffers_.back().as_tensor(DType::i32, Shape{n});
    const Rng rng(99, RngPurpose::test, 0);
    int32_t* ids = t.ptr<int32_t>();
    for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(rng.bits(static_cast<uint64_t>(i)) % vocab);
    return t;
  }

 private:
  Backend& backend_;
  std::vector<Buffer> buffers_;
};

// Causal attention FLOPs (fwd): 2 GEMMs of B Hq T^2/2 D multiply-adds.
double attention_forward_flops() { return 2.0 * 2.0 * kBatch * kHeads * kSeq * kSeq / 2.0 * kHeadDim; }

void BM_CpuAttentionForward(benchmark::State& state) {
  auto be = make_cpu_backend();
  Tensors t(*be);
  Tensor q = t.make({kBatch, kSeq, kHeads, kHeadDim}), k = t.make({kBatch, kSeq, kKvHeads, kHeadDim});
  Tensor v = t.make({kBatch, kSeq, kKvHeads, kHeadDim}), out = t.make({kBatch, kSeq, kHeads, kHeadDim});
  Tensor lse = t.make({kBatch, kHeads, kSeq});
  for (auto _ : state) be->attention_forward(out, lse, q, k, v);
  state.counters["FLOP/s"] =
      benchmark::Counter(attention_forward_flops(), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_CpuAttentionForward)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_CpuAttentionForwardBackward(benchmark::State& state) {
  auto be = make_cpu_backend();
  Tensors t(*be);
  const Shape qs{kBatch, kSeq, kHeads, kHeadDim}, ks{kBatch, kSeq, kKvHeads, kHeadDim};
  Tensor q = t.make(qs), k = t.make(ks), v = t.make(ks), out = t.make(qs), lse = t.make({kBatch, kHeads, kSeq});
  Tensor dout = t.make(qs), dq = t.make(qs), dk = t.make(ks), dv = t.make(ks);
  for (auto _ : state) {
    be->attention_forward(out, lse, q, k, v);
    be->attention_backward(dq, dk, dv, dout, q, k, v, out, lse);
  }
  // Backward: 5 GEMMs of the forward's size (S, dP, dq, dk, dv) against the forward's 2.
  state.counters["FLOP/s"] =
      benchmark::Counter(attention_forward_flops() * 3.5, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_CpuAttentionForwardBackward)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_CpuRmsnormForward(benchmark::State& state) {
  auto be = make_cpu_backend();
  Tensors t(*be);
  Tensor x = t.make({kTokens, kHidden}), w = t.make({kHidden}, 0.1, 1.0), y = t.make({kTokens, kHidden});
  Tensor rstd = t.make({kTokens});
  for (auto _ : state) be->rmsnorm_forward(y, rstd, x, w, 1e-5);
  state.SetBytesProcessed(state.iterations() * 2 * x.bytes());
}
BENCHMARK(BM_CpuRmsnormForward)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_CpuRmsnormBackward(benchmark::State& state) {
  auto be = make_cpu_backend();
  Tensors t(*be);
  Tensor x = t.make({kTokens, kHidden}), w = t.make({kHidden}, 0.1, 1.0), dy = t.make({kTokens, kHidden});
  Tensor dx = t.make({kTokens, kHidden}), dw = t.make({kHidden}), rstd = t.make({kTokens}, 0.1, 1.0);
  for (auto _ : state) be->rmsnorm_backward(dx, dw, dy, x, w, rstd);
  state.SetBytesProcessed(state.iterations() * 4 * x.bytes());
}
BENCHMARK(BM_CpuRmsnormBackward)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_CpuSwigluForward(benchmark::State& state) {
  auto be = make_cpu_backend();
  Tensors t(*be);
  Tensor g = t.make({kTokens, kFfn}), u = t.make({kTokens, kFfn}), out = t.make({kTokens, kFfn});
  for (auto _ : state) be->swiglu_forward(out, g, u);
  state.SetBytesProcessed(state.iterations() * 3 * out.bytes());
}
BENCHMARK(BM_CpuSwigluForward)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_CpuSwigluBackward(benchmark::State& state) {
  auto be = make_cpu_backend();
  Tensors t(*be);
  const Shape s{kTokens, kFfn};
  Tensor g = t.make(s), u = t.make(s), dout = t.make(s), dg = t.make(s), du = t.make(s);
  for (auto _ : state) be->swiglu_backward(dg, du, dout, g, u);
  state.SetBytesProcessed(state.iterations() * 5 * g.bytes());
}
BENCHMARK(BM_CpuSwigluBackward)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_CpuCrossEntropyFused(benchmark::State& state) {
  auto be = make_cpu_backend();
  Tensors t(*be);
  Tensor logits = t.make({kTokens, kVocab}), losses = t.make({kTokens}), dlosses = t.make({kTokens}, 0.0, 1.0);
  Tensor targets = t.tokens(kTokens, kVocab);
  Tensor argmax = t.tokens(kTokens, kVocab);
  for (auto _ : state) {
    state.PauseTiming();
    Rng(5, RngPurpose::test, 0).fill_normal(logits.ptr<float>(), logits.numel(), 0.0, 2.0);  // fresh logits
    state.ResumeTiming();
    be->cross_entropy(logits, losses, argmax, targets, dlosses);
  }
  state.SetBytesProcessed(state.iterations() * 2 * logits.bytes());
}
BENCHMARK(BM_CpuCrossEntropyFused)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_CpuRopeForward(benchmark::State& state) {
  auto be = make_cpu_backend();
  Tensors t(*be);
  Tensor x = t.make({kBatch, kSeq, kHeads, kHeadDim});
  Tensor cos = t.make({kSeq, kHeadDim / 2}), sin = t.make({kSeq, kHeadDim / 2});
  for (auto _ : state) be->rope_forward(x, cos, sin, 0);
  state.SetBytesProcessed(state.iterations() * 2 * x.bytes());
}
BENCHMARK(BM_CpuRopeForward)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_CpuEmbeddingBackward(benchmark::State& state) {
  auto be = make_cpu_backend();
  Tensors t(*be);
  Tensor dtable = t.make({kVocab, kHidden}), dout = t.make({kTokens, kHidden});
  Tensor tokens = t.tokens(kTokens, kVocab);
  for (auto _ : state) be->embedding_backward(dtable, tokens, dout);
  state.SetBytesProcessed(state.iterations() * dout.bytes());
}
BENCHMARK(BM_CpuEmbeddingBackward)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_CpuAdamw(benchmark::State& state) {
  auto be = make_cpu_backend();
  Tensors t(*be);
  Tensor p = t.make({kParams}), g = t.make({kParams}), m = t.make({kParams}, 0.0), v = t.make({kParams}, 0.0);
  AdamWParams h;
  h.weight_decay = 0.1;
  for (auto _ : state) be->adamw_update(p, g, m, v, h, Tensor{});
  state.SetBytesProcessed(state.iterations() * 7 * p.bytes());
}
BENCHMARK(BM_CpuAdamw)->Unit(benchmark::kMicrosecond)->UseRealTime();

// The model's GEMMs: activations (T, in) @ W (out, in)^T, its dgrad and wgrad.
void BM_CpuGemm(benchmark::State& state) {
  const int64_t in = state.range(0), out = state.range(1), kind = state.range(2);
  auto be = make_cpu_backend();
  Tensors t(*be);
  Tensor x = t.make({kTokens, in}), w = t.make({out, in}), y = t.make({kTokens, out});
  for (auto _ : state) {
    if (kind == 0) be->gemm(y, x, false, w, true);             // forward
    else if (kind == 1) be->gemm(x, y, false, w, false);       // dx = dy W
    else be->gemm(w, y, true, x, false, 1.0, 1.0);             // dW += dy^T x
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(2.0 * kTokens * in * out, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_CpuGemm)
    ->ArgNames({"in", "out", "fwd0_dx1_dw2"})
    ->ArgsProduct({{256}, {512, 1536}, {0, 1, 2}})
    ->Args({768, 256, 0})
    ->Args({256, 256, 0})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
}  // namespace lumina
