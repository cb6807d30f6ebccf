#include "lumina/io/safetensors.h"

namespace lumina {

std::string_view safetensors_dtype_name(DType t) {
  for (const SafetensorsDType& d : kSafetensorsDTypes)
    if (d.dtype == t) return d.name;
  fail("dtype {} has no safetensors name", dtype_name(t));
}

std::optional<DType> dtype_from_safetensors(std::string_view name) {
  for (const SafetensorsDType& d : kSafetensorsDTypes)
    if (d.name == name) return d.dtype;
  return std::nullopt;
}

}  // namespace lumina
