#include "lumina/model/host_transfer.h"

namespace lumina {

void download_doubles(Backend& be, const Tensor& src, std::vector<std::byte>& staging, std::vector<double>& host) {
  staging.resize(src.bytes());
  const Tensor h(staging.data(), src.dtype, Device::cpu, src.shape);
  be.copy(h, src);
  host.resize(static_cast<size_t>(src.numel()));
  for (int64_t i = 0; i < src.numel(); ++i) {
    double v = 0.0;
    switch (src.dtype) {
      case DType::f64: v = h.ptr<double>()[i]; break;
      case DType::f32: v = h.ptr<float>()[i]; break;
      case DType::bf16: v = to_float(h.ptr<bf16>()[i]); break;
      case DType::f16: v = to_float(h.ptr<f16>()[i]); break;
      default: fail("routing: activations in {} are not supported; use f32, f64, bf16 or f16", dtype_name(src.dtype));
    }
    host[static_cast<size_t>(i)] = v;
  }
}

void upload_doubles(Backend& be, Tensor dst, const std::vector<double>& host, std::vector<std::byte>& staging) {
  LUMINA_CHECK(host.size() >= static_cast<size_t>(dst.numel()), "upload_doubles: {} values for {} elements",
               host.size(), dst.numel());
  staging.resize(dst.bytes());
  const Tensor h(staging.data(), dst.dtype, Device::cpu, dst.shape);
  for (int64_t i = 0; i < dst.numel(); ++i) {
    const double v = host[static_cast<size_t>(i)];
    switch (dst.dtype) {
      case DType::f64: h.ptr<double>()[i] = v; break;
      case DType::f32: h.ptr<float>()[i] = static_cast<float>(v); break;
      case DType::bf16: h.ptr<bf16>()[i] = to_bf16(static_cast<float>(v)); break;
      case DType::f16: h.ptr<f16>()[i] = to_f16(static_cast<float>(v)); break;
      default: fail("routing: activations in {} are not supported; use f32, f64, bf16 or f16", dtype_name(dst.dtype));
    }
  }
  be.copy(dst, h);
}

}  // namespace lumina
