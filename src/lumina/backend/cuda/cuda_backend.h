#pragma once
// The CUDA backend's public entry points. Includes no CUDA header, so model,
// trainer and CLI code can include it in every build. In a build without CUDA
// (LUMINA_HAVE_CUDA undefined) they still link (backend_registry.cpp):
// cuda_available() is false and make_cuda_backend() throws.
#include <memory>

#include "lumina/backend/backend.h"

namespace lumina {

// True when the CUDA runtime finds a driver and at least one GPU. Never throws,
// also on machines without a driver.
bool cuda_available();

// The CUDA backend on GPU `device_index`: one stream, cuBLASLt for gemm, own
// kernels for the rest. Throws lumina::Error when no GPU is usable.
std::unique_ptr<Backend> make_cuda_backend(int device_index = 0);

}  // namespace lumina
