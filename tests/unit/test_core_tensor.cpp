// Shape, Tensor views (view / slice / flatten_2d / typed access), Buffer and
// Arena (measuring vs real, alignment, mark/rewind, out-of-capacity error).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "lumina/core/arena.h"
#include "lumina/core/buffer.h"
#include "lumina/core/tensor.h"
#include "support/test_files.h"

namespace lumina {
namespace {

using test::error_of;

uintptr_t address(const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data); }

TEST(Shape, NumelRankEqualityAndText) {
  const Shape s{2, 3, 4};
  EXPECT_EQ(s.rank, 3);
  EXPECT_EQ(s.numel(), 24);
  EXPECT_EQ(s[1], 3);
  EXPECT_EQ(s.str(), "(2, 3, 4)");
  EXPECT_TRUE(s == (Shape{2, 3, 4}));
  EXPECT_FALSE(s == (Shape{2, 3}));
  EXPECT_FALSE(s == (Shape{2, 3, 5}));
  const Shape scalar;
  EXPECT_EQ(scalar.numel(), 1);
  EXPECT_EQ(scalar.str(), "()");
  EXPECT_EQ((Shape{4, 0, 2}).numel(), 0);
  EXPECT_EQ((Shape{1, 2, 3, 4, 5}).numel(), 120);
  EXPECT_NE(error_of([] { (void)Shape{1, 2, 3, 4, 5, 6}; }).find("rank 6 exceeds the maximum 5"), std::string::npos);
}

TEST(Tensor, SizesAndTypedAccess) {
  float storage[24] = {};
  const Tensor t(storage, DType::f32, Device::cpu, Shape{2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.bytes(), 96u);
  EXPECT_EQ(t.rank(), 3);
  EXPECT_EQ(t.dim(-1), 4);
  EXPECT_EQ(t.dim(0), 2);
  EXPECT_EQ(t.ptr<float>(), storage);
  EXPECT_FALSE(t.empty());
  EXPECT_TRUE(Tensor().empty());
  EXPECT_EQ(error_of([&] { t.ptr<bf16>(); }), "tensor dtype is f32, accessed as bf16");
  EXPECT_EQ(Tensor(storage, DType::bf16, Device::cpu, Shape{3, 5}).bytes(), 30u);
}

TEST(Tensor, ViewKeepsMemoryAndChecksCount) {
  int32_t storage[12] = {};
  const Tensor t(storage, DType::i32, Device::cpu, Shape{3, 4});
  const Tensor v = t.view(Shape{2, 2, 3});
  EXPECT_EQ(v.data, t.data);
  EXPECT_EQ(v.dtype, DType::i32);
  EXPECT_TRUE(v.shape == (Shape{2, 2, 3}));
  EXPECT_EQ(error_of([&] { t.view(Shape{5, 2}); }), "cannot view (3, 4) as (5, 2)");
}

TEST(Tensor, PrefixViewsTheFirstElements) {
  float storage[12] = {};
  const Tensor t(storage, DType::f32, Device::cpu, Shape{4, 3});
  const Tensor p = t.prefix(Shape{2, 3});
  EXPECT_EQ(p.data, t.data);
  EXPECT_TRUE(p.shape == (Shape{2, 3}));
  EXPECT_TRUE(t.prefix(Shape{12}).shape == (Shape{12}));
  EXPECT_EQ(error_of([&] { t.prefix(Shape{13}); }), "cannot view the first 13 elements of (4, 3)");
}

TEST(Tensor, SliceOffsetsRowsAlongDimZero) {
  uint16_t storage[4 * 3 * 2] = {};
  const Tensor t(storage, DType::u16, Device::cpu, Shape{4, 3, 2});
  const Tensor s = t.slice(1, 3);
  EXPECT_TRUE(s.shape == (Shape{2, 3, 2}));
  EXPECT_EQ(s.data, static_cast<void*>(storage + 6));  // one row = 3 * 2 elements
  EXPECT_EQ(t.slice(4, 4).numel(), 0);
  EXPECT_EQ(t.slice(0, 4).data, t.data);
  EXPECT_EQ(error_of([&] { t.slice(2, 5); }), "slice [2, 5) out of range for (4, 3, 2)");
  EXPECT_EQ(error_of([&] { t.slice(3, 2); }), "slice [3, 2) out of range for (4, 3, 2)");
  EXPECT_EQ(error_of([&] { t.slice(-1, 2); }), "slice [-1, 2) out of range for (4, 3, 2)");
  const Tensor scalar(storage, DType::u16, Device::cpu, Shape{});
  EXPECT_NE(error_of([&] { scalar.slice(0, 0); }), "");
}

TEST(Tensor, FlattenMergesLeadingDims) {
  float storage[24] = {};
  const Tensor t(storage, DType::f32, Device::cpu, Shape{2, 3, 4});
  EXPECT_TRUE(t.flatten_2d().shape == (Shape{6, 4}));
  EXPECT_TRUE(t.view(Shape{24}).flatten_2d().shape == (Shape{1, 24}));
  EXPECT_TRUE(Tensor(storage, DType::f32, Device::cpu, Shape{0, 5}).flatten_2d().shape == (Shape{0, 5}));
  // A zero-width last dim keeps its rows: (2, 3, 0) -> (6, 0).
  EXPECT_TRUE(Tensor(storage, DType::f32, Device::cpu, Shape{2, 3, 0}).flatten_2d().shape == (Shape{6, 0}));
  EXPECT_EQ(error_of([&] { Tensor(storage, DType::f32, Device::cpu, Shape{}).flatten_2d(); }),
            "cannot flatten a scalar");
}

TEST(Tensor, CheckShapeNamesTheTensor) {
  float storage[6] = {};
  const Tensor t(storage, DType::f32, Device::cpu, Shape{2, 3});
  EXPECT_EQ(error_of([&] { check_shape(t, Shape{2, 3}, "x"); }), "");
  EXPECT_EQ(error_of([&] { check_shape(t, Shape{3, 2}, "attn.q"); }), "attn.q: expected shape (3, 2), got (2, 3)");
}

TEST(Buffer, HostIsZeroedAlignedAndSized) {
  const Buffer b = Buffer::host(1000);
  ASSERT_NE(b.data(), nullptr);
  EXPECT_EQ(b.bytes(), 1000u);
  EXPECT_EQ(b.device(), Device::cpu);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 64, 0u);
  const auto* bytes = static_cast<const unsigned char*>(b.data());
  for (size_t i = 0; i < 1000; ++i) ASSERT_EQ(bytes[i], 0) << i;
  const Tensor t = b.as_tensor(DType::f32, Shape{250});
  EXPECT_EQ(t.data, b.data());
  EXPECT_EQ(error_of([&] { b.as_tensor(DType::f64, Shape{126}); }),
            "buffer of 1000 bytes is too small for f64 (126)");
  const Buffer empty = Buffer::host(0);
  EXPECT_EQ(empty.data(), nullptr);
  EXPECT_EQ(empty.bytes(), 0u);
}

// The sequence of allocations a module plan would make.
void allocate_plan(Arena& a, Tensor out[3]) {
  out[0] = a.alloc(DType::f32, Shape{10});     // 40 bytes at 0
  out[1] = a.alloc(DType::bf16, Shape{3, 7});  // 42 bytes at 256
  out[2] = a.alloc(DType::u8, Shape{300});     // 300 bytes at 512
}

TEST(Arena, MeasuringCountsAlignedBytesWithoutMemory) {
  Arena m = Arena::measuring(Device::cpu);
  EXPECT_TRUE(m.is_measuring());
  Tensor t[3];
  allocate_plan(m, t);
  for (const Tensor& x : t) EXPECT_EQ(x.data, nullptr);
  EXPECT_TRUE(t[1].shape == (Shape{3, 7}));
  EXPECT_EQ(t[1].dtype, DType::bf16);
  EXPECT_EQ(m.used_bytes(), 512u + 300u);
  EXPECT_EQ(m.peak_bytes(), 812u);
  EXPECT_EQ(m.capacity_bytes(), 0u);
}

TEST(Arena, RealArenaMatchesTheMeasurement) {
  Arena m = Arena::measuring(Device::cpu);
  Tensor measured[3];
  allocate_plan(m, measured);

  Arena a(Buffer::host(m.peak_bytes()));
  EXPECT_FALSE(a.is_measuring());
  Tensor t[3];
  allocate_plan(a, t);
  EXPECT_EQ(a.used_bytes(), m.used_bytes());
  EXPECT_EQ(a.peak_bytes(), m.peak_bytes());
  const uintptr_t base = address(t[0]);
  EXPECT_EQ(address(t[1]) - base, 256u);
  EXPECT_EQ(address(t[2]) - base, 512u);
  for (const Tensor& x : t) EXPECT_EQ(address(x) % 64, 0u);  // host buffers are 64-byte aligned

  Arena too_small(Buffer::host(m.peak_bytes() - 1));
  Tensor u[3];
  const std::string message = error_of([&] { allocate_plan(too_small, u); });
  EXPECT_EQ(message,
            "arena out of memory: u8 (300) needs 300 bytes at offset 512, capacity 811 (the activation plan is wrong)");
  EXPECT_EQ(too_small.used_bytes(), 256u + 42u);  // the failed allocation took nothing
}

TEST(Arena, MarkRewindAndResetReuseMemory) {
  Arena a(Buffer::host(4096));
  a.alloc(DType::f32, Shape{16});
  const size_t mark = a.mark();
  const Tensor scratch = a.alloc(DType::f32, Shape{512});  // 2048 bytes at 256
  EXPECT_EQ(a.used_bytes(), 256u + 2048u);
  a.rewind(mark);
  EXPECT_EQ(a.used_bytes(), 64u);
  EXPECT_EQ(a.alloc(DType::f32, Shape{8}).data, scratch.data);
  EXPECT_EQ(a.peak_bytes(), 2304u);  // the peak remembers the scratch
  a.reset();
  EXPECT_EQ(a.used_bytes(), 0u);
  EXPECT_EQ(a.capacity_bytes(), 4096u);
  EXPECT_EQ(a.alloc(DType::f32, Shape{4096 / 4}).numel(), 1024);  // exactly the capacity fits
}

}  // namespace
}  // namespace lumina
