// Backend factories that must link in every build. Without CUDA
// (LUMINA_HAVE_CUDA undefined) the CUDA entry points of cuda/cuda_backend.h
// say so instead of being missing; with CUDA they live in cuda/cuda_backend.cpp.
#include "lumina/backend/cuda/cuda_backend.h"

namespace lumina {

#ifndef LUMINA_HAVE_CUDA

bool cuda_available() { return false; }

std::unique_ptr<Backend> make_cuda_backend(int device_index) {
  fail("this lumina was built without CUDA (CUDA device {} requested): rebuild on a machine with the CUDA toolkit "
       "(cmake -DLUMINA_CUDA=ON) or use the cpu backend",
       device_index);
}

#endif

}  // namespace lumina
