#include <vector>

#include "lumina/backend/backend.h"

namespace lumina {

void upload_f64(Backend& backend, Tensor dst, const double* src) {
  const auto n = static_cast<size_t>(dst.numel());
  if (dst.dtype == DType::f64) {
    backend.copy(dst, Tensor(const_cast<double*>(src), DType::f64, Device::cpu, dst.shape));
    return;
  }
  LUMINA_CHECK(dst.dtype == DType::f32, "upload_f64: destination must be f32 or f64, got {}", dtype_name(dst.dtype));
  std::vector<float> rounded(src, src + n);
  backend.copy(dst, Tensor(rounded.data(), DType::f32, Device::cpu, dst.shape));
}

}  // namespace lumina
