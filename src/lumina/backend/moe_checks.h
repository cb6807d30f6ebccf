#pragma once
// Checks shared by the CPU and CUDA moe_dispatch: its sizes and row layout
// (Backend::moe_dispatch), on host integers only.
#include <cstdint>
#include <limits>

#include "lumina/core/error.h"

namespace lumina {

// E experts, `slots` = N*k assignments, R = row_token's rows.
inline void check_moe_dispatch_layout(const char* op, int64_t E, int64_t slots, int64_t R, int64_t capacity,
                                      int64_t row_align, int64_t group_stride) {
  LUMINA_CHECK(capacity >= 0, "{}: capacity = {} must be >= 0", op, capacity);
  LUMINA_CHECK(row_align >= 1, "{}: row_align = {} must be >= 1", op, row_align);
  LUMINA_CHECK(group_stride >= 0, "{}: group_stride = {} must be >= 0 (0: packed groups)", op, group_stride);
  constexpr int64_t kMaxIndex = std::numeric_limits<int32_t>::max();
  LUMINA_CHECK(R <= kMaxIndex && slots <= kMaxIndex, "{}: {} rows or {} slots do not fit i32 indices", op, R, slots);
  if (group_stride > 0) {
    LUMINA_CHECK(capacity <= group_stride,
                 "{}: capacity = {} exceeds group_stride = {}: an expert's slab cannot hold its kept rows "
                 "(raise the stride to the capacity or use packed groups, group_stride = 0)",
                 op, capacity, group_stride);
    LUMINA_CHECK(R >= E * group_stride, "{}: row_token has {} rows, the slabs need E * group_stride = {}", op, R,
                 E * group_stride);
  } else {
    LUMINA_CHECK(R >= slots + E * (row_align - 1),
                 "{}: row_token has {} rows, packed groups need N*k + E*(row_align-1) = {}", op, R,
                 slots + E * (row_align - 1));
  }
}

}  // namespace lumina
