#pragma once
// Causal grouped-query attention (bf16/f16) on cuDNN's fused flash-attention
// engines, forward and backward, written as cuDNN backend operation graphs
// (matmul -> scale -> causal mask -> softmax with log-sum-exp -> matmul, and
// the matching backward graph). GQA runs without copies: K/V carry fewer
// heads and the backward sums dk/dv over each group inside cuDNN.
//
// Only q_len == kv_len (training, evaluation, a prompt's first prefill): a
// plan is built per shape (0.1 to 3 s on an H100, kernel compilation), which
// KV-cache calls, whose kv_len grows every call, cannot afford.
//
// Execution plans are cached by (shape, dtype, direction), at most kMaxPlans
// (the cache starts over beyond that). Autotuning: a shape's first call times
// the heuristic's top kMaxCandidates engine configurations on the real tensors
// and keeps the fastest for every call, the first included (the choice can
// differ between processes; LUMINA_ATTENTION_AUTOTUNE=0 keeps the heuristic's
// first). On an H100 the second-ranked forward configuration is ~8% faster
// than the first at head dim 64, T 1024. One workspace buffer is allocated
// lazily and grown only when a new shape needs more: cuDNN's own workspace plus
// f32 (B,Hq,T) row sums and the f32 (B,Hq,T,D) dq accumulator of the backward.
// cuDNN accumulates dq with float atomics: the backward is not bitwise
// deterministic (the reference kernels in attention_reference.h are).
#include <cuda_runtime.h>
#include <cudnn.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "lumina/backend/cuda/attention_shape.h"
#include "lumina/core/dtype.h"

namespace lumina {

class CudnnAttention {
 public:
  CudnnAttention();  // creates a cuDNN handle on the current device
  ~CudnnAttention();
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;

  // Why cuDNN's fused attention cannot take this call, "" when it can. Static
  // limits are checked first; otherwise the graph is built (once per shape) and
  // a graph that no cuDNN engine accepts is remembered with cuDNN's reason.
  std::string unsupported_reason(const AttentionShape& shape, DType dtype, bool backward);

  // Device memory of the workspace now (it only grows), in bytes.
  size_t workspace_bytes() const { return workspace_bytes_; }

  // Version of the loaded cuDNN library, e.g. 91400 for 9.14.0.
  static int64_t library_version();

  // The calls below require unsupported_reason(...) == "" for their arguments.
  // out (B,T,Hq,D), lse (B,Hq,T) f32 <- q (B,T,Hq,D), k/v (B,T,Hkv,D).
  void forward(const AttentionShape& shape, DType dtype, void* out, float* lse, const void* q, const void* k,
               const void* v, cudaStream_t stream);
  // dq (B,T,Hq,D), dk/dv (B,T,Hkv,D) overwritten.
  void backward(const AttentionShape& shape, DType dtype, void* dq, void* dk, void* dv, const void* dout,
                const void* q, const void* k, const void* v, const void* out, const float* lse,
                cudaStream_t stream);

  struct Plan;  // a built graph, its execution plan and how to bind its tensors
  static constexpr size_t kMaxPlans = 64;
  static constexpr size_t kMaxCandidates = 3;

 private:
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, DType, bool>;
  Plan* find_or_build(const AttentionShape& shape, DType dtype, bool backward);  // nullptr: see failures_
  void* workspace(size_t bytes, cudaStream_t stream);

  cudnnHandle_t handle_ = nullptr;
  bool autotune_ = true;
  std::map<Key, std::unique_ptr<Plan>> plans_;
  std::map<Key, std::string> failures_;  // graphs no engine accepted, with cuDNN's reason
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
};

}  // namespace lumina
