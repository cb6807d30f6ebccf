// lumina_attention_bench: causal GQA attention throughput on one GPU, cuDNN's
// fused flash attention as lumina runs it (attention_cudnn.h), bf16; and the
// KV-cache decode step (one query against a cache of T keys) on the split-key
// decode kernels (attention_decode.h) next to the one-warp-per-row reference.
//
//   lumina_attention_bench [--iters N] [--dtype bf16|f16] [B,H,KV,T,D ...] [--decode B,H,KV,T,D ...]
//
// Prints one JSON line per shape with TFLOP/s for the forward and for
// forward + backward, in the convention of ../shared/reference/attn_gemm_ref.py:
// causal forward FLOPs = 2 B H T^2 D (half of 4 B H T^2 D), forward + backward =
// 3.5 times that. Each figure is the median over N timed iterations (CUDA events
// around each iteration) after 5 warm-up iterations, the first of which builds
// the cuDNN plans.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "lumina/backend/cuda/attention_cudnn.h"
#include "lumina/backend/cuda/attention_decode.h"
#include "lumina/backend/cuda/attention_reference.h"
#include "lumina/core/dtype.h"
#include "lumina/core/error.h"
#include "lumina/core/rng.h"

namespace lumina {
namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail("{}: {}", what, cudaGetErrorString(status));
}

// A device buffer of n 16-bit elements ~ N(0, 1) rounded to dtype (or zeros).
class DeviceArray {
 public:
  DeviceArray(int64_t n, DType dtype, uint64_t seed) : bytes_(static_cast<size_t>(n) * dtype_size_bytes(dtype)) {
    check(cudaMalloc(&data_, bytes_), "cudaMalloc");
    std::vector<float> values(static_cast<size_t>(n));
    Rng(seed, RngPurpose::test, 0).fill_normal(values.data(), n, 0.0, 1.0);
    if (dtype == DType::f32) {
      check(cudaMemcpy(data_, values.data(), bytes_, cudaMemcpyHostToDevice), "cudaMemcpy");
      return;
    }
    std::vector<uint16_t> bits(static_cast<size_t>(n));
    for (size_t i = 0; i < bits.size(); ++i)
      bits[i] = dtype == DType::bf16 ? to_bf16(values[i]).bits : to_f16(values[i]).bits;
    check(cudaMemcpy(data_, bits.data(), bytes_, cudaMemcpyHostToDevice), "cudaMemcpy");
  }
  ~DeviceArray() { cudaFree(data_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  void* get() const { return data_; }

 private:
  void* data_ = nullptr;
  size_t bytes_;
};

// Median milliseconds of `iters` runs of fn, each between two events on `stream`.
double median_ms(cudaStream_t stream, int iters, const std::function<void()>& fn) {
  for (int i = 0; i < 5; ++i) fn();
  check(cudaStreamSynchronize(stream), "warm-up");
  std::vector<cudaEvent_t> events(static_cast<size_t>(2 * iters));
  for (auto& e : events) check(cudaEventCreate(&e), "cudaEventCreate");
  for (int i = 0; i < iters; ++i) {
    check(cudaEventRecord(events[static_cast<size_t>(2 * i)], stream), "cudaEventRecord");
    fn();
    check(cudaEventRecord(events[static_cast<size_t>(2 * i + 1)], stream), "cudaEventRecord");
  }
  check(cudaStreamSynchronize(stream), "timed runs");
  std::vector<double> ms(static_cast<size_t>(iters));
  for (int i = 0; i < iters; ++i) {
    float t = 0.0f;
    check(cudaEventElapsedTime(&t, events[static_cast<size_t>(2 * i)], events[static_cast<size_t>(2 * i + 1)]),
          "cudaEventElapsedTime");
    ms[static_cast<size_t>(i)] = t;
  }
  for (auto& e : events) cudaEventDestroy(e);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

void bench_shape(CudnnAttention& attention, cudaStream_t stream, const AttentionShape& s, DType dtype, int iters) {
  const std::string why = attention.unsupported_reason(s, dtype, false) + attention.unsupported_reason(s, dtype, true);
  if (!why.empty()) {
    std::printf("{\"attn\": \"lumina-cudnn\", \"B\": %ld, \"H\": %ld, \"KV\": %ld, \"T\": %ld, \"D\": %ld, "
                "\"error\": \"%s\"}\n",
                s.batch, s.q_heads, s.kv_heads, s.q_len, s.head_dim, why.c_str());
    return;
  }
  const int64_t q_elems = s.batch * s.q_len * s.q_heads * s.head_dim;
  const int64_t kv_elems = s.batch * s.kv_len * s.kv_heads * s.head_dim;
  DeviceArray q(q_elems, dtype, 1), k(kv_elems, dtype, 2), v(kv_elems, dtype, 3), dout(q_elems, dtype, 4);
  DeviceArray out(q_elems, dtype, 5), dq(q_elems, dtype, 6), dk(kv_elems, dtype, 7), dv(kv_elems, dtype, 8);
  DeviceArray lse(s.batch * s.q_heads * s.q_len, DType::f32, 9);
  auto* lse_f = static_cast<float*>(lse.get());

  const auto forward = [&] { attention.forward(s, dtype, out.get(), lse_f, q.get(), k.get(), v.get(), stream); };
  const auto forward_backward = [&] {
    forward();
    attention.backward(s, dtype, dq.get(), dk.get(), dv.get(), dout.get(), q.get(), k.get(), v.get(), out.get(),
                       lse_f, stream);
  };
  const double fwd_ms = median_ms(stream, iters, forward);
  const double fwd_bwd_ms = median_ms(stream, iters, forward_backward);
  const double fwd_flops = 2.0 * static_cast<double>(s.batch * s.q_heads) * static_cast<double>(s.q_len) *
                           static_cast<double>(s.kv_len) * static_cast<double>(s.head_dim);
  std::printf("{\"attn\": \"lumina-cudnn\", \"dtype\": \"%s\", \"B\": %ld, \"H\": %ld, \"KV\": %ld, \"T\": %ld, "
              "\"D\": %ld, \"fwd_ms\": %.4f, \"fwd_bwd_ms\": %.4f, \"fwd_tflops\": %.1f, \"fwd_bwd_tflops\": %.1f}\n",
              std::string(dtype_name(dtype)).c_str(), s.batch, s.q_heads, s.kv_heads, s.q_len, s.head_dim, fwd_ms,
              fwd_bwd_ms, fwd_flops / (fwd_ms * 1e-3) / 1e12, 3.5 * fwd_flops / (fwd_bwd_ms * 1e-3) / 1e12);
  std::fflush(stdout);
}

// One decode step: q (B,1,H,D) against k/v (B,T,KV,D). Reports microseconds and
// the K/V bytes read per second.
void bench_decode(cudaStream_t stream, const AttentionShape& s, DType dtype, int iters, int multiprocessors) {
  const int64_t q_elems = s.batch * s.q_len * s.q_heads * s.head_dim;
  const int64_t kv_elems = s.batch * s.kv_len * s.kv_heads * s.head_dim;
  DeviceArray q(q_elems, dtype, 1), k(kv_elems, dtype, 2), v(kv_elems, dtype, 3), out(q_elems, dtype, 4);
  DeviceArray lse(s.batch * s.q_heads * s.q_len, DType::f32, 5);
  auto* lse_f = static_cast<float*>(lse.get());
  const size_t scratch_bytes = size_t{32} << 20;
  const int64_t chunks = attention_decode_chunks(s, multiprocessors, scratch_bytes);
  void* scratch = nullptr;
  check(cudaMalloc(&scratch, scratch_bytes), "cudaMalloc");
  const double decode_ms = median_ms(stream, iters, [&] {
    attention_decode_forward(s, dtype, chunks, out.get(), lse_f, q.get(), k.get(), v.get(), scratch, stream);
  });
  const double reference_ms = median_ms(stream, iters, [&] {
    attention_reference_forward(s, dtype, out.get(), lse_f, q.get(), k.get(), v.get(), stream);
  });
  cudaFree(scratch);
  const double kv_bytes = 2.0 * static_cast<double>(kv_elems) * static_cast<double>(dtype_size_bytes(dtype));
  std::printf("{\"attn\": \"lumina-decode\", \"dtype\": \"%s\", \"B\": %ld, \"H\": %ld, \"KV\": %ld, \"T\": %ld, "
              "\"D\": %ld, \"chunks\": %ld, \"decode_us\": %.1f, \"decode_kv_gbps\": %.0f, \"reference_us\": %.1f}\n",
              std::string(dtype_name(dtype)).c_str(), s.batch, s.q_heads, s.kv_heads, s.kv_len, s.head_dim, chunks,
              decode_ms * 1e3, kv_bytes / (decode_ms * 1e-3) / 1e9, reference_ms * 1e3);
  std::fflush(stdout);
}

AttentionShape parse_shape(const char* text) {
  AttentionShape s;
  if (std::sscanf(text, "%ld,%ld,%ld,%ld,%ld", &s.batch, &s.q_heads, &s.kv_heads, &s.q_len, &s.head_dim) != 5)
    fail("shape '{}' is not B,H,KV,T,D (e.g. 8,16,4,2048,128)", text);
  s.kv_len = s.q_len;
  return s;
}

int run(int argc, char** argv) {
  int iters = 30;
  DType dtype = DType::bf16;
  std::vector<AttentionShape> shapes, decode_shapes;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--decode") == 0 && i + 1 < argc) {
      AttentionShape s = parse_shape(argv[++i]);
      s.q_len = 1;
      decode_shapes.push_back(s);
    } else if (std::strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
      iters = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--dtype") == 0 && i + 1 < argc) {
      const std::string name = argv[++i];
      LUMINA_CHECK(name == "bf16" || name == "f16", "--dtype takes bf16 or f16, got {}", name);
      dtype = name == "bf16" ? DType::bf16 : DType::f16;
    } else {
      shapes.push_back(parse_shape(argv[i]));
    }
  }
  if (shapes.empty() && decode_shapes.empty()) {
    for (const char* s : {"8,16,16,2048,128", "8,16,4,2048,128", "16,12,12,1024,64", "4,32,8,4096,128"})
      shapes.push_back(parse_shape(s));
    for (const char* s : {"1,16,4,2048,128", "8,32,8,4096,128"}) {
      decode_shapes.push_back(parse_shape(s));
      decode_shapes.back().q_len = 1;
    }
  }
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  std::printf("{\"device\": \"%s\", \"cudnn_version\": %ld}\n", prop.name, CudnnAttention::library_version());
  cudaStream_t stream = nullptr;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  {
    CudnnAttention attention;
    for (const AttentionShape& s : shapes) bench_shape(attention, stream, s, dtype, iters);
  }
  for (const AttentionShape& s : decode_shapes) bench_decode(stream, s, dtype, iters, prop.multiProcessorCount);
  cudaStreamDestroy(stream);
  return 0;
}

}  // namespace
}  // namespace lumina

int main(int argc, char** argv) {
  try {
    return lumina::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lumina_attention_bench: %s\n", e.what());
    return 1;
  }
}
