#pragma once
// metrics.jsonl: one JSON object per line, appended as training goes.
// Training rows: {"step", "loss", "lr", "grad_norm", "tokens_per_second", "tokens", "elapsed_s"}
// (+ "moe" for MoE models, train/moe_metrics.h);
// evaluation rows: {"step", "val_loss", "val_ppl", "val_bpb", "val_accuracy"}.
// Floats are written in their shortest round-trip form, so equal doubles are
// equal text (resume tests compare rows bit for bit).
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace lumina {

class MetricsLog {
 public:
  explicit MetricsLog(std::string path);
  // Drops rows with "step" > step (a resumed run rewrites them); keeps everything else.
  void truncate_after(int64_t step);
  void append(const nlohmann::json& row);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace lumina
