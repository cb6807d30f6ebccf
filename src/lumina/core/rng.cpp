#include "lumina/core/rng.h"

#include <cmath>
#include <numbers>

namespace lumina {

namespace {
constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;     // round multipliers
constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;   // key schedule increments
}  // namespace

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * c[0];
    const uint64_t p1 = static_cast<uint64_t>(kMul1) * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
    k[0] += kWeyl0;
    k[1] += kWeyl1;
  }
  return c;
}

// Counter = (index lo, index hi, step lo, purpose ^ step hi), key = seed.
std::array<uint32_t, 4> Rng::block(uint64_t index) const {
  return philox4x32_10({static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), static_cast<uint32_t>(step_),
                        static_cast<uint32_t>(purpose_) ^ static_cast<uint32_t>(step_ >> 32)},
                       {static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32)});
}

uint32_t Rng::bits(uint64_t index) const { return block(index)[0]; }

double Rng::uniform(uint64_t index) const {
  const auto b = block(index);
  const uint64_t mantissa = (static_cast<uint64_t>(b[0]) << 21) ^ (b[1] >> 11);  // 53 bits
  return static_cast<double>(mantissa & ((1ull << 53) - 1)) * 0x1p-53;
}

double Rng::normal(uint64_t index) const {
  const auto b = block(index);
  // Two uniforms from one block: u1 in (0, 1] (never 0, so log is finite), u2 in [0, 1).
  const double u1 = (static_cast<double>(b[0]) + 1.0) * 0x1p-32;
  const double u2 = static_cast<double>(b[2]) * 0x1p-32;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

template <class T>
void Rng::fill_normal(T* out, int64_t n, double mean, double std, uint64_t offset) const {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(mean + std * normal(offset + static_cast<uint64_t>(i)));
}

template void Rng::fill_normal<float>(float*, int64_t, double, double, uint64_t) const;
template void Rng::fill_normal<double>(double*, int64_t, double, double, uint64_t) const;

}  // namespace lumina
