// CudaBackend::attention_forward / attention_backward: tensor checks and the
// choice between cuDNN's fused attention and the reference kernels (attention.h).
//
// Invariants: out, lse, dq, dk, dv are overwritten; the backward needs
// q_len == kv_len; every kernel runs on the backend's stream.
#include "lumina/backend/cuda/attention.h"

#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "lumina/backend/cuda/attention_cudnn.h"
#include "lumina/backend/cuda/attention_decode.h"
#include "lumina/backend/cuda/attention_reference.h"
#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/cuda_utils.cuh"
#include "lumina/core/log.h"

namespace lumina {
namespace {

// cuDNN state of one GPU. Created on first use and kept until the process exits:
// destroying cuDNN handles during static destruction is not safe.
struct DeviceAttention {
  std::mutex mutex;  // guards everything below
  std::unique_ptr<CudnnAttention> cudnn;
  // Recorded after each cuDNN run; the next run waits for it, so backends on
  // different streams never share the workspace at the same time.
  cudaEvent_t last_run = nullptr;
  std::set<std::string> warned;  // fallback warnings already logged
};

std::mutex& registry_mutex() {
  static std::mutex mutex;
  return mutex;
}

// Guarded by registry_mutex().
std::map<int, std::unique_ptr<DeviceAttention>>& registry() {
  static auto* devices = new std::map<int, std::unique_ptr<DeviceAttention>>();  // never destroyed, see above
  return *devices;
}

DeviceAttention& device_attention(int device) {
  const std::lock_guard<std::mutex> lock(registry_mutex());
  std::unique_ptr<DeviceAttention>& slot = registry()[device];
  if (!slot) {
    int previous = 0;
    LUMINA_CUDA_CHECK(cudaGetDevice(&previous));
    LUMINA_CUDA_CHECK(cudaSetDevice(device));
    auto created = std::make_unique<DeviceAttention>();
    created->cudnn = std::make_unique<CudnnAttention>();
    LUMINA_CUDA_CHECK(cudaEventCreateWithFlags(&created->last_run, cudaEventDisableTiming));
    LUMINA_CUDA_CHECK(cudaSetDevice(previous));
    slot = std::move(created);
  }
  return *slot;
}

// Caller holds d.mutex.
std::string fallback_reason_locked(DeviceAttention& d, const AttentionShape& s, DType dtype, bool backward,
                                   std::initializer_list<const void*> pointers) {
  if (dtype == DType::f32) return "f32 runs on the reference kernels";
  for (const void* p : pointers)
    if (!cuda::aligned_16(p)) return "a tensor is not 16-byte aligned (cuDNN needs 16)";
  return d.cudnn->unsupported_reason(s, dtype, backward);
}

// Logs once per (direction, dtype, reason) that a bf16/f16 call runs on the slow reference kernels.
// KV-cache calls (q_len < kv_len) take them by design and are not reported.
void warn_fallback(DeviceAttention& d, const std::string& why, DType dtype, const AttentionShape& s, bool backward) {
  if (dtype == DType::f32 || s.q_len != s.kv_len) return;
  const std::string key = fmt::format("{} {} {}", backward ? "backward" : "forward", dtype_name(dtype), why);
  if (!d.warned.insert(key).second) return;
  log_warning("attention {} ({}) runs on the slow reference kernels: {}", backward ? "backward" : "forward",
              dtype_name(dtype), why);
}

void expect_same_dtype(const Tensor& t, DType want, const char* op, const char* name) {
  cuda::expect_device(t, op, name);
  cuda::expect_dtype(t, want, op, name);
}

// Checks q (B,Tq,Hq,D), k/v (B,Tk,Hkv,D), out like q, lse (B,Hq,Tq) f32.
AttentionShape checked_shape(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                             const Tensor& lse) {
  LUMINA_CHECK(q.rank() == 4 && k.rank() == 4, "{}: q and k must be (batch, seq, heads, head_dim), got {} and {}", op,
               q.shape.str(), k.shape.str());
  AttentionShape s;
  s.batch = q.dim(0);
  s.q_len = q.dim(1);
  s.q_heads = q.dim(2);
  s.head_dim = q.dim(3);
  s.kv_len = k.dim(1);
  s.kv_heads = k.dim(2);
  check_shape(k, {s.batch, s.kv_len, s.kv_heads, s.head_dim}, "k");
  check_shape(v, {s.batch, s.kv_len, s.kv_heads, s.head_dim}, "v");
  check_shape(out, q.shape, "out");
  check_shape(lse, {s.batch, s.q_heads, s.q_len}, "lse");
  LUMINA_CHECK(s.kv_heads > 0 && s.q_heads % s.kv_heads == 0,
               "{}: query heads ({}) must be a multiple of key/value heads ({})", op, s.q_heads, s.kv_heads);
  LUMINA_CHECK(s.q_len <= s.kv_len, "{}: q_len ({}) must not exceed kv_len ({})", op, s.q_len, s.kv_len);
  for (const auto& [t, name] : {std::pair{&q, "q"}, {&k, "k"}, {&v, "v"}, {&out, "out"}})
    expect_same_dtype(*t, q.dtype, op, name);
  expect_same_dtype(lse, DType::f32, op, "lse");
  return s;
}

}  // namespace

std::string cuda_attention_fallback_reason(int device, const AttentionShape& shape, DType dtype, bool backward) {
  DeviceAttention& d = device_attention(device);
  const std::lock_guard<std::mutex> lock(d.mutex);
  return fallback_reason_locked(d, shape, dtype, backward, {});
}

size_t cuda_attention_workspace_bytes(int device) {
  DeviceAttention* d = nullptr;
  {
    const std::lock_guard<std::mutex> lock(registry_mutex());
    const auto it = registry().find(device);
    if (it == registry().end()) return 0;  // no attention has run on this GPU
    d = it->second.get();
  }
  const std::lock_guard<std::mutex> lock(d->mutex);
  return d->cudnn->workspace_bytes();
}

void CudaBackend::attention_forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v) {
  const AttentionShape s = checked_shape("attention_forward", q, k, v, out, lse);
  if (s.empty()) return;
  const cuda::NvtxRange range("attention_forward");
  DeviceAttention& d = device_attention(device_index());
  const std::lock_guard<std::mutex> lock(d.mutex);
  const std::string why = fallback_reason_locked(d, s, q.dtype, false, {out.data, lse.data, q.data, k.data, v.data});
  if (why.empty()) {
    LUMINA_CUDA_CHECK(cudaStreamWaitEvent(stream(), d.last_run, 0));
    d.cudnn->forward(s, q.dtype, out.data, static_cast<float*>(lse.data), q.data, k.data, v.data, stream());
    LUMINA_CUDA_CHECK(cudaEventRecord(d.last_run, stream()));
    return;
  }
  warn_fallback(d, why, q.dtype, s, false);
  if (s.q_len < s.kv_len && s.q_len <= kDecodeMaxQueries) {
    const int64_t chunks = attention_decode_chunks(s, multiprocessor_count(), kScratchBytes);
    if (chunks >= 1) {
      void* partials = scratch(attention_decode_scratch_bytes(s, chunks), "attention_forward");
      attention_decode_forward(s, q.dtype, chunks, out.data, static_cast<float*>(lse.data), q.data, k.data, v.data,
                               partials, stream());
      return;
    }
  }
  attention_reference_forward(s, q.dtype, out.data, static_cast<float*>(lse.data), q.data, k.data, v.data, stream());
}

void CudaBackend::attention_backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dout, const Tensor& q,
                                     const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse) {
  const AttentionShape s = checked_shape("attention_backward", q, k, v, out, lse);
  LUMINA_CHECK(s.q_len == s.kv_len, "attention_backward: needs q_len == kv_len (training), got {} and {}", s.q_len,
               s.kv_len);
  check_shape(dout, q.shape, "dout");
  check_shape(dq, q.shape, "dq");
  check_shape(dk, k.shape, "dk");
  check_shape(dv, v.shape, "dv");
  for (const auto& [t, name] : {std::pair{&dout, "dout"}, {&dq, "dq"}, {&dk, "dk"}, {&dv, "dv"}})
    expect_same_dtype(*t, q.dtype, "attention_backward", name);
  if (s.empty()) return;
  const cuda::NvtxRange range("attention_backward");
  DeviceAttention& d = device_attention(device_index());
  const std::lock_guard<std::mutex> lock(d.mutex);
  const std::string why = fallback_reason_locked(
      d, s, q.dtype, true, {dq.data, dk.data, dv.data, dout.data, q.data, k.data, v.data, out.data, lse.data});
  if (why.empty()) {
    LUMINA_CUDA_CHECK(cudaStreamWaitEvent(stream(), d.last_run, 0));
    d.cudnn->backward(s, q.dtype, dq.data, dk.data, dv.data, dout.data, q.data, k.data, v.data, out.data,
                      static_cast<const float*>(lse.data), stream());
    LUMINA_CUDA_CHECK(cudaEventRecord(d.last_run, stream()));
    return;
  }
  warn_fallback(d, why, q.dtype, s, true);
  attention_reference_backward(s, q.dtype, dq.data, dk.data, dv.data, dout.data, q.data, k.data, v.data, out.data,
                               static_cast<const float*>(lse.data), stream());
}

}  // namespace lumina
