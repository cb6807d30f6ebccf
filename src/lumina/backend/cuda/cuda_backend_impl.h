#pragma once
// CudaBackend: the Backend on one NVIDIA GPU. Internal to backend/cuda/:
// include it from the files that implement its ops, nowhere else.
//
// Invariants:
// - Every op runs on one stream, stream(), in call order. Ops return before the
//   GPU finishes; copy() to a host tensor, sum_squares() and synchronize() wait.
// - Precision (backend.h): activations f32, bf16 or f16; parameter gradients,
//   optimizer state and saved statistics (rstd, lse, losses) f32.
// - No op allocates device memory: gemm uses the cuBLASLt workspace and other
//   temporaries come from scratch(), both reserved at construction.
// - Kernels report bad input they cannot return early on (a token id >= vocab)
//   through device_errors(); synchronize() and copies to the host throw them.
// - Every reduction has a fixed order: results are bitwise reproducible on one GPU.
//
// One op family per file, forward and backward side by side:
//   cuda_backend.cpp  construction, memory, copy, errors     gemm.cpp        gemm (cuBLASLt)
//   elementwise.cu    fill, cast, axpy, scale                reduce.cu       sum_squares
//   embedding.cu      rmsnorm.cu   rope.cu   rope_qkv.cu   swiglu.cu   cross_entropy.cu
//   adamw.cu          attention*.cu / attention*.cpp (attention_forward/backward)
//
// .cu files must not use fmt's compile-time format checks (nvcc cannot build
// them; src/CMakeLists.txt switches them off for CUDA files): LUMINA_CHECK with
// arguments works in .cu files, checked at run time.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "lumina/backend/backend.h"

namespace lumina {

class GemmRunner;  // gemm_runner.h: cuBLASLt handle, workspace, cached plans

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device_index);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Device device() const override { return Device::cuda; }
  std::string name() const override;
  int64_t device_memory_bytes() const override;
  int64_t device_free_bytes() const override;

  // memory (cuda_backend.cpp, elementwise.cu)
  Buffer allocate(size_t bytes) override;
  void copy(Tensor dst, const Tensor& src) override;
  void fill(Tensor dst, double value) override;
  void cast(Tensor dst, const Tensor& src) override;
  void synchronize() override;

  // dense algebra (gemm.cpp, elementwise.cu, reduce.cu)
  void gemm(Tensor c, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, double alpha,
            double beta) override;
  void gemm_add(Tensor d, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c) override;
  void axpy(Tensor y, const Tensor& x, double alpha) override;
  void scale(Tensor x, double alpha) override;
  double sum_squares(const Tensor& x) override;

  // embedding.cu
  void embedding_forward(Tensor out, const Tensor& tokens, const Tensor& table) override;
  void embedding_backward(Tensor dtable, const Tensor& tokens, const Tensor& dout) override;

  // rmsnorm.cu
  void rmsnorm_forward(Tensor y, Tensor rstd, const Tensor& x, const Tensor& w, double eps) override;
  void rmsnorm_backward(Tensor dx, Tensor dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                        const Tensor& rstd) override;

  // rope.cu
  void rope_forward(Tensor x, const Tensor& cos, const Tensor& sin, int64_t pos_offset) override;
  void rope_backward(Tensor dx, const Tensor& cos, const Tensor& sin, int64_t pos_offset) override;
  void rope_positions_forward(Tensor x, const Tensor& cos, const Tensor& sin, const Tensor& positions) override;
  void rope_positions_backward(Tensor dx, const Tensor& cos, const Tensor& sin, const Tensor& positions) override;
  // rope_qkv.cu
  void rope_qkv_forward(Tensor q, Tensor k, Tensor v, const Tensor& qkv, const Tensor& cos, const Tensor& sin,
                        const Tensor& positions) override;
  void rope_qkv_backward(Tensor dqkv, const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& cos,
                         const Tensor& sin, const Tensor& positions) override;

  // attention*.cu / attention*.cpp (written by the attention work, not here)
  void attention_forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v) override;
  void attention_backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dout, const Tensor& q, const Tensor& k,
                          const Tensor& v, const Tensor& out, const Tensor& lse) override;

  // swiglu.cu
  void swiglu_forward(Tensor out, const Tensor& gate, const Tensor& up) override;
  void swiglu_backward(Tensor dgate, Tensor dup, const Tensor& dout, const Tensor& gate, const Tensor& up) override;
  void swiglu_packed_forward(Tensor out, const Tensor& gate_up) override;
  void swiglu_packed_backward(Tensor dgate_up, const Tensor& dout, const Tensor& gate_up) override;

  // cross_entropy.cu
  void cross_entropy(Tensor logits, Tensor losses, Tensor argmax, const Tensor& targets,
                     const Tensor& dlosses) override;

  // moe_router.cu, moe_dispatch.cu, moe_combine.cu (routing, dispatch, gather, combine); gemm.cpp (gemm_batched)
  void moe_router_forward(Tensor probs, Tensor lse, Tensor choice, Tensor weight, Tensor sums, const Tensor& logits,
                          const Tensor& noise, const Tensor& available, double inv_temperature) override;
  void moe_router_backward(Tensor dlogits, const Tensor& probs, const Tensor& lse, const Tensor& choice,
                           const Tensor& weight, const Tensor& slot_row, const Tensor& dweight, const Tensor& assigned,
                           double inv_temperature, double aux_coef, double z_coef) override;
  void moe_dispatch(Tensor slot_row, Tensor row_token, Tensor group_begin, Tensor assigned, const Tensor& choice,
                    int64_t capacity, int64_t row_align, int64_t group_stride) override;
  void moe_gather(Tensor rows, const Tensor& x, const Tensor& row_token) override;
  void moe_combine(Tensor out, const Tensor& y, const Tensor& slot_row, const Tensor& weight, bool accumulate) override;
  void moe_combine_backward(Tensor dy, Tensor dweight, const Tensor& dout, const Tensor& y, const Tensor& slot_row,
                            const Tensor& weight, const Tensor& row_token) override;
  void gemm_batched(Tensor c, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, double alpha,
                    double beta) override;
  // mod.cu (Mixture-of-Depths selection and backward)
  void mod_select_top_k(Tensor row_token, Tensor positions, Tensor slot_row, Tensor gate, const Tensor& scores,
                        int64_t k) override;
  void mod_combine(Tensor out, Tensor delta, const Tensor& x, const Tensor& ys, const Tensor& slot_row,
                   const Tensor& gate) override;
  void mod_input_backward(Tensor dx, Tensor dscores, const Tensor& dxs, const Tensor& dgate, const Tensor& slot_row,
                          const Tensor& gate, const Tensor& w) override;
  void mod_predictor(Tensor dpred, Tensor sums, const Tensor& pred, const Tensor& slot_row, double dscale) override;

  // adamw.cu
  void adamw_update(Tensor param, const Tensor& grad, Tensor m, Tensor v, const AdamWParams& h,
                    Tensor param_copy) override;

  // ---- for the op files in backend/cuda ------------------------------------------
  cudaStream_t stream() const { return stream_; }
  int device_index() const { return device_index_; }
  int multiprocessor_count() const { return multiprocessor_count_; }
  // The device's shared-memory limits, read once at construction (bytes).
  struct SharedMemoryLimits {
    int64_t per_block_optin = 0;     // a block's dynamic + static, with the opt-in attribute
    int64_t per_multiprocessor = 0;  // what the blocks resident on one SM share
    int64_t reserved_per_block = 0;  // the system's reservation per resident block
  };
  const SharedMemoryLimits& shared_memory() const { return shared_memory_; }
  // Device memory for one op's temporaries, reserved at construction
  // (kScratchBytes). Valid until the next op is queued: every op runs on
  // stream(), so stream order keeps users apart. Throws, naming `op`, when
  // `bytes` exceeds the reserve.
  void* scratch(size_t bytes, const char* op) const;
  // Device word that kernels OR DeviceError bits into (see cuda_utils.cuh).
  unsigned* device_errors() const { return device_errors_; }
  // Bytes held now by buffers from allocate(), over every CudaBackend of the process.
  static size_t allocated_bytes();

  static constexpr size_t kScratchBytes = size_t{32} << 20;

 private:
  // gemm and gemm_add (gemm.cpp): c = alpha op(a) op(b) + beta c_in, c_in may be c.
  void run_gemm(Tensor c, const Tensor& c_in, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b,
                double alpha, double beta);
  // Queues a read of device_errors() into host_words_[0]; call before a stream sync.
  void queue_error_read();
  // After a stream sync: throws (and clears the word) when a kernel reported an error.
  void throw_device_errors();

  int device_index_ = 0;
  int multiprocessor_count_ = 0;
  SharedMemoryLimits shared_memory_;
  std::string device_name_;
  int compute_capability_ = 0;  // 10 * major + minor
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<GemmRunner> gemm_;
  void* scratch_ = nullptr;
  unsigned* device_errors_ = nullptr;
  void* host_words_ = nullptr;  // pinned: [0] error word read-back, [8..16) sum_squares result
};

}  // namespace lumina
