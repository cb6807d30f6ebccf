#pragma once
// How CudaBackend runs causal grouped-query attention (attention.cu):
//   q_len == kv_len, bf16/f16: cuDNN's fused flash attention (attention_cudnn.h)
//     when it takes the call; otherwise the reference kernels, warned once per reason.
//   q_len == kv_len, f32: the reference kernels (attention_reference.h).
//   q_len < kv_len (KV-cache prefill and decoding, forward only), any dtype: the
//     split-key decode kernels (attention_decode.h) for q_len <= 16, else the
//     reference kernels. kv_len changes every such call, and a cuDNN plan build
//     per new shape would cost far more than the call.
// cuDNN state (handle, plan cache, workspace) is kept per GPU and shared by
// the CudaBackends on it; the workspace grows when a larger shape arrives.
#include <cstddef>
#include <string>

#include "lumina/backend/cuda/attention_shape.h"
#include "lumina/core/dtype.h"

namespace lumina {

// "" when an attention call of this shape and dtype on GPU `device` runs on
// cuDNN; otherwise why the reference kernels run instead. Builds (and caches)
// the cuDNN plan if needed. For tests and benchmarks.
std::string cuda_attention_fallback_reason(int device, const AttentionShape& shape, DType dtype, bool backward);

// Device memory that cuDNN attention holds on GPU `device` now (its workspace), in bytes.
size_t cuda_attention_workspace_bytes(int device);

}  // namespace lumina
