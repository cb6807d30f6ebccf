#pragma once
// The live console progress line:
//   step 120/600 | loss 2.3141 | ppl 10.12 | lr 2.95e-04 | gnorm 0.84 | 41.2k tok/s | 00:01:02 < 00:04:10
// On a terminal it redraws in place (\r); otherwise (logs, CI) it prints a full
// line every call.
#include <cstdint>
#include <string>

namespace lumina {

struct ProgressStats {
  int64_t step = 0, total_steps = 0;
  int64_t start_step = 0;  // first step of this process (after a resume): the ETA uses this process's pace
  double loss = 0.0, lr = 0.0, grad_norm = 0.0, tokens_per_second = 0.0;
  double elapsed_seconds = 0.0;
  std::string extra;  // appended as-is (e.g. "val 2.41")
};

std::string format_progress(const ProgressStats& s);
std::string format_duration(double seconds);  // "01:02:03"

class ProgressLine {
 public:
  ProgressLine();
  void update(const ProgressStats& s);
  void finish();  // ends an in-place line with a newline
 private:
  bool tty_;
  bool open_ = false;
};

}  // namespace lumina
