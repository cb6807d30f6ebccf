#pragma once
// A thin C++ layer over the cuDNN 9 graph backend API (cudnn_graph.h):
// owned descriptors with typed attribute setters, and OpGraphBuilder, which
// creates tensors (each with a unique id) and operations (matmul, pointwise,
// reduction, reshape) and finalizes them into an operation graph. The
// attention graphs in attention_cudnn.cpp are written with it.
//
// Every failing cuDNN call throws lumina::Error naming the call, the status
// and cuDNN's own last error message.
#include <cudnn.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lumina::cudnn_graph {

// Throws when status is not CUDNN_STATUS_SUCCESS; `what` names the call.
void check(cudnnStatus_t status, const char* what);

// One owned cudnnBackendDescriptor_t.
class Descriptor {
 public:
  explicit Descriptor(cudnnBackendDescriptorType_t type);
  ~Descriptor();
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;

  cudnnBackendDescriptor_t get() const { return desc_; }

  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count, const void* values);
  void set_int64(cudnnBackendAttributeName_t name, int64_t value);
  void set_int64s(cudnnBackendAttributeName_t name, const std::vector<int64_t>& values);
  void set_data_type(cudnnBackendAttributeName_t name, cudnnDataType_t value);
  void set_bool(cudnnBackendAttributeName_t name, bool value);
  void set_descriptor(cudnnBackendAttributeName_t name, const Descriptor& value);
  void set_handle(cudnnBackendAttributeName_t name, cudnnHandle_t handle);

  void finalize(const char* what);
  cudnnStatus_t try_finalize();  // for engine configs that may not fit the graph

 private:
  cudnnBackendDescriptor_t desc_ = nullptr;
};

using Dims = std::array<int64_t, 4>;

// A tensor of the graph: its uid names it in the variant pack.
struct TensorRef {
  int64_t uid = 0;
  const Descriptor* desc = nullptr;
};

// Builds an operation graph of 4-d tensors. The builder owns every descriptor
// it creates; keep it alive as long as the graph and its plans are used.
class OpGraphBuilder {
 public:
  // A tensor in device memory (is_virtual = false) or one that lives only
  // inside the fused kernel (is_virtual = true).
  TensorRef tensor(const Dims& dims, const Dims& strides, cudnnDataType_t type, bool is_virtual);
  TensorRef virtual_tensor(const Dims& dims, cudnnDataType_t type);  // packed row-major strides
  // A scalar passed by value (host memory) at execution time: dims (1,1,1,1).
  TensorRef scalar(cudnnDataType_t type);

  // y = mode(x [, b [, t]]); compute_type is the math precision.
  void pointwise(cudnnPointwiseMode_t mode, cudnnDataType_t compute_type, TensorRef x, TensorRef y);
  void pointwise(cudnnPointwiseMode_t mode, cudnnDataType_t compute_type, TensorRef x, TensorRef b, TensorRef y);
  void pointwise_select(TensorRef x, TensorRef b, TensorRef mask, TensorRef y);  // y = mask ? x : b
  void gen_index(int64_t axis, cudnnDataType_t compute_type, TensorRef like, TensorRef y);
  // c = a @ b over the last two dims (batched over the first two); optional
  // per-batch (B,1,1,1) int32 overrides of the GEMM m, n and k extents.
  void matmul(TensorRef a, TensorRef b, TensorRef c, const TensorRef* m_override = nullptr,
              const TensorRef* n_override = nullptr, const TensorRef* k_override = nullptr);
  void reduction(cudnnReduceTensorOp_t mode, TensorRef x, TensorRef y);  // y's dims say what is reduced
  void reshape(TensorRef x, TensorRef y);

  // Finalizes the operations added so far into an operation graph for `handle`.
  const Descriptor& build(cudnnHandle_t handle);

 private:
  Descriptor& keep(cudnnBackendDescriptorType_t type);
  void add_operation(std::unique_ptr<Descriptor> op);

  std::vector<std::unique_ptr<Descriptor>> owned_;
  std::vector<const Descriptor*> operations_;
  int64_t next_uid_ = 1;
  std::unique_ptr<Descriptor> graph_;
};

// An execution plan for a finalized operation graph: one engine configuration
// that finalizes for it.
class ExecutionPlan {
 public:
  // Plans for the first `max_plans` engine configurations, in the order cuDNN's
  // heuristics rank them (mode A; the fallback list only when no configuration
  // of mode A finalizes), that finalize for the graph and need no more workspace
  // than the first. Empty when no engine accepts the graph; *why_not then says
  // what cuDNN reported. Each plan compiles its kernels (0.1 to 3 s).
  static std::vector<std::unique_ptr<ExecutionPlan>> candidates(cudnnHandle_t handle, const Descriptor& graph,
                                                                size_t max_plans, std::string* why_not);

  const Descriptor& get() const { return *plan_; }
  int64_t workspace_bytes() const { return workspace_bytes_; }

 private:
  ExecutionPlan() = default;

  std::unique_ptr<Descriptor> config_;
  std::unique_ptr<Descriptor> plan_;
  int64_t workspace_bytes_ = 0;
};

// Runs a plan: uids[i] is bound to pointers[i] (device memory, or host memory
// for by-value scalars).
void execute(cudnnHandle_t handle, const ExecutionPlan& plan, const std::vector<int64_t>& uids,
             const std::vector<void*>& pointers, void* workspace);

}  // namespace lumina::cudnn_graph
