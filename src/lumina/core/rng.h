#pragma once
// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
// Every draw is a pure function of (seed, purpose, step, index): no hidden
// state, so a resumed run draws exactly what an uninterrupted one would, and
// any thread or device can draw element i without coordination.
#include <array>
#include <cstdint>

namespace lumina {

// One Philox4x32 block: 10 rounds over (counter, key).
std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// What a stream of random numbers is for; keeps streams of one step apart.
enum class RngPurpose : uint32_t {
  init = 1,
  data_shuffle = 2,
  dropout = 3,
  routing_noise = 4,
  sampling = 5,
  expert_dropout = 6,
  mod_routing = 7,
  expert_init = 8,
  test = 99
};

class Rng {
 public:
  Rng(uint64_t seed, RngPurpose purpose, uint64_t step) : seed_(seed), purpose_(purpose), step_(step) {}

  uint32_t bits(uint64_t index) const;        // 32 uniform bits for draw `index`
  double uniform(uint64_t index) const;       // in [0, 1), 53-bit resolution
  double normal(uint64_t index) const;        // N(0, 1), Box-Muller over two draws

  // out[i] = mean + std * normal(offset + i), i < n.
  template <class T>
  void fill_normal(T* out, int64_t n, double mean, double std, uint64_t offset = 0) const;

 private:
  std::array<uint32_t, 4> block(uint64_t index) const;

  uint64_t seed_;
  RngPurpose purpose_;
  uint64_t step_;
};

}  // namespace lumina
