#include "lumina/backend/cuda/attention_cudnn.h"

#include <fmt/format.h>

#include <array>
#include <cstdlib>
#include <limits>
#include <string_view>
#include <utility>
#include <vector>

#include "lumina/backend/cuda/attention_cudnn_graph.h"
#include "lumina/core/error.h"

// The graphs follow the node patterns that cuDNN's fused flash-attention
// engines recognise (the same graphs cuDNN's frontend library builds for its
// SDPA nodes): tensors are 4-d (batch, heads, sequence, head_dim), the BSHD
// memory layout is expressed through strides, and K (and V in the backward)
// enter the first matmul transposed, (B, Hkv, D, T), again through strides.

namespace lumina {

using cudnn_graph::Dims;
using cudnn_graph::TensorRef;

namespace {

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail("CUDA: {} failed: {}", what, cudaGetErrorString(status));
}

cudnnDataType_t cudnn_type(DType t) {
  switch (t) {
    case DType::bf16: return CUDNN_DATA_BFLOAT16;
    case DType::f16: return CUDNN_DATA_HALF;
    default: fail("cuDNN attention takes bf16 or f16 tensors, got {}", dtype_name(t));
  }
}

constexpr size_t kAlignBytes = 256;
size_t align_up(size_t bytes) { return (bytes + kAlignBytes - 1) / kAlignBytes * kAlignBytes; }

// Strides of a (batch, heads, len, dim) view of contiguous (batch, len, heads, dim) memory.
Dims bshd_strides(int64_t len, int64_t heads, int64_t dim) { return {len * heads * dim, dim, heads * dim, 1}; }
// The same memory viewed transposed: (batch, heads, dim, len).
Dims transposed(const Dims& s) { return {s[0], s[1], s[3], s[2]}; }

// cuDNN 9.15.0 and older need an explicit padding mask in the backward graph
// when the key length is not a multiple of 128 (cuDNN's frontend adds the same).
bool needs_padding_workaround(const AttentionShape& s) {
  return CudnnAttention::library_version() <= 91500 && s.kv_len % 128 != 0;
}

}  // namespace

struct CudnnAttention::Plan {
  cudnn_graph::OpGraphBuilder graph;
  // The heuristic's candidates (kMaxCandidates at most, the first ranked first) until
  // the first run times them; then only the fastest, which every run uses.
  std::vector<std::unique_ptr<cudnn_graph::ExecutionPlan>> candidates;
  const cudnn_graph::ExecutionPlan& exec() const { return *candidates.front(); }
  // uids of the caller's tensors (0 = not in this graph)
  int64_t q = 0, k = 0, v = 0, out = 0, lse = 0, dout = 0, dq = 0, dk = 0, dv = 0;
  // by-value scalars: (uid, host address inside this plan)
  std::vector<std::pair<int64_t, void*>> scalars;
  std::array<float, 8> float_values{};
  int used_floats = 0;
  // f32 scratch tensors inside our workspace: (uid, byte offset)
  std::vector<std::pair<int64_t, size_t>> scratch;
  size_t scratch_bytes = 0;
  // per-batch sequence lengths for the padding workaround: device int32 (2, B), q then kv
  int32_t* sequence_lengths = nullptr;
  int64_t seq_q = 0, seq_kv = 0;
  int64_t batch = 0;

  ~Plan() {
    if (sequence_lengths) cudaFree(sequence_lengths);
  }

  TensorRef float_scalar(float value) {
    LUMINA_CHECK(used_floats < static_cast<int>(float_values.size()), "attention plan: too many float scalars");
    float_values[static_cast<size_t>(used_floats)] = value;
    TensorRef t = graph.scalar(CUDNN_DATA_FLOAT);
    scalars.emplace_back(t.uid, &float_values[static_cast<size_t>(used_floats++)]);
    return t;
  }
  // A non-virtual f32 tensor that lives in the workspace (before cuDNN's own part).
  TensorRef scratch_tensor(const Dims& dims, const Dims& strides) {
    TensorRef t = graph.tensor(dims, strides, CUDNN_DATA_FLOAT, false);
    scratch.emplace_back(t.uid, scratch_bytes);
    scratch_bytes += align_up(static_cast<size_t>(dims[0] * dims[1] * dims[2] * dims[3]) * sizeof(float));
    return t;
  }

  // (B,H,T,T) scores -> scores with every key after the query's position set to the lowest float.
  TensorRef causal_mask(TensorRef scores, const Dims& dims) {
    TensorRef row = graph.virtual_tensor(dims, CUDNN_DATA_INT32);
    graph.gen_index(2, CUDNN_DATA_FLOAT, scores, row);
    TensorRef col = graph.virtual_tensor(dims, CUDNN_DATA_INT32);
    graph.gen_index(3, CUDNN_DATA_FLOAT, scores, col);
    TensorRef keep = graph.virtual_tensor(dims, CUDNN_DATA_BOOLEAN);
    graph.pointwise(CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, row, col, keep);
    TensorRef masked = graph.virtual_tensor(dims, CUDNN_DATA_FLOAT);
    graph.pointwise_select(scores, float_scalar(std::numeric_limits<float>::lowest()), keep, masked);
    return masked;
  }

  // Padding mask over (B,H,T,T) scores: rows >= seq_q[b] or columns >= seq_kv[b] -> lowest float.
  TensorRef padding_mask(TensorRef scores, const Dims& dims, TensorRef seq_q_t, TensorRef seq_kv_t) {
    TensorRef row = graph.virtual_tensor(dims, CUDNN_DATA_INT32);
    graph.gen_index(2, CUDNN_DATA_INT32, scores, row);
    TensorRef col = graph.virtual_tensor(dims, CUDNN_DATA_INT32);
    graph.gen_index(3, CUDNN_DATA_INT32, scores, col);
    TensorRef row_ok = graph.virtual_tensor(dims, CUDNN_DATA_BOOLEAN);
    graph.pointwise(CUDNN_POINTWISE_CMP_LT, CUDNN_DATA_BOOLEAN, row, seq_q_t, row_ok);
    TensorRef col_ok = graph.virtual_tensor(dims, CUDNN_DATA_BOOLEAN);
    graph.pointwise(CUDNN_POINTWISE_CMP_LT, CUDNN_DATA_BOOLEAN, col, seq_kv_t, col_ok);
    TensorRef keep = graph.virtual_tensor(dims, CUDNN_DATA_BOOLEAN);
    graph.pointwise(CUDNN_POINTWISE_LOGICAL_AND, CUDNN_DATA_BOOLEAN, row_ok, col_ok, keep);
    TensorRef masked = graph.virtual_tensor(dims, CUDNN_DATA_FLOAT);
    graph.pointwise_select(scores, float_scalar(std::numeric_limits<float>::lowest()), keep, masked);
    return masked;
  }

  // Binds the plan's own tensors (scalars, scratch, sequence lengths) after the caller's.
  void bind_internal(std::vector<int64_t>& uids, std::vector<void*>& pointers, char* scratch_base) const {
    for (const auto& [uid, value] : scalars) {
      uids.push_back(uid);
      pointers.push_back(value);
    }
    for (const auto& [uid, offset] : scratch) {
      uids.push_back(uid);
      pointers.push_back(scratch_base + offset);
    }
    if (sequence_lengths) {
      uids.push_back(seq_q);
      pointers.push_back(sequence_lengths);
      uids.push_back(seq_kv);
      pointers.push_back(sequence_lengths + batch);
    }
  }
};

namespace {

using Plan = CudnnAttention::Plan;

// Forward (T = q_len = kv_len):
//   S = Q K^T * scale -> causal mask -> P = softmax(S), lse = max + log(sum exp) -> O = P V.
void build_forward(Plan& p, const AttentionShape& s, cudnnDataType_t io) {
  auto& g = p.graph;
  const int64_t B = s.batch, H = s.q_heads, Hkv = s.kv_heads, T = s.q_len, D = s.head_dim;
  const Dims q_strides = bshd_strides(T, H, D);
  const Dims kv_strides = bshd_strides(T, Hkv, D);
  const TensorRef q = g.tensor({B, H, T, D}, q_strides, io, false);
  const TensorRef kt = g.tensor({B, Hkv, D, T}, transposed(kv_strides), io, false);
  const TensorRef v = g.tensor({B, Hkv, T, D}, kv_strides, io, false);
  const TensorRef o = g.tensor({B, H, T, D}, q_strides, io, false);
  const TensorRef lse = g.tensor({B, H, T, 1}, {H * T, T, 1, 1}, CUDNN_DATA_FLOAT, false);

  const Dims scores = {B, H, T, T};
  const Dims rows = {B, H, T, 1};
  const TensorRef qk = g.virtual_tensor(scores, CUDNN_DATA_FLOAT);
  g.matmul(q, kt, qk);
  const TensorRef scaled = g.virtual_tensor(scores, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, qk, p.float_scalar(s.scale()), scaled);
  const TensorRef masked = p.causal_mask(scaled, scores);

  const TensorRef row_max = g.virtual_tensor(rows, CUDNN_DATA_FLOAT);
  g.reduction(CUDNN_REDUCE_TENSOR_MAX, masked, row_max);
  const TensorRef centered = g.virtual_tensor(scores, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_SUB, CUDNN_DATA_FLOAT, masked, row_max, centered);
  const TensorRef exps = g.virtual_tensor(scores, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_EXP, CUDNN_DATA_FLOAT, centered, exps);
  const TensorRef row_sum = g.virtual_tensor(rows, CUDNN_DATA_FLOAT);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, exps, row_sum);
  const TensorRef log_sum = g.virtual_tensor(rows, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_LOG, CUDNN_DATA_FLOAT, row_sum, log_sum);
  g.pointwise(CUDNN_POINTWISE_ADD, CUDNN_DATA_FLOAT, row_max, log_sum, lse);
  const TensorRef probs = g.virtual_tensor(scores, io);
  g.pointwise(CUDNN_POINTWISE_DIV, CUDNN_DATA_FLOAT, exps, row_sum, probs);
  g.matmul(probs, v, o);

  p.q = q.uid;
  p.k = kt.uid;
  p.v = v.uid;
  p.out = o.uid;
  p.lse = lse.uid;
}

// Backward (T = q_len = kv_len), with P recomputed from the saved lse:
//   delta = rowsum(dO * O);  P = exp(mask(S * scale) - lse)
//   dV = P^T dO;  dS = P * (dO V^T - delta) * scale;  dK = dS^T Q;  dQ = dS K
// With GQA the per-query-head dK/dV are summed over each group by a reduction.
void build_backward(Plan& p, const AttentionShape& s, cudnnDataType_t io) {
  auto& g = p.graph;
  const int64_t B = s.batch, H = s.q_heads, Hkv = s.kv_heads, T = s.q_len, D = s.head_dim;
  const Dims q_strides = bshd_strides(T, H, D);
  const Dims kv_strides = bshd_strides(T, Hkv, D);
  const TensorRef q = g.tensor({B, H, T, D}, q_strides, io, false);
  const TensorRef kt = g.tensor({B, Hkv, D, T}, transposed(kv_strides), io, false);
  const TensorRef vt = g.tensor({B, Hkv, D, T}, transposed(kv_strides), io, false);
  const TensorRef o = g.tensor({B, H, T, D}, q_strides, io, false);
  const TensorRef d_o = g.tensor({B, H, T, D}, q_strides, io, false);
  const TensorRef lse = g.tensor({B, H, T, 1}, {H * T, T, 1, 1}, CUDNN_DATA_FLOAT, false);
  const TensorRef dq = g.tensor({B, H, T, D}, q_strides, io, false);
  const TensorRef dk = g.tensor({B, Hkv, T, D}, kv_strides, io, false);
  const TensorRef dv = g.tensor({B, Hkv, T, D}, kv_strides, io, false);

  const Dims scores = {B, H, T, T};
  const Dims scores_t_strides = {H * T * T, T * T, 1, T};  // (B,H,Tk,Tq) view of (B,H,Tq,Tk)
  const Dims rows = {B, H, T, 1};
  const Dims full_heads = {B, H, T, D};
  const TensorRef scale = p.float_scalar(s.scale());

  TensorRef seq_q{}, seq_kv{};
  const bool padded = needs_padding_workaround(s);
  if (padded) {
    seq_q = g.tensor({B, 1, 1, 1}, {1, 1, 1, 1}, CUDNN_DATA_INT32, false);
    seq_kv = g.tensor({B, 1, 1, 1}, {1, 1, 1, 1}, CUDNN_DATA_INT32, false);
  }
  const TensorRef* len_q = padded ? &seq_q : nullptr;
  const TensorRef* len_kv = padded ? &seq_kv : nullptr;

  // delta = rowsum(dO * O), kept in the workspace for the dS stage.
  const TensorRef do_o = g.tensor(full_heads, {H * T * D, T * D, H * D, 1}, CUDNN_DATA_FLOAT, true);
  g.pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, d_o, o, do_o);
  const TensorRef row_dot = g.virtual_tensor(rows, CUDNN_DATA_FLOAT);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, do_o, row_dot);
  const TensorRef delta = p.scratch_tensor(rows, {H * T, T, 1, 1});
  g.pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, row_dot, p.float_scalar(1.0f), delta);

  // P = exp(mask(Q K^T * scale) - lse)
  const TensorRef qk = g.virtual_tensor(scores, CUDNN_DATA_FLOAT);
  g.matmul(q, kt, qk, len_q, len_kv);
  const TensorRef scaled = g.virtual_tensor(scores, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, qk, scale, scaled);
  TensorRef centered = g.virtual_tensor(scores, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_SUB, CUDNN_DATA_FLOAT, scaled, lse, centered);
  if (padded) centered = p.padding_mask(centered, scores, seq_q, seq_kv);
  const TensorRef masked = p.causal_mask(centered, scores);
  const TensorRef probs = g.virtual_tensor(scores, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_EXP, CUDNN_DATA_FLOAT, masked, probs);

  // out = scores^T rhs for a (B, H, T, T) score-shaped tensor, summed over each
  // head group for GQA: dV from P and dO, dK from dS and Q.
  const auto transposed_matmul = [&](const TensorRef& scores_like, const TensorRef& rhs, const TensorRef& out) {
    const TensorRef transposed = g.tensor({B, H, T, T}, scores_t_strides, io, true);
    g.reshape(scores_like, transposed);
    if (H == Hkv) {
      g.matmul(transposed, rhs, out, len_kv, nullptr, len_q);
      return;
    }
    const TensorRef per_head = g.virtual_tensor(full_heads, io);
    g.matmul(transposed, rhs, per_head, len_kv, nullptr, len_q);
    g.reduction(CUDNN_REDUCE_TENSOR_ADD, per_head, out);
  };

  // dV = P^T dO
  transposed_matmul(probs, d_o, dv);

  // dS = P * (dO V^T - delta) * scale
  const TensorRef dp = g.virtual_tensor(scores, CUDNN_DATA_FLOAT);
  g.matmul(d_o, vt, dp, len_q, len_kv);
  const TensorRef dp_centered = g.virtual_tensor(scores, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_SUB, CUDNN_DATA_FLOAT, dp, delta, dp_centered);
  const TensorRef dp_probs = g.virtual_tensor(scores, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, dp_centered, probs, dp_probs);
  const TensorRef ds = g.virtual_tensor(scores, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, dp_probs, scale, ds);

  // dK = dS^T Q
  transposed_matmul(ds, q, dk);

  // dQ = dS K, accumulated in f32 in the workspace, then converted.
  const TensorRef k_rows = g.tensor({B, Hkv, T, D}, kv_strides, CUDNN_DATA_FLOAT, true);
  g.reshape(kt, k_rows);
  const TensorRef dq_accum = p.scratch_tensor(full_heads, {H * T * D, T * D, D, 1});
  g.matmul(ds, k_rows, dq_accum, len_q, nullptr, len_kv);
  g.pointwise(CUDNN_POINTWISE_IDENTITY, CUDNN_DATA_FLOAT, dq_accum, dq);

  p.q = q.uid;
  p.k = kt.uid;
  p.v = vt.uid;
  p.out = o.uid;
  p.dout = d_o.uid;
  p.lse = lse.uid;
  p.dq = dq.uid;
  p.dk = dk.uid;
  p.dv = dv.uid;
  if (padded) {
    p.seq_q = seq_q.uid;
    p.seq_kv = seq_kv.uid;
  }
}

}  // namespace

// ---- CudnnAttention -------------------------------------------------------------

CudnnAttention::CudnnAttention() {
  const char* autotune = std::getenv("LUMINA_ATTENTION_AUTOTUNE");
  autotune_ = autotune == nullptr || std::string_view(autotune) != "0";
  cudnn_graph::check(cudnnCreate(&handle_), "cudnnCreate");
}

CudnnAttention::~CudnnAttention() {
  plans_.clear();
  if (workspace_) cudaFree(workspace_);
  if (handle_) cudnnDestroy(handle_);
}

int64_t CudnnAttention::library_version() { return static_cast<int64_t>(cudnnGetVersion()); }

std::string CudnnAttention::unsupported_reason(const AttentionShape& s, DType dtype, bool backward) {
  if (dtype != DType::bf16 && dtype != DType::f16)
    return fmt::format("dtype {} (cuDNN takes bf16/f16)", dtype_name(dtype));
  if (s.head_dim % 8 != 0 || s.head_dim > 256)
    return fmt::format("head_dim {} (cuDNN needs a multiple of 8, at most 256)", s.head_dim);
  if (s.q_len != s.kv_len)
    return "q_len < kv_len (KV-cache calls change kv_len every call; each new shape would need a cuDNN plan build)";
  if (s.empty() || find_or_build(s, dtype, backward)) return "";
  return failures_.at(Key{s.batch, s.q_len, s.kv_len, s.q_heads, s.kv_heads, s.head_dim, dtype, backward});
}

CudnnAttention::Plan* CudnnAttention::find_or_build(const AttentionShape& s, DType dtype, bool backward) {
  const Key key{s.batch, s.q_len, s.kv_len, s.q_heads, s.kv_heads, s.head_dim, dtype, backward};
  if (auto it = plans_.find(key); it != plans_.end()) return it->second.get();
  if (failures_.count(key)) return nullptr;
  if (plans_.size() >= kMaxPlans) {
    // Plans hold compiled kernels: bound them. Rare (many distinct shapes), so simply start over.
    check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize (attention plan cache reset)");
    plans_.clear();
  }

  auto p = std::make_unique<Plan>();
  p->batch = s.batch;
  if (backward) {
    build_backward(*p, s, cudnn_type(dtype));
  } else {
    build_forward(*p, s, cudnn_type(dtype));
  }
  std::string why_not;
  p->candidates = cudnn_graph::ExecutionPlan::candidates(handle_, p->graph.build(handle_),
                                                         autotune_ ? kMaxCandidates : 1, &why_not);
  if (p->candidates.empty()) {
    failures_[key] = why_not;
    return nullptr;
  }
  if (p->seq_q) {
    const std::vector<int32_t> lengths(static_cast<size_t>(2 * s.batch), static_cast<int32_t>(s.q_len));
    check_cuda(cudaMalloc(&p->sequence_lengths, lengths.size() * sizeof(int32_t)), "cudaMalloc (sequence lengths)");
    check_cuda(cudaMemcpy(p->sequence_lengths, lengths.data(), lengths.size() * sizeof(int32_t),
                          cudaMemcpyHostToDevice),
               "cudaMemcpy (sequence lengths)");
  }
  return plans_.emplace(key, std::move(p)).first->second.get();
}

void* CudnnAttention::workspace(size_t bytes, cudaStream_t stream) {
  if (bytes <= workspace_bytes_) return workspace_;
  if (workspace_) {
    check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize (attention workspace growth)");
    check_cuda(cudaFree(workspace_), "cudaFree (attention workspace)");
    workspace_ = nullptr;
    workspace_bytes_ = 0;
  }
  check_cuda(cudaMalloc(&workspace_, bytes), "cudaMalloc (attention workspace)");
  workspace_bytes_ = bytes;
  return workspace_;
}

namespace {

Plan& checked_plan(Plan* p) {
  LUMINA_CHECK(p, "cuDNN attention called for a shape it cannot run (ask unsupported_reason first)");
  return *p;
}

// Runs a plan: the caller's tensors first, then the plan's own; workspace = [scratch | cuDNN's].
void run_plan(cudnnHandle_t handle, const Plan& p, std::vector<int64_t> uids, std::vector<void*> pointers,
              char* workspace) {
  p.bind_internal(uids, pointers, workspace);
  cudnn_graph::execute(handle, p.exec(), uids, pointers, workspace + p.scratch_bytes);
}

// Runs every candidate of p on the caller's tensors (each overwrites the outputs):
// one untimed run, then kTimedRuns back to back; keeps the fastest. Every
// candidate fits the workspace of the first (ExecutionPlan::candidates).
void keep_fastest(cudnnHandle_t handle, Plan& p, const std::vector<int64_t>& uids, const std::vector<void*>& pointers,
                  char* workspace, cudaStream_t stream) {
  constexpr int kTimedRuns = 3;
  cudaEvent_t start = nullptr, stop = nullptr;
  check_cuda(cudaEventCreate(&start), "cudaEventCreate");
  check_cuda(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<int64_t> all_uids = uids;
  std::vector<void*> all_pointers = pointers;
  p.bind_internal(all_uids, all_pointers, workspace);
  size_t best = 0;
  float best_ms = 0.0f;
  for (size_t i = 0; i < p.candidates.size(); ++i) {
    auto launch = [&] {
      cudnn_graph::execute(handle, *p.candidates[i], all_uids, all_pointers, workspace + p.scratch_bytes);
    };
    launch();
    check_cuda(cudaEventRecord(start, stream), "cudaEventRecord");
    for (int r = 0; r < kTimedRuns; ++r) launch();
    check_cuda(cudaEventRecord(stop, stream), "cudaEventRecord");
    check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0.0f;
    check_cuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    if (i == 0 || ms < best_ms) {
      best_ms = ms;
      best = i;
    }
  }
  cudaEventDestroy(stop);
  cudaEventDestroy(start);
  std::swap(p.candidates.front(), p.candidates[best]);
  p.candidates.resize(1);
}

}  // namespace

void CudnnAttention::forward(const AttentionShape& s, DType dtype, void* out, float* lse, const void* q,
                             const void* k, const void* v, cudaStream_t stream) {
  if (s.empty()) return;
  LUMINA_CHECK(s.q_len == s.kv_len, "cuDNN attention needs q_len == kv_len, got {} and {}", s.q_len, s.kv_len);
  Plan& p = checked_plan(find_or_build(s, dtype, false));
  char* ws = static_cast<char*>(workspace(p.scratch_bytes + static_cast<size_t>(p.exec().workspace_bytes()), stream));
  cudnn_graph::check(cudnnSetStream(handle_, stream), "cudnnSetStream");
  const std::vector<int64_t> uids = {p.q, p.k, p.v, p.out, p.lse};
  const std::vector<void*> pointers = {const_cast<void*>(q), const_cast<void*>(k), const_cast<void*>(v), out, lse};
  if (p.candidates.size() > 1) keep_fastest(handle_, p, uids, pointers, ws, stream);
  run_plan(handle_, p, uids, pointers, ws);
}

void CudnnAttention::backward(const AttentionShape& s, DType dtype, void* dq, void* dk, void* dv, const void* dout,
                              const void* q, const void* k, const void* v, const void* out, const float* lse,
                              cudaStream_t stream) {
  if (s.empty()) return;
  LUMINA_CHECK(s.q_len == s.kv_len, "cuDNN attention needs q_len == kv_len, got {} and {}", s.q_len, s.kv_len);
  Plan& p = checked_plan(find_or_build(s, dtype, true));
  char* ws = static_cast<char*>(workspace(p.scratch_bytes + static_cast<size_t>(p.exec().workspace_bytes()), stream));
  cudnn_graph::check(cudnnSetStream(handle_, stream), "cudnnSetStream");
  const std::vector<int64_t> uids = {p.q, p.k, p.v, p.out, p.dout, p.lse, p.dq, p.dk, p.dv};
  const std::vector<void*> pointers = {const_cast<void*>(q),    const_cast<void*>(k),      const_cast<void*>(v),
                                       const_cast<void*>(out),  const_cast<void*>(dout), const_cast<float*>(lse),
                                       dq,                      dk,                      dv};
  if (p.candidates.size() > 1) keep_fastest(handle_, p, uids, pointers, ws, stream);
  run_plan(handle_, p, uids, pointers, ws);
}

}  // namespace lumina
