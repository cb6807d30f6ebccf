#pragma once
// Picks the backend and the activation dtype from train.device and
// train.precision (`auto`: CUDA when built in and a GPU is present, else the
// CPU; bf16 activations on sm_80+, fp16 below, fp32 on the CPU).
#include <memory>
#include <string>

#include "lumina/backend/backend.h"

namespace lumina {

struct SelectedBackend {
  std::unique_ptr<Backend> backend;
  DType act_dtype = DType::f32;
};

SelectedBackend select_backend(const std::string& device, const std::string& precision);

}  // namespace lumina
