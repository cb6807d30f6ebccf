#include "lumina/cli/checkpoint_model.h"

#include <filesystem>

#include "lumina/train/checkpoint.h"

namespace lumina::cli {

LoadedModel load_checkpoint_model(const std::string& path, const std::string& device) {
  LoadedModel m;
  m.checkpoint_dir = resolve_checkpoint_dir(path);
  m.config = load_run_config((std::filesystem::path(m.checkpoint_dir) / "config.toml").string());
  m.backend = select_backend(device, m.config.train.inference_precision == "auto" ? m.config.train.precision
                                                                                   : m.config.train.inference_precision);
  m.config.model = checkpoint_model_config(m.checkpoint_dir, m.config.model);  // its expert layout
  m.model = std::make_unique<Transformer>(m.config.model);
  m.model->allocate(*m.backend.backend, DType::f32, m.backend.act_dtype);
  load_model_weights(m.checkpoint_dir, *m.model);
  return m;
}

}  // namespace lumina::cli
