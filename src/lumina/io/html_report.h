#pragma once
// The training report: one self-contained HTML page about a run directory
// (<output_dir>/<experiment_name>/: config.toml, logs/training.log,
// metrics/metrics.jsonl). Inline CSS and inline SVG only: no scripts, fonts,
// stylesheets or network, so the file can be mailed or archived as is.
//
// Content: the experiment name, a summary table (steps, tokens, last/best
// loss, best validation loss, validation bits per token, mean tokens/s, wall
// time), the model and training setup from config.toml, one chart per
// numeric metric key (training and validation loss share one chart), the
// resolved config and the last 50 lines of the training log.
//
// Metrics are read generically: every numeric key of every row is plotted
// against "step", nested objects as "a.b", numeric arrays as one series per
// element (or min/mean/max when long). Non-numeric values are ignored; rows
// without a step, or of "kind" "summary", are listed instead of plotted; an
// unreadable line (a torn last line) is skipped and counted on the page. When
// a step appears twice (a resumed run), the later row wins.
#include <string>

namespace lumina {

// The report page of `run_dir`. Throws lumina::Error when the directory or
// its metrics are missing, or the metrics hold no row with a step.
std::string render_html_report(const std::string& run_dir);

// Writes render_html_report(run_dir) to `output_path` atomically.
void write_html_report(const std::string& run_dir, const std::string& output_path);

}  // namespace lumina
