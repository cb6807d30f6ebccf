#pragma once
// A deterministic English-like corpus for training tests: documents of
// sentences drawn from a small vocabulary, separated by blank lines (.txt).
#include <fstream>
#include <string>

#include "lumina/core/rng.h"

namespace lumina::test {

inline void write_synthetic_corpus(const std::string& path, int documents, uint64_t seed) {
  static const char* kWords[] = {"the", "jury", "said", "a", "city", "of", "election", "was", "report", "and",
                                 "to", "in", "court", "judge", "new", "law", "vote", "for", "many", "people"};
  const Rng rng(seed, RngPurpose::test, 0);
  std::ofstream out(path);
  uint64_t draw = 0;
  for (int d = 0; d < documents; ++d) {
    const int sentences = 3 + static_cast<int>(rng.bits(draw++) % 5);
    for (int s = 0; s < sentences; ++s) {
      const int words = 4 + static_cast<int>(rng.bits(draw++) % 8);
      std::string sentence;
      for (int w = 0; w < words; ++w) {
        std::string word = kWords[rng.bits(draw++) % 20];
        if (w == 0) word[0] = static_cast<char>(word[0] - 'a' + 'A');
        sentence += (w ? " " : "") + word;
      }
      out << sentence << ". ";
    }
    out << "\n\n";
  }
}

}  // namespace lumina::test
