#include <vector>

#include "lumina/backend/backend.h"

namespace lumina {

void upload_f64(Backend& backend, Tensor dst, const double* src) {
  const auto n = static_cast<size_t>(dst.numel());
  if (dst.dtype == DType::f64) {
    backend.copy(dst, Tensor(const_cast<double*>(src), DType::f64, Device::cpu, dst.shape));
    return;
  }
  if (dst.dtype == DType::bf16) {
    std::vector<bf16> rounded(n);
    for (size_t i = 0; i < n; ++i) rounded[i] = to_bf16(static_cast<float>(src[i]));
    backend.copy(dst, Tensor(rounded.data(), DType::bf16, Device::cpu, dst.shape));
    return;
  }
  LUMINA_CHECK(dst.dtype == DType::f32, "upload_f64: destination must be f32, f64 or bf16, got {}",
               dtype_name(dst.dtype));
  std::vector<float> rounded(src, src + n);
  backend.copy(dst, Tensor(rounded.data(), DType::f32, Device::cpu, dst.shape));
}

}  // namespace lumina
