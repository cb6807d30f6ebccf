#include "lumina/train/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace lumina {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--:--";
  const auto s = static_cast<int64_t>(seconds);
  return fmt::format("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
}

std::string format_progress(const ProgressStats& s) {
  const int64_t done = s.step - s.start_step;
  const double per_step = done > 0 ? s.elapsed_seconds / static_cast<double>(done) : 0.0;
  const double eta = per_step * static_cast<double>(s.total_steps - s.step);
  const double tps = s.tokens_per_second;
  const std::string speed = tps >= 1e6 ? fmt::format("{:.2f}M", tps / 1e6)
                            : tps >= 1e3 ? fmt::format("{:.1f}k", tps / 1e3)
                                         : fmt::format("{:.0f}", tps);
  std::string line = fmt::format("step {}/{} | loss {:.4f} | ppl {:.2f} | lr {:.2e} | gnorm {:.3f} | {} tok/s | {} < {}",
                                 s.step, s.total_steps, s.loss, std::exp(std::min(s.loss, 50.0)), s.lr, s.grad_norm,
                                 speed, format_duration(s.elapsed_seconds), format_duration(eta));
  if (!s.extra.empty()) line += " | " + s.extra;
  return line;
}

ProgressLine::ProgressLine() : tty_(isatty(fileno(stdout)) != 0) {}

void ProgressLine::update(const ProgressStats& s) {
  const std::string line = format_progress(s);
  if (tty_) {
    fmt::print("\r\033[K{}", line);
    std::fflush(stdout);
    open_ = true;
  } else {
    fmt::print("{}\n", line);
    std::fflush(stdout);
  }
}

void ProgressLine::finish() {
  if (open_) fmt::print("\n");
  open_ = false;
  std::fflush(stdout);
}

}  // namespace lumina
