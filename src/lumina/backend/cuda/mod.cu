// Mixture-of-Depths ops (backend.h, "mixture of depths") on the GPU.
//   mod_select_top_k:   two kernels. Rank: blocks of kRankThreads tokens of one
//                       sequence each (B x ceil(T / kRankThreads) blocks, so a
//                       few sequences still fill the GPU); the T scores sit in
//                       shared memory and token t's rank = #{u : s_u > s_t or
//                       (s_u = s_t and u < t)} (a total order: NaN counts as -inf),
//                       so exactly k ranks are < k; the flag goes to slot_row.
//                       Compact: one block per sequence walks its flags in t order,
//                       blockDim at a time (warp ballots, then the warp counts).
//                       Rank is O(T) per thread, bounded by shared memory (T floats).
//   mod_combine, mod_input_backward: one warp per token, 16-byte packs where C
//                       and the pointers allow; math in f32.
//   mod_predictor:      a fixed grid (from N alone) of per-thread f64 partials
//                       reduced per block (block_sum), then one block adds the
//                       block partials in order: deterministic.
// stat tensors (scores, gate, dgate, pred, sums) f32; x, ys, out, delta, dx, dxs,
// dscores, w and dpred: activation dtype (f32, bf16, f16); index tensors i32.
#include <algorithm>
#include <cmath>

#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/cuda_utils.cuh"
#include "lumina/backend/mod_checks.h"

namespace lumina {

namespace {

using namespace cuda;

constexpr int kRankThreads = 256;      // tokens ranked per block of mod_select_top_k
constexpr int kCompactThreads = 1024;  // threads per sequence of the compaction
constexpr int kWarps = 8;              // tokens in flight per block of the per-token kernels
constexpr int kPredictorThreads = 256;
constexpr int kPredictorMaxBlocks = 128;
constexpr int64_t kPredictorTokensPerBlock = kPredictorThreads;  // one token per thread up to the cap

__device__ __forceinline__ float rank_key(float s) { return isnan(s) ? -INFINITY : s; }

// Grid (ceil(T / kRankThreads), B): selected[b*T + t] = 1 if t's rank < k, else 0.
// Dynamic shared memory: T floats.
__global__ void __launch_bounds__(kRankThreads)
    mod_rank_kernel(int32_t* selected, const float* scores, int T, int k) {
  extern __shared__ float key[];  // (T) the sequence's rank keys
  const int64_t b = blockIdx.y;
  const float* s = scores + b * T;
  for (int u = threadIdx.x; u < T; u += blockDim.x) key[u] = rank_key(s[u]);
  __syncthreads();
  const int t = blockIdx.x * kRankThreads + static_cast<int>(threadIdx.x);
  if (t >= T) return;
  const float mine = key[t];
  int rank = 0;
  for (int u = 0; u < T; ++u) rank += key[u] > mine || (key[u] == mine && u < t);
  selected[b * T + t] = rank < k ? 1 : 0;
}

// One block per sequence: slot_row in: the flags, out: compact rows or -1; the other outputs.
__global__ void __launch_bounds__(kCompactThreads)
    mod_compact_kernel(int32_t* row_token, int32_t* positions, int32_t* slot_row, float* gate, const float* scores,
                       int T, int k) {
  __shared__ int warp_count[kCompactThreads / 32];
  __shared__ int chunk_base;
  const int64_t b = blockIdx.x;
  const int lane = static_cast<int>(threadIdx.x & 31u), warp = static_cast<int>(threadIdx.x >> 5);
  const int warps = static_cast<int>(blockDim.x >> 5);
  if (threadIdx.x == 0) chunk_base = 0;
  __syncthreads();
  for (int first = 0; first < T; first += blockDim.x) {  // blockDim consecutive tokens per round
    const int t = first + static_cast<int>(threadIdx.x);
    const int64_t n = b * T + t;
    const bool selected = t < T && slot_row[n] != 0;
    const unsigned ballot = __ballot_sync(0xffffffffu, selected);
    if (lane == 0) warp_count[warp] = __popc(ballot);
    __syncthreads();
    int before = chunk_base;  // selected tokens earlier in t order
    for (int w = 0; w < warp; ++w) before += warp_count[w];
    before += __popc(ballot & ((1u << lane) - 1u));
    if (t < T) {
      if (selected && before < k) {
        const int64_t row = b * k + before;
        row_token[row] = static_cast<int32_t>(n);
        positions[row] = t;
        slot_row[n] = static_cast<int32_t>(row);
        gate[n] = sigmoid(scores[n]);
      } else {
        slot_row[n] = -1;
        gate[n] = 0.0f;
      }
    }
    __syncthreads();  // every thread has read chunk_base and warp_count
    if (threadIdx.x == 0)
      for (int w = 0; w < warps; ++w) chunk_base += warp_count[w];
    __syncthreads();
  }
}

// out (N, packs*VEC); delta (R, packs*VEC), possibly ys itself.
template <class T, int VEC>
__global__ void __launch_bounds__(32 * kWarps)
    mod_combine_kernel(T* out, T* delta, const T* x, const T* ys, const int32_t* slot_row, const float* gate,
                       int64_t tokens, int64_t packs) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  for (int64_t n = first_warp<kWarps>(); n < tokens; n += warp_stride<kWarps>()) {
    const int32_t row = slot_row[n];
    const T* xn = x + n * packs * VEC;
    T* on = out + n * packs * VEC;
    if (row < 0) {
      for (int64_t p = lane; p < packs; p += 32) store_pack<VEC>(on + p * VEC, load_pack<VEC>(xn + p * VEC));
      continue;
    }
    const float g = gate[n];
    const T* yi = ys + static_cast<int64_t>(row) * packs * VEC;
    T* di = delta + static_cast<int64_t>(row) * packs * VEC;
    for (int64_t p = lane; p < packs; p += 32) {
      const Pack<T, VEC> xv = load_pack<VEC>(xn + p * VEC), yv = load_pack<VEC>(yi + p * VEC);
      Pack<T, VEC> dv, ov;
      for (int v = 0; v < VEC; ++v) {
        const float d = to_f32(yv.v[v]) - to_f32(xv.v[v]);
        dv.v[v] = from_f32<T>(d);
        ov.v[v] = from_f32<T>(to_f32(xv.v[v]) + g * d);
      }
      store_pack<VEC>(di + p * VEC, dv);
      store_pack<VEC>(on + p * VEC, ov);
    }
  }
}

// dx (N, packs*VEC) in place; dscores (N) and w (packs*VEC) may be null (no router).
template <class T, int VEC>
__global__ void __launch_bounds__(32 * kWarps)
    mod_input_backward_kernel(T* dx, T* dscores, const T* dxs, const float* dgate, const int32_t* slot_row,
                              const float* gate, const T* w, int64_t tokens, int64_t packs) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  for (int64_t n = first_warp<kWarps>(); n < tokens; n += warp_stride<kWarps>()) {
    const int32_t row = slot_row[n];
    if (row < 0) {
      if (dscores && lane == 0) dscores[n] = from_f32<T>(0.0f);
      continue;
    }
    const float g = gate[n], keep = 1.0f - g;
    // The rounded d r, as stored and as the router's weight gradient sees it.
    const T dscore_t = from_f32<T>(dscores ? dgate[n] * g * keep : 0.0f);
    const float dscore = to_f32(dscore_t);
    T* d = dx + n * packs * VEC;
    const T* di = dxs + static_cast<int64_t>(row) * packs * VEC;
    for (int64_t p = lane; p < packs; p += 32) {
      Pack<T, VEC> dv = load_pack<VEC>(d + p * VEC);
      const Pack<T, VEC> iv = load_pack<VEC>(di + p * VEC);
      Pack<T, VEC> wv;
      if (w) wv = load_pack<VEC>(w + p * VEC);
      for (int v = 0; v < VEC; ++v)
        dv.v[v] = from_f32<T>(keep * to_f32(dv.v[v]) + to_f32(iv.v[v]) + (w ? dscore * to_f32(wv.v[v]) : 0.0f));
      store_pack<VEC>(d + p * VEC, dv);
    }
    if (dscores && lane == 0) dscores[n] = dscore_t;
  }
}

// Per block: partial (2) = [sum BCE, agreements] of its tokens (f64); dpred (N) may be null.
template <class T>
__global__ void __launch_bounds__(kPredictorThreads)
    mod_predictor_kernel(T* dpred, double* partial, const float* pred, const int32_t* slot_row, int64_t tokens,
                         float dscale) {
  double bce = 0.0, agree = 0.0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t n = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; n < tokens; n += stride) {
    const float p = pred[n], y = slot_row[n] >= 0 ? 1.0f : 0.0f;
    bce += static_cast<double>(fmaxf(p, 0.0f) - y * p + log1pf(expf(-fabsf(p))));  // softplus(p) - y p
    agree += (p > 0.0f) == (y > 0.0f) ? 1.0 : 0.0;
    if (dpred) dpred[n] = from_f32<T>(dscale * (sigmoid(p) - y));
  }
  bce = block_sum(bce);
  agree = block_sum(agree);
  if (partial && threadIdx.x == 0) {
    partial[2 * blockIdx.x] = bce;
    partial[2 * blockIdx.x + 1] = agree;
  }
}

// sums (2) = the block partials added in block order.
__global__ void mod_predictor_sums_kernel(float* sums, const double* partial, int blocks) {
  double bce = 0.0, agree = 0.0;
  for (int i = 0; i < blocks; ++i) {
    bce += partial[2 * i];
    agree += partial[2 * i + 1];
  }
  sums[0] = static_cast<float>(bce);
  sums[1] = static_cast<float>(agree);
}

}  // namespace

void CudaBackend::mod_select_top_k(Tensor row_token, Tensor positions, Tensor slot_row, Tensor gate,
                                   const Tensor& scores, int64_t k) {
  const char* op = "mod_select_top_k";
  check_mod_select_top_k(row_token, positions, slot_row, gate, scores, k, op);
  for (const auto& [t, name] : {std::pair{&row_token, "row_token"}, {&positions, "positions"}, {&slot_row, "slot_row"}}) {
    expect_device(*t, op, name);
    expect_dtype(*t, DType::i32, op, name);
  }
  for (const auto& [t, name] : {std::pair<const Tensor*, const char*>{&gate, "gate"}, {&scores, "scores"}}) {
    expect_device(*t, op, name);
    expect_dtype(*t, DType::f32, op, name);
  }
  const int64_t B = scores.dim(0), T = scores.dim(1);
  if (B == 0) return;
  const int64_t max_shared = shared_memory_.per_block_optin;
  const int64_t shared_bytes = T * static_cast<int64_t>(sizeof(float));  // the scores
  LUMINA_CHECK(shared_bytes <= max_shared,
               "{}: a sequence of {} tokens does not fit the GPU's shared memory ({} bytes per block); learned "
               "MoD routing on CUDA takes up to {} tokens per sequence (shorten train.seq_len or use "
               "model.mod_routing_type = \"static\")",
               op, T, max_shared, max_shared / 4);
  LUMINA_CHECK(B <= 65535, "{}: {} sequences exceed the grid's 65535 (lower the batch size)", op, B);
  NvtxRange range(op);
  if (shared_bytes > 48 * 1024)
    LUMINA_CUDA_CHECK(cudaFuncSetAttribute(mod_rank_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(shared_bytes)));
  auto* sr = static_cast<int32_t*>(slot_row.data);
  const auto* s = static_cast<const float*>(scores.data);
  const dim3 rank_grid(static_cast<unsigned>((T + kRankThreads - 1) / kRankThreads), static_cast<unsigned>(B));
  mod_rank_kernel<<<rank_grid, kRankThreads, static_cast<size_t>(shared_bytes), stream_>>>(sr, s, static_cast<int>(T),
                                                                                          static_cast<int>(k));
  LUMINA_CUDA_CHECK_LAUNCH();
  const int threads = static_cast<int>(std::min<int64_t>(kCompactThreads, (T + 31) / 32 * 32));
  mod_compact_kernel<<<static_cast<unsigned>(B), threads, 0, stream_>>>(
      static_cast<int32_t*>(row_token.data), static_cast<int32_t*>(positions.data), sr, static_cast<float*>(gate.data),
      s, static_cast<int>(T), static_cast<int>(k));
  LUMINA_CUDA_CHECK_LAUNCH();
}

void CudaBackend::mod_combine(Tensor out, Tensor delta, const Tensor& x, const Tensor& ys, const Tensor& slot_row,
                              const Tensor& gate) {
  const char* op = "mod_combine";
  check_mod_combine(out, delta, x, ys, slot_row, gate, op);
  for (const auto& [t, name] : {std::pair<const Tensor*, const char*>{&out, "out"}, {&delta, "delta"}, {&x, "x"},
                                {&ys, "ys"}}) {
    expect_device(*t, op, name);
    expect_dtype(*t, x.dtype, op, name);
  }
  expect_device(gate, op, "gate");
  expect_dtype(gate, DType::f32, op, "gate");
  expect_device(slot_row, op, "slot_row");
  expect_dtype(slot_row, DType::i32, op, "slot_row");
  const int64_t N = x.dim(0), C = x.dim(1);
  if (N == 0 || C == 0) return;
  NvtxRange range(op);
  const unsigned blocks = grid_blocks(N, kWarps, 16LL * multiprocessor_count_);
  dispatch_float(x.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    dispatch_vec<T>(C, {out.data, delta.data, x.data, ys.data}, [&](auto vec) {
      constexpr int kVec = decltype(vec)::value;
      mod_combine_kernel<T, kVec><<<blocks, 32 * kWarps, 0, stream_>>>(
          static_cast<T*>(out.data), static_cast<T*>(delta.data), static_cast<const T*>(x.data),
          static_cast<const T*>(ys.data), static_cast<const int32_t*>(slot_row.data),
          static_cast<const float*>(gate.data), N, C / kVec);
    });
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::mod_input_backward(Tensor dx, Tensor dscores, const Tensor& dxs, const Tensor& dgate,
                                     const Tensor& slot_row, const Tensor& gate, const Tensor& w) {
  const char* op = "mod_input_backward";
  check_mod_input_backward(dx, dscores, dxs, dgate, slot_row, gate, w, op);
  expect_device(dx, op, "dx");
  expect_device(dxs, op, "dxs");
  expect_dtype(dxs, dx.dtype, op, "dxs");
  if (!dscores.empty()) {
    for (const auto& [t, name] : {std::pair<const Tensor*, const char*>{&dscores, "dscores"}, {&w, "w"}}) {
      expect_device(*t, op, name);
      expect_dtype(*t, dx.dtype, op, name);
    }
  }
  for (const auto& [t, name] : {std::pair<const Tensor*, const char*>{&dgate, "dgate"}, {&gate, "gate"}}) {
    expect_device(*t, op, name);
    expect_dtype(*t, DType::f32, op, name);
  }
  expect_device(slot_row, op, "slot_row");
  expect_dtype(slot_row, DType::i32, op, "slot_row");
  const int64_t N = dx.dim(0), C = dx.dim(1);
  if (N == 0) return;
  NvtxRange range(op);
  const unsigned blocks = grid_blocks(N, kWarps, 16LL * multiprocessor_count_);
  dispatch_float(dx.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    dispatch_vec<T>(C, {dx.data, dxs.data, w.empty() ? nullptr : w.data}, [&](auto vec) {
      constexpr int kVec = decltype(vec)::value;
      mod_input_backward_kernel<T, kVec><<<blocks, 32 * kWarps, 0, stream_>>>(
          static_cast<T*>(dx.data), static_cast<T*>(dscores.data), static_cast<const T*>(dxs.data),
          static_cast<const float*>(dgate.data), static_cast<const int32_t*>(slot_row.data),
          static_cast<const float*>(gate.data), static_cast<const T*>(w.data), N, C / kVec);
    });
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::mod_predictor(Tensor dpred, Tensor sums, const Tensor& pred, const Tensor& slot_row, double dscale) {
  const char* op = "mod_predictor";
  check_mod_predictor(dpred, sums, pred, slot_row, op);
  expect_device(pred, op, "pred");
  expect_dtype(pred, DType::f32, op, "pred");
  expect_device(slot_row, op, "slot_row");
  expect_dtype(slot_row, DType::i32, op, "slot_row");
  if (!sums.empty()) {
    expect_device(sums, op, "sums");
    expect_dtype(sums, DType::f32, op, "sums");
  }
  if (!dpred.empty()) expect_device(dpred, op, "dpred");
  NvtxRange range(op);
  const int64_t N = pred.numel();
  // The grid depends on N alone, so the sums' order does too.
  const int blocks = static_cast<int>(
      std::clamp<int64_t>((N + kPredictorTokensPerBlock - 1) / kPredictorTokensPerBlock, 1, kPredictorMaxBlocks));
  auto* partial = sums.empty() ? nullptr
                               : static_cast<double*>(scratch(2 * static_cast<size_t>(blocks) * sizeof(double), op));
  dispatch_float(dpred.empty() ? DType::f32 : dpred.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    mod_predictor_kernel<T><<<static_cast<unsigned>(blocks), kPredictorThreads, 0, stream_>>>(
        static_cast<T*>(dpred.data), partial, static_cast<const float*>(pred.data),
        static_cast<const int32_t*>(slot_row.data), N, static_cast<float>(dscale));
    LUMINA_CUDA_CHECK_LAUNCH();
  });
  if (sums.empty()) return;
  mod_predictor_sums_kernel<<<1, 1, 0, stream_>>>(static_cast<float*>(sums.data), partial, blocks);
  LUMINA_CUDA_CHECK_LAUNCH();
}

}  // namespace lumina
