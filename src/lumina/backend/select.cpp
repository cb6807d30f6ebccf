#include "lumina/backend/select.h"

#include "lumina/backend/cuda/cuda_backend.h"
#include "lumina/core/error.h"

namespace lumina {

SelectedBackend select_backend(const std::string& device, const std::string& precision) {
  const bool use_cuda = device == "cuda" || (device == "auto" && cuda_available());
  LUMINA_CHECK(device == "auto" || device == "cpu" || device == "cuda",
               "train.device = \"{}\": use auto, cpu or cuda", device);
  if (device == "cuda")
    LUMINA_CHECK(cuda_available(), "train.device = \"cuda\" but no usable CUDA GPU was found (or this lumina was built "
                 "without CUDA): use device = \"cpu\" or \"auto\"");
  SelectedBackend s;
  if (!use_cuda) {
    LUMINA_CHECK(precision == "auto" || precision == "fp32",
                 "train.precision = \"{}\" needs the CUDA backend; the CPU trains in fp32: set precision = \"auto\" or "
                 "\"fp32\"", precision);
    s.backend = make_cpu_backend();
    s.act_dtype = DType::f32;
    return s;
  }
  s.backend = make_cuda_backend(0);
  if (precision == "fp32") s.act_dtype = DType::f32;
  else if (precision == "auto" || precision == "bf16" || precision == "mixed_bf16") s.act_dtype = DType::bf16;
  else if (precision == "fp16" || precision == "mixed_fp16") s.act_dtype = DType::f16;  // with dynamic loss scaling
  else fail("train.precision = \"{}\" is not supported on CUDA yet: use auto, fp32, bf16, mixed_bf16, fp16 or "
            "mixed_fp16", precision);
  return s;
}

}  // namespace lumina
