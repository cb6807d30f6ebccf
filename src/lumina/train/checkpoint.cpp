#include "lumina/train/checkpoint.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "lumina/core/log.h"
#include "lumina/io/atomic_file.h"
#include "lumina/io/checksum.h"
#include "lumina/io/safetensors.h"
#include "lumina/model/layer_kinds.h"

namespace fs = std::filesystem;

namespace lumina {

namespace {

constexpr const char* kModelFile = "model.safetensors";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kConfigFile = "config.toml";
constexpr const char* kPartialSuffix = ".partial";

// A host view of a flat device buffer: the tensor itself on the CPU, else a staged copy.
struct HostView {
  Buffer staging;
  Tensor tensor;
};
HostView to_host(Backend& be, const Tensor& t) {
  if (t.device == Device::cpu) return {Buffer{}, t};
  HostView h{Buffer::host(t.bytes()), {}};
  h.tensor = h.staging.as_tensor(t.dtype, t.shape);
  be.copy(h.tensor, t);
  return h;
}

// Named views of a flat buffer laid out like the parameters, with a name suffix.
std::vector<NamedTensor> named_views(const ParamStore& ps, const Tensor& flat, const std::string& suffix) {
  std::vector<NamedTensor> out;
  for (size_t id = 0; id < ps.specs().size(); ++id)
    out.push_back({ps.specs()[id].name + suffix, ps.in_layout(flat, static_cast<ParamId>(id))});
  return out;
}

// Copies every parameter-shaped tensor `name + suffix` of `file` into `flat` (device or host).
void restore_flat(const SafetensorsFile& file, const ParamStore& ps, Tensor flat, const std::string& suffix) {
  Backend& be = ps.backend();
  for (size_t id = 0; id < ps.specs().size(); ++id) {
    const ParamSpec& s = ps.specs()[id];
    const std::string name = s.name + suffix;
    LUMINA_CHECK(file.contains(name), "{}: tensor {} is missing (the checkpoint is of another model?)", file.path(), name);
    const Tensor src = file.tensor(name);
    LUMINA_CHECK(src.shape == s.shape,
                 "{}: tensor {} has shape {}, the model expects {} (the checkpoint was written for another model "
                 "config: compare its config.toml)",
                 file.path(), name, src.shape.str(), s.shape.str());
    LUMINA_CHECK(src.dtype == flat.dtype, "{}: tensor {} is {}, expected {}", file.path(), name, dtype_name(src.dtype),
                 dtype_name(flat.dtype));
    be.copy(ps.in_layout(flat, static_cast<ParamId>(id)), src);
  }
}

int64_t step_of(const std::string& dir_name) {
  if (dir_name.rfind("step_", 0) != 0) return -1;
  try {
    size_t used = 0;
    const int64_t n = std::stoll(dir_name.substr(5), &used);
    return used == dir_name.size() - 5 ? n : -1;
  } catch (const std::exception&) {
    return -1;
  }
}

// The checkpoint name a pointer file (latest, best) holds; "" when absent.
std::string read_pointer_file(const fs::path& file) {
  if (!fs::exists(file)) return "";
  std::string name = read_file(file.string());
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  return name;
}

// Test hook: with LUMINA_TEST_CHECKPOINT_PAUSE_MS set, a save stops halfway
// (model file written, optimizer file not) for that long, so the crash-safety
// test can kill the process inside a checkpoint write.
void pause_inside_save_for_tests() {
  if (const char* ms = std::getenv("LUMINA_TEST_CHECKPOINT_PAUSE_MS"))
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(ms)));
}

nlohmann::json moe_layout_to_json(const ModelConfig& cfg) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [layer, routable] : cfg.moe_layout) j[std::to_string(layer)] = routable;
  return j;
}

nlohmann::json file_record(const std::string& path, uint64_t checksum) {
  return {{"xxh3", checksum_hex(checksum)}, {"bytes", static_cast<int64_t>(fs::file_size(path))}};
}

}  // namespace

nlohmann::json trainer_state_to_json(const TrainerState& s) {
  nlohmann::json j;
  j["step"] = s.step;
  j["tokens_seen"] = s.tokens_seen;
  j["data_cursor"] = {{"epoch", s.cursor.epoch}, {"position", s.cursor.position}};
  // JSON has no infinity: no evaluation yet is written as null.
  j["best_val_loss"] = std::isfinite(s.best_val_loss) ? nlohmann::json(s.best_val_loss) : nlohmann::json(nullptr);
  j["extra"] = s.extra;
  return j;
}

TrainerState trainer_state_from_json(const nlohmann::json& j, const std::string& source) {
  try {
    TrainerState s;
    s.step = j.at("step").get<int64_t>();
    s.tokens_seen = j.at("tokens_seen").get<int64_t>();
    s.cursor.epoch = j.at("data_cursor").at("epoch").get<int64_t>();
    s.cursor.position = j.at("data_cursor").at("position").get<int64_t>();
    const auto& best = j.at("best_val_loss");
    s.best_val_loss = best.is_null() ? std::numeric_limits<double>::infinity() : best.get<double>();
    if (j.contains("extra")) s.extra = j.at("extra");
    return s;
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed trainer state ({})", source, e.what());
  }
}

nlohmann::json verify_checkpoint(const std::string& path) {
  const std::string state_path = (fs::path(path) / kStateFile).string();
  LUMINA_CHECK(fs::exists(state_path), "{} is missing", state_path);
  const auto state = nlohmann::json::parse(read_file(state_path), nullptr, false);
  LUMINA_CHECK(!state.is_discarded() && state.contains("files"), "{}: not valid trainer state JSON", state_path);
  for (const char* name : {kModelFile, kOptimizerFile}) {
    const std::string file = (fs::path(path) / name).string();
    LUMINA_CHECK(fs::exists(file), "{} is missing", file);
    LUMINA_CHECK(state["files"].contains(name), "{}: no checksum recorded for {}", state_path, name);
    const auto& record = state["files"][name];
    const auto bytes = static_cast<int64_t>(fs::file_size(file));
    LUMINA_CHECK(bytes == record.at("bytes").get<int64_t>(), "{} is {} bytes, {} were written (truncated?)", file,
                 bytes, record.at("bytes").get<int64_t>());
    const std::string sum = checksum_hex(checksum_file(file));
    LUMINA_CHECK(sum == record.at("xxh3").get<std::string>(), "{}: checksum {} does not match the recorded {} (corrupted)",
                 file, sum, record.at("xxh3").get<std::string>());
  }
  return state;
}

std::string resolve_checkpoint_dir(const std::string& path) {
  const fs::path p(path);
  LUMINA_CHECK(fs::is_directory(p), "checkpoint {} does not exist (give a step_<n> directory, a checkpoints/ "
               "directory or a run directory)", path);
  if (fs::exists(p / kStateFile)) return p.string();
  for (const fs::path& dir : {p, p / "checkpoints"}) {
    const std::string name = read_pointer_file(dir / "latest");
    if (!name.empty()) return (dir / name).string();
  }
  fail("{} is not a checkpoint: it has no trainer_state.json and no latest pointer", path);
}

void load_model_weights(const std::string& checkpoint_dir, Transformer& model) {
  verify_checkpoint(checkpoint_dir);
  SafetensorsFile weights((fs::path(checkpoint_dir) / kModelFile).string());
  restore_flat(weights, model.params(), model.params().params_flat(), "");
}

CheckpointManager::CheckpointManager(std::string dir, int64_t save_total_limit, std::string config_toml)
    : dir_(std::move(dir)), save_total_limit_(save_total_limit), config_toml_(std::move(config_toml)) {}

std::string CheckpointManager::save(const Transformer& model, const AdamW& optimizer, const TrainerState& state,
                                    bool is_best) {
  const ParamStore& ps = model.params();
  Backend& be = ps.backend();
  const std::string name = "step_" + std::to_string(state.step);
  const fs::path final_dir = fs::path(dir_) / name;
  const fs::path partial = fs::path(dir_) / (name + kPartialSuffix);
  fs::remove_all(partial);
  fs::create_directories(partial);  // creates dir_ too on the first save

  const HostView params = to_host(be, ps.params_flat());
  const uint64_t model_sum =
      save_safetensors((partial / kModelFile).string(), named_views(ps, params.tensor, ""), {{"format", "pt"}});
  pause_inside_save_for_tests();
  const HostView m = to_host(be, optimizer.m_flat()), v = to_host(be, optimizer.v_flat());
  std::vector<NamedTensor> opt = named_views(ps, m.tensor, ".exp_avg");
  for (NamedTensor& t : named_views(ps, v.tensor, ".exp_avg_sq")) opt.push_back(std::move(t));
  const uint64_t optimizer_sum = save_safetensors((partial / kOptimizerFile).string(), opt,
                                                  {{"optimizer", "adamw"}, {"adam_steps", std::to_string(optimizer.steps_taken())}});

  nlohmann::json j = trainer_state_to_json(state);
  j["adam_steps"] = optimizer.steps_taken();
  j["moe_layout"] = moe_layout_to_json(model.config());
  j["files"] = {{kModelFile, file_record((partial / kModelFile).string(), model_sum)},
                {kOptimizerFile, file_record((partial / kOptimizerFile).string(), optimizer_sum)}};
  write_file_atomic((partial / kStateFile).string(), j.dump(2) + "\n");
  write_file_atomic((partial / kConfigFile).string(), config_toml_);

  // Publish: the complete directory appears under its final name, then the pointers move.
  fs::remove_all(final_dir);
  fs::rename(partial, final_dir);
  write_file_atomic((fs::path(dir_) / "latest").string(), name + "\n");
  if (is_best) write_file_atomic((fs::path(dir_) / "best").string(), name + "\n");
  apply_retention();
  return final_dir.string();
}

std::string CheckpointManager::read_pointer(const std::string& pointer) const {
  return read_pointer_file(fs::path(dir_) / pointer);
}

std::vector<std::string> CheckpointManager::list() const {
  std::vector<std::pair<int64_t, std::string>> found;
  if (fs::exists(dir_))
    for (const auto& e : fs::directory_iterator(dir_))
      if (e.is_directory() && step_of(e.path().filename().string()) >= 0)
        found.emplace_back(step_of(e.path().filename().string()), e.path().string());
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

void CheckpointManager::apply_retention() {
  // Leftovers of interrupted saves.
  for (const auto& e : fs::directory_iterator(dir_))
    if (e.is_directory() && e.path().extension() == kPartialSuffix) fs::remove_all(e.path());
  if (save_total_limit_ <= 0) return;
  const std::string latest = read_pointer("latest"), best = read_pointer("best");
  int64_t kept = 0;
  for (const std::string& path : list()) {
    const std::string name = fs::path(path).filename().string();
    if (name == latest || name == best) continue;
    if (++kept > save_total_limit_ - 1) fs::remove_all(path);  // latest counts towards the limit
  }
}

std::string CheckpointManager::select(const std::string& which) {
  std::vector<std::string> candidates;
  const bool pointer = which == "latest" || which == "best";
  if (pointer) {
    const std::string name = read_pointer(which);
    if (!name.empty()) candidates.push_back((fs::path(dir_) / name).string());
    for (const std::string& path : list())
      if (std::find(candidates.begin(), candidates.end(), path) == candidates.end()) candidates.push_back(path);
    LUMINA_CHECK(!candidates.empty(), "--resume {}: no checkpoint in {}", which, dir_);
  } else {
    candidates.push_back(which);
  }
  std::string failures;
  for (const std::string& path : candidates) {
    try {
      verify_checkpoint(path);
      if (!failures.empty()) log_warning("resumed from {} instead", path);
      return path;
    } catch (const std::exception& e) {
      if (!pointer) fail("checkpoint {} cannot be loaded: {}", path, e.what());
      log_warning("checkpoint {} failed its integrity check: {}", path, e.what());
      failures += fmt::format("\n  {}: {}", path, e.what());
    }
  }
  fail("no loadable checkpoint in {}:{}", dir_, failures);
}

TrainerState CheckpointManager::load(const std::string& path, Transformer& model, AdamW& optimizer) {
  try {
    const nlohmann::json state = verify_checkpoint(path);
    SafetensorsFile weights((fs::path(path) / kModelFile).string());
    SafetensorsFile opt((fs::path(path) / kOptimizerFile).string());
    restore_flat(weights, model.params(), model.params().params_flat(), "");
    restore_flat(opt, model.params(), optimizer.m_flat(), ".exp_avg");
    restore_flat(opt, model.params(), optimizer.v_flat(), ".exp_avg_sq");
    optimizer.set_steps_taken(state.at("adam_steps").get<int64_t>());
    loaded_path_ = path;
    return trainer_state_from_json(state, (fs::path(path) / kStateFile).string());
  } catch (const std::exception& e) {
    fail("checkpoint {} cannot be loaded: {}", path, e.what());
  }
}

ModelConfig checkpoint_model_config(const std::string& checkpoint_dir, const ModelConfig& config) {
  const std::string state_path = (fs::path(checkpoint_dir) / kStateFile).string();
  const auto state = nlohmann::json::parse(read_file(state_path), nullptr, false);
  LUMINA_CHECK(!state.is_discarded(), "{}: not valid trainer state JSON", state_path);
  ModelConfig out = config;
  out.moe_layout.clear();
  if (!state.contains("moe_layout")) return out;  // written before dynamic experts: the config's shapes
  const nlohmann::json& layout = state.at("moe_layout");
  LUMINA_CHECK(layout.is_object(), "{}: moe_layout must be an object of layer -> routable mask", state_path);
  for (const auto& [key, mask] : layout.items()) {
    int64_t layer = -1;
    try {
      size_t used = 0;
      layer = std::stoll(key, &used);
      if (used != key.size()) layer = -1;
    } catch (const std::exception&) {
    }
    LUMINA_CHECK(layer >= 0 && layer < config.num_layers && is_moe_layer(config, layer),
                 "{}: moe_layout lists layer \"{}\", which is not a MoE layer of this config (model.num_layers = {}, "
                 "use_moe = {}, moe_pattern = \"{}\"): the checkpoint was written for another model",
                 state_path, key, config.num_layers, config.use_moe, config.moe_pattern);
    std::vector<uint8_t> routable;
    for (const auto& v : mask) {
      LUMINA_CHECK(v.is_number_integer() && (v.get<int>() == 0 || v.get<int>() == 1),
                   "{}: moe_layout of layer {} must hold 0 (pruned) or 1 (routable) per expert", state_path, layer);
      routable.push_back(static_cast<uint8_t>(v.get<int>()));
    }
    LUMINA_CHECK(static_cast<int64_t>(routable.size()) >= config.num_experts,
                 "{}: layer {} has {} experts, fewer than model.num_experts = {} (experts are added, never removed): "
                 "the checkpoint was written with another num_experts",
                 state_path, layer, routable.size(), config.num_experts);
    const auto left = std::count(routable.begin(), routable.end(), uint8_t{1});
    LUMINA_CHECK(left >= config.moe_top_k, "{}: layer {} has {} routable experts, fewer than model.moe_top_k = {}",
                 state_path, layer, left, config.moe_top_k);
    out.moe_layout[layer] = std::move(routable);
  }
  return out;
}

}  // namespace lumina
