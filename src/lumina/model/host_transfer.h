#pragma once
// Host round trips of small per-token tensors for the host-side routing of
// MoE and MoD (router logits and scores down, their gradients back up):
// any float dtype (f64, f32, bf16, f16) converted through host staging bytes
// the caller keeps, so steady-state steps do not allocate.
#include <cstddef>
#include <vector>

#include "lumina/backend/backend.h"

namespace lumina {

// host (numel) = src, as doubles.
void download_doubles(Backend& be, const Tensor& src, std::vector<std::byte>& staging, std::vector<double>& host);
// dst (numel) = the first dst.numel() values of host, rounded to dst's dtype.
void upload_doubles(Backend& be, Tensor dst, const std::vector<double>& host, std::vector<std::byte>& staging);

}  // namespace lumina
