#include "lumina/backend/cuda/attention_cudnn_graph.h"

#include <fmt/format.h>

#include <string>

#include "lumina/core/error.h"

namespace lumina::cudnn_graph {

void check(cudnnStatus_t status, const char* what) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  char detail[1024] = {0};
  cudnnGetLastErrorString(detail, sizeof(detail));
  fail("cuDNN: {} failed: {} ({}){}{}", what, cudnnGetErrorString(status), static_cast<int>(status),
       detail[0] ? ": " : "", detail);
}

Descriptor::Descriptor(cudnnBackendDescriptorType_t type) {
  check(cudnnBackendCreateDescriptor(type, &desc_), "cudnnBackendCreateDescriptor");
}

Descriptor::~Descriptor() {
  if (desc_) cudnnBackendDestroyDescriptor(desc_);
}

void Descriptor::set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count,
                     const void* values) {
  const cudnnStatus_t status = cudnnBackendSetAttribute(desc_, name, type, count, values);
  if (status != CUDNN_STATUS_SUCCESS) {
    const std::string what = "cudnnBackendSetAttribute(attribute " + std::to_string(static_cast<int>(name)) + ")";
    check(status, what.c_str());
  }
}

void Descriptor::set_int64(cudnnBackendAttributeName_t name, int64_t value) { set(name, CUDNN_TYPE_INT64, 1, &value); }

void Descriptor::set_int64s(cudnnBackendAttributeName_t name, const std::vector<int64_t>& values) {
  set(name, CUDNN_TYPE_INT64, static_cast<int64_t>(values.size()), values.data());
}

void Descriptor::set_data_type(cudnnBackendAttributeName_t name, cudnnDataType_t value) {
  set(name, CUDNN_TYPE_DATA_TYPE, 1, &value);
}

void Descriptor::set_bool(cudnnBackendAttributeName_t name, bool value) { set(name, CUDNN_TYPE_BOOLEAN, 1, &value); }

void Descriptor::set_descriptor(cudnnBackendAttributeName_t name, const Descriptor& value) {
  cudnnBackendDescriptor_t d = value.get();
  set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &d);
}

void Descriptor::set_handle(cudnnBackendAttributeName_t name, cudnnHandle_t handle) {
  set(name, CUDNN_TYPE_HANDLE, 1, &handle);
}

void Descriptor::finalize(const char* what) { check(cudnnBackendFinalize(desc_), what); }

cudnnStatus_t Descriptor::try_finalize() { return cudnnBackendFinalize(desc_); }

// ---- OpGraphBuilder ----------------------------------------------------------

Descriptor& OpGraphBuilder::keep(cudnnBackendDescriptorType_t type) {
  owned_.push_back(std::make_unique<Descriptor>(type));
  return *owned_.back();
}

void OpGraphBuilder::add_operation(std::unique_ptr<Descriptor> op) {
  operations_.push_back(op.get());
  owned_.push_back(std::move(op));
}

TensorRef OpGraphBuilder::tensor(const Dims& dims, const Dims& strides, cudnnDataType_t type, bool is_virtual) {
  Descriptor& t = keep(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  const int64_t uid = next_uid_++;
  t.set_data_type(CUDNN_ATTR_TENSOR_DATA_TYPE, type);
  t.set_int64s(CUDNN_ATTR_TENSOR_DIMENSIONS, {dims.begin(), dims.end()});
  t.set_int64s(CUDNN_ATTR_TENSOR_STRIDES, {strides.begin(), strides.end()});
  t.set_int64(CUDNN_ATTR_TENSOR_UNIQUE_ID, uid);
  t.set_int64(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, 16);
  t.set_bool(CUDNN_ATTR_TENSOR_IS_VIRTUAL, is_virtual);
  t.finalize("tensor descriptor");
  return {uid, &t};
}

TensorRef OpGraphBuilder::virtual_tensor(const Dims& dims, cudnnDataType_t type) {
  const Dims strides = {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
  return tensor(dims, strides, type, true);
}

TensorRef OpGraphBuilder::scalar(cudnnDataType_t type) {
  Descriptor& t = keep(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  const int64_t uid = next_uid_++;
  t.set_data_type(CUDNN_ATTR_TENSOR_DATA_TYPE, type);
  t.set_int64s(CUDNN_ATTR_TENSOR_DIMENSIONS, {1, 1, 1, 1});
  t.set_int64s(CUDNN_ATTR_TENSOR_STRIDES, {1, 1, 1, 1});
  t.set_int64(CUDNN_ATTR_TENSOR_UNIQUE_ID, uid);
  t.set_int64(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, 16);
  t.set_bool(CUDNN_ATTR_TENSOR_IS_VIRTUAL, false);
  t.set_bool(CUDNN_ATTR_TENSOR_IS_BY_VALUE, true);
  t.finalize("scalar tensor descriptor");
  return {uid, &t};
}

namespace {

std::unique_ptr<Descriptor> pointwise_operation(const Descriptor& mode_desc, TensorRef x, TensorRef y) {
  auto op = std::make_unique<Descriptor>(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
  op->set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, mode_desc);
  op->set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, *x.desc);
  op->set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, *y.desc);
  return op;
}

}  // namespace

void OpGraphBuilder::pointwise(cudnnPointwiseMode_t mode, cudnnDataType_t compute_type, TensorRef x, TensorRef y) {
  Descriptor& pw = keep(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  pw.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
  pw.set_data_type(CUDNN_ATTR_POINTWISE_MATH_PREC, compute_type);
  pw.finalize("pointwise descriptor");
  auto op = pointwise_operation(pw, x, y);
  op->finalize("pointwise operation");
  add_operation(std::move(op));
}

void OpGraphBuilder::pointwise(cudnnPointwiseMode_t mode, cudnnDataType_t compute_type, TensorRef x, TensorRef b,
                               TensorRef y) {
  Descriptor& pw = keep(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  pw.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
  pw.set_data_type(CUDNN_ATTR_POINTWISE_MATH_PREC, compute_type);
  pw.finalize("pointwise descriptor");
  auto op = pointwise_operation(pw, x, y);
  op->set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b.desc);
  op->finalize("pointwise operation");
  add_operation(std::move(op));
}

void OpGraphBuilder::pointwise_select(TensorRef x, TensorRef b, TensorRef mask, TensorRef y) {
  Descriptor& pw = keep(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  const cudnnPointwiseMode_t mode = CUDNN_POINTWISE_BINARY_SELECT;
  pw.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
  pw.set_data_type(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_DATA_FLOAT);
  pw.finalize("select descriptor");
  auto op = pointwise_operation(pw, x, y);
  op->set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b.desc);
  op->set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_TDESC, *mask.desc);
  op->finalize("select operation");
  add_operation(std::move(op));
}

void OpGraphBuilder::gen_index(int64_t axis, cudnnDataType_t compute_type, TensorRef like, TensorRef y) {
  Descriptor& pw = keep(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  const cudnnPointwiseMode_t mode = CUDNN_POINTWISE_GEN_INDEX;
  pw.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
  pw.set_data_type(CUDNN_ATTR_POINTWISE_MATH_PREC, compute_type);
  pw.set_int64(CUDNN_ATTR_POINTWISE_AXIS, axis);
  pw.finalize("gen_index descriptor");
  auto op = pointwise_operation(pw, like, y);
  op->finalize("gen_index operation");
  add_operation(std::move(op));
}

void OpGraphBuilder::matmul(TensorRef a, TensorRef b, TensorRef c, const TensorRef* m_override,
                            const TensorRef* n_override, const TensorRef* k_override) {
  Descriptor& mm = keep(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
  mm.set_data_type(CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_DATA_FLOAT);
  mm.finalize("matmul descriptor");
  auto op = std::make_unique<Descriptor>(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
  op->set_descriptor(CUDNN_ATTR_OPERATION_MATMUL_ADESC, *a.desc);
  op->set_descriptor(CUDNN_ATTR_OPERATION_MATMUL_BDESC, *b.desc);
  op->set_descriptor(CUDNN_ATTR_OPERATION_MATMUL_CDESC, *c.desc);
  op->set_descriptor(CUDNN_ATTR_OPERATION_MATMUL_DESC, mm);
  if (m_override) op->set_descriptor(CUDNN_ATTR_OPERATION_MATMUL_GEMM_M_OVERRIDE_DESC, *m_override->desc);
  if (n_override) op->set_descriptor(CUDNN_ATTR_OPERATION_MATMUL_GEMM_N_OVERRIDE_DESC, *n_override->desc);
  if (k_override) op->set_descriptor(CUDNN_ATTR_OPERATION_MATMUL_GEMM_K_OVERRIDE_DESC, *k_override->desc);
  op->finalize("matmul operation");
  add_operation(std::move(op));
}

void OpGraphBuilder::reduction(cudnnReduceTensorOp_t mode, TensorRef x, TensorRef y) {
  Descriptor& red = keep(CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
  red.set(CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode);
  red.set_data_type(CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_DATA_FLOAT);
  red.finalize("reduction descriptor");
  auto op = std::make_unique<Descriptor>(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
  op->set_descriptor(CUDNN_ATTR_OPERATION_REDUCTION_XDESC, *x.desc);
  op->set_descriptor(CUDNN_ATTR_OPERATION_REDUCTION_YDESC, *y.desc);
  op->set_descriptor(CUDNN_ATTR_OPERATION_REDUCTION_DESC, red);
  op->finalize("reduction operation");
  add_operation(std::move(op));
}

void OpGraphBuilder::reshape(TensorRef x, TensorRef y) {
  auto op = std::make_unique<Descriptor>(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR);
  op->set_descriptor(CUDNN_ATTR_OPERATION_RESHAPE_XDESC, *x.desc);
  op->set_descriptor(CUDNN_ATTR_OPERATION_RESHAPE_YDESC, *y.desc);
  op->finalize("reshape operation");
  add_operation(std::move(op));
}

const Descriptor& OpGraphBuilder::build(cudnnHandle_t handle) {
  graph_ = std::make_unique<Descriptor>(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  std::vector<cudnnBackendDescriptor_t> ops;
  ops.reserve(operations_.size());
  for (const Descriptor* op : operations_) ops.push_back(op->get());
  graph_->set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, static_cast<int64_t>(ops.size()),
              ops.data());
  graph_->set_handle(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, handle);
  graph_->finalize("operation graph");
  return *graph_;
}

// ---- ExecutionPlan -------------------------------------------------------------

namespace {

// Engine configurations ranked by the heuristics of `mode` (empty when the mode has none).
std::vector<std::unique_ptr<Descriptor>> ranked_configs(const Descriptor& graph, cudnnBackendHeurMode_t mode) {
  Descriptor heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  heur.set_descriptor(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
  heur.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
  std::vector<std::unique_ptr<Descriptor>> configs;
  if (heur.try_finalize() != CUDNN_STATUS_SUCCESS) return configs;
  int64_t count = 0;
  check(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                 nullptr),
        "engine heuristics result count");
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < count; ++i) {
    configs.push_back(std::make_unique<Descriptor>(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
    raw.push_back(configs.back()->get());
  }
  int64_t returned = 0;
  check(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count,
                                 &returned, raw.data()),
        "engine heuristics results");
  configs.resize(static_cast<size_t>(returned));
  return configs;
}

}  // namespace

std::vector<std::unique_ptr<ExecutionPlan>> ExecutionPlan::candidates(cudnnHandle_t handle, const Descriptor& graph,
                                                                       size_t max_plans, std::string* why_not) {
  std::vector<std::unique_ptr<ExecutionPlan>> plans;
  size_t tried = 0;
  cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
  char last_detail[1024] = {0};
  // The fallback list is asked only when no configuration of mode A finalizes.
  for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    for (auto& config : ranked_configs(graph, mode)) {
      if (plans.size() >= max_plans) break;
      ++tried;
      auto plan = std::make_unique<Descriptor>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      plan->set_handle(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, handle);
      plan->set_descriptor(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, *config);
      last = plan->try_finalize();
      if (last != CUDNN_STATUS_SUCCESS) {
        cudnnGetLastErrorString(last_detail, sizeof(last_detail));
        continue;
      }
      std::unique_ptr<ExecutionPlan> result(new ExecutionPlan());
      int64_t returned = 0;
      check(cudnnBackendGetAttribute(plan->get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1,
                                     &returned, &result->workspace_bytes_),
            "execution plan workspace size");
      if (!plans.empty() && result->workspace_bytes_ > plans.front()->workspace_bytes_) continue;
      result->config_ = std::move(config);
      result->plan_ = std::move(plan);
      plans.push_back(std::move(result));
    }
    if (!plans.empty()) return plans;
  }
  *why_not = fmt::format("no cuDNN engine accepts the graph ({} engine configurations tried; last: {}{}{})", tried,
                         cudnnGetErrorString(last), last_detail[0] ? ": " : "", last_detail);
  return plans;
}

void execute(cudnnHandle_t handle, const ExecutionPlan& plan, const std::vector<int64_t>& uids,
             const std::vector<void*>& pointers, void* workspace) {
  LUMINA_CHECK(uids.size() == pointers.size(), "cuDNN variant pack: {} uids but {} pointers", uids.size(),
               pointers.size());
  Descriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, static_cast<int64_t>(uids.size()), uids.data());
  pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, static_cast<int64_t>(pointers.size()),
           pointers.data());
  pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
  pack.finalize("variant pack");
  check(cudnnBackendExecute(handle, plan.get().get(), pack.get()), "cudnnBackendExecute");
}

}  // namespace lumina::cudnn_graph
