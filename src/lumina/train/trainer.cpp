#include "lumina/train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include "lumina/backend/select.h"
#include "lumina/core/log.h"
#include "lumina/data/corpus.h"
#include "lumina/io/html_report.h"
#include "lumina/model/accounting.h"
#include "lumina/optim/adamw.h"
#include "lumina/optim/loss_scaler.h"
#include "lumina/optim/lr_schedule.h"
#include "lumina/train/checkpoint.h"
#include "lumina/train/evaluate.h"
#include "lumina/train/expert_events.h"
#include "lumina/train/metrics_log.h"
#include "lumina/train/mod_metrics.h"
#include "lumina/train/moe_metrics.h"
#include "lumina/train/progress.h"
#include "lumina/train/signals.h"

namespace fs = std::filesystem;

namespace lumina {

namespace {

using Clock = std::chrono::steady_clock;

struct RunPaths {
  fs::path root, logs, metrics, checkpoints;
};

RunPaths run_paths(const TrainConfig& t) {
  RunPaths p;
  p.root = fs::path(t.output_dir) / t.experiment_name;
  p.logs = p.root / "logs";
  p.metrics = p.root / "metrics";
  p.checkpoints = p.root / "checkpoints";
  return p;
}

int64_t total_optimizer_steps(const TrainConfig& t, const TokenDataset& train_data) {
  if (t.max_steps > 0) return t.max_steps;
  const int64_t windows_per_step = t.batch_size * t.gradient_accumulation_steps;
  const int64_t per_epoch = train_data.num_windows() / windows_per_step;
  LUMINA_CHECK(per_epoch > 0, "one epoch has {} sequences, fewer than one optimizer step ({} = batch_size x "
               "gradient_accumulation_steps): add data, lower train.batch_size or set train.max_steps",
               train_data.num_windows(), windows_per_step);
  return per_epoch * t.num_epochs;
}

nlohmann::json eval_row(int64_t step, const EvalResult& e) {
  return {{"step", step}, {"val_loss", e.loss}, {"val_ppl", e.perplexity}, {"val_bpb", e.bits_per_token},
          {"val_accuracy", e.accuracy}, {"val_tokens", e.tokens}};
}

}  // namespace

TrainSummary train(const RunConfig& cfg, const TrainOptions& opt) {
  const TrainConfig& tc = cfg.train;
  set_log_level(log_level_from_string(tc.log_level));

  // Everything that can reject the input (data, model, checkpoint) runs before
  // the run directory is created: bad input writes nothing.
  // ---- data ---------------------------------------------------------------------------------
  const Corpus corpus = load_corpus(cfg.data, cfg.model.vocab_size);
  const auto seed = static_cast<uint64_t>(tc.seed);
  TokenDataset train_data(corpus.train_tokens, corpus.bos_id, tc.seq_len, seed, /*shuffle=*/true);
  std::unique_ptr<TokenDataset> val_data;
  if (!corpus.val_tokens.empty()) {
    val_data = std::make_unique<TokenDataset>(corpus.val_tokens, corpus.bos_id, tc.seq_len, seed, false);
    LUMINA_CHECK(val_data->num_windows() >= tc.batch_size,
                 "the validation split has {} sequences of {} tokens, fewer than one batch of {}: add validation data, "
                 "raise data.validation_split or lower train.batch_size", val_data->num_windows(), tc.seq_len,
                 tc.batch_size);
  }

  // ---- model and optimizer --------------------------------------------------------------------
  const SelectedBackend selected = select_backend(tc.device, tc.precision);
  Backend& be = *selected.backend;
  const OptimConfig& oc = cfg.optim;
  const AdamWConfig adamw{oc.beta1, oc.beta2, oc.eps, oc.weight_decay};
  // Rebuilt (tm.model, tm.optimizer replaced) by dynamic expert events and by resuming with changed experts.
  TrainingModel tm = build_training_model(cfg.model, be, selected.act_dtype, seed, tc.batch_size, tc.seq_len, adamw);
  const std::vector<ExpertEvent> expert_events = parse_expert_events(tc.expert_events);
  const ParamCounts counts = count_params(cfg.model);
  // fp16 activations need dynamic loss scaling; other precisions train unscaled.
  std::optional<DynamicLossScaler> scaler;
  if (selected.act_dtype == DType::f16) scaler.emplace(oc.init_scale, oc.scale_factor, oc.scale_window, oc.min_scale);

  LrSchedule schedule;
  schedule.kind = lr_schedule_from_string(oc.lr_schedule);
  schedule.peak_lr = oc.learning_rate;
  schedule.min_lr = oc.learning_rate * oc.min_lr_ratio;
  schedule.total_steps = total_optimizer_steps(tc, train_data);
  schedule.warmup_steps = resolve_warmup_steps(oc.warmup_steps, oc.warmup_fraction, schedule.total_steps);
  schedule.decay_fraction = oc.wsd_decay_fraction;

  // ---- state, resume ----------------------------------------------------------------------------
  const RunPaths paths = run_paths(tc);
  CheckpointManager checkpoints(paths.checkpoints.string(), tc.save_total_limit, run_config_to_toml(cfg));
  TrainerState state;
  if (!opt.resume.empty()) {
    // The checkpoint's expert layout first (dynamic experts change shapes), then its state.
    const std::string path = checkpoints.select(opt.resume);
    const ModelConfig saved = checkpoint_model_config(path, cfg.model);
    if (saved.moe_layout != tm.model->config().moe_layout)
      tm = build_training_model(saved, be, selected.act_dtype, seed, tc.batch_size, tc.seq_len, adamw);
    state = checkpoints.load(path, *tm.model, *tm.optimizer);
    check_resumed_expert_layout(saved, cfg.model, expert_events, state.step, path);
  }
  if (scaler && state.extra.contains("loss_scaler")) scaler->load_state(state.extra["loss_scaler"]);

  // ---- the run directory -----------------------------------------------------------------------
  for (const fs::path& d : {paths.logs, paths.metrics, paths.checkpoints}) fs::create_directories(d);
  attach_log_file((paths.logs / "training.log").string());
  write_resolved_config(cfg, (paths.root / "config.toml").string());
  log_info("data: {} train documents ({} tokens, {} sequences of {}), {} validation documents ({} tokens)",
           corpus.train_documents, train_data.num_tokens(), train_data.num_windows(), tc.seq_len,
           corpus.val_documents, corpus.val_tokens.size());
  log_info("model: {} parameters ({:.2f}M), backend {}, activations {}", counts.total, counts.total / 1e6, be.name(),
           dtype_name(selected.act_dtype));
  if (!opt.resume.empty()) log_info("resumed from {} at step {}", checkpoints.loaded_path(), state.step);
  TrainSummary summary;
  if (val_data) {
    summary.unigram_bits_per_token = unigram_bits_per_token(corpus, cfg.model.vocab_size);
    log_info("baseline: a unigram model of the training split scores {:.4f} bits/token on validation",
             summary.unigram_bits_per_token);
  }
  MetricsLog metrics((paths.metrics / "metrics.jsonl").string());
  metrics.truncate_after(state.step);  // rows past the checkpoint are rewritten by this run

  summary.run_dir = paths.root.string();
  int64_t last_saved_step = -1;
  auto save = [&](bool is_best) {
    if (scaler) state.extra["loss_scaler"] = scaler->state();
    summary.last_checkpoint = checkpoints.save(*tm.model, *tm.optimizer, state, is_best);
    last_saved_step = state.step;
    log_info("saved checkpoint {}", summary.last_checkpoint);
  };
  auto run_eval = [&]() {
    if (!val_data) return false;
    const EvalResult e = evaluate(*tm.model, *val_data, tc.batch_size, tc.eval_steps);
    nlohmann::json row = eval_row(state.step, e);
    if (cfg.model.use_mod && cfg.model.mod_routing_type == "learned") {
      // What generation sees: every MoD layer decides per token with its predictor (model/mod.h).
      tm.model->set_mod_causal(true);
      const EvalResult causal = evaluate(*tm.model, *val_data, tc.batch_size, tc.eval_steps);
      tm.model->set_mod_causal(false);
      row["val_loss_causal"] = causal.loss;
      log_info("eval step {}: MoD with causal (predictor) routing, as in generation: val_loss {:.4f}", state.step,
               causal.loss);
    }
    metrics.append(row);
    summary.val_loss = e.loss;
    summary.val_bits_per_token = e.bits_per_token;
    log_info("eval step {}: val_loss {:.4f} | ppl {:.2f} | bits/token {:.4f} | accuracy {:.2f}%", state.step, e.loss,
             e.perplexity, e.bits_per_token, 100.0 * e.accuracy);
    const bool best = e.loss < state.best_val_loss;
    if (best) state.best_val_loss = e.loss;
    return best;
  };

  // ---- loop ---------------------------------------------------------------------------------------
  install_training_signal_handlers();
  const int64_t B = tc.batch_size, T = tc.seq_len, accum = tc.gradient_accumulation_steps;
  std::vector<int32_t> inputs(static_cast<size_t>(accum * B * T)), targets(inputs.size());
  ProgressLine progress;
  const auto start = Clock::now();
  const int64_t start_step = state.step;
  log_info("training steps {} -> {} (warmup {}, {} schedule, peak lr {:.2e})", state.step, schedule.total_steps,
           schedule.warmup_steps, oc.lr_schedule, oc.learning_rate);
  while (state.step < schedule.total_steps) {
    const auto step_start = Clock::now();
    for (int64_t a = 0; a < accum; ++a)
      train_data.next_batch(state.cursor, B, inputs.data() + a * B * T, targets.data() + a * B * T);
    int64_t valid = 0;
    for (int32_t t : targets) valid += t >= 0;
    LUMINA_CHECK(valid > 0, "step {}: every target of the batch is masked", state.step);
    apply_expert_events(tm, expert_events, state.step, seed, inputs.data(), targets.data());
    Transformer& model = *tm.model;
    AdamW& optimizer = *tm.optimizer;

    model.params().overwrite_grads_next();  // the step's first gradient writes overwrite: no clearing pass
    const double loss_scale = scaler ? scaler->scale() : 1.0;
    double loss_sum = 0.0;
    MoeStepStats moe_stats;
    ModStepStats mod_stats(cfg.model.mod_routing_type == "learned", cfg.model.num_layers);
    // Objective (transformer.h): CE summed over the step / its valid targets + the mean over micro-batches of
    // the MoE aux + z losses, all times the loss scale.
    for (int64_t a = 0; a < accum; ++a) {
      model.set_training_step(true, tc.seed, state.step, a);
      const ForwardResult r = model.forward(inputs.data() + a * B * T, targets.data() + a * B * T,
                                            loss_scale / static_cast<double>(valid));
      model.backward(loss_scale / static_cast<double>(accum));
      loss_sum += r.loss_sum;
      moe_stats.add(r);
      mod_stats.add(r);
    }
    const double loss = loss_sum / static_cast<double>(valid);
    const double scaled_grad_norm = grad_global_norm(model.params());
    const double grad_norm = scaled_grad_norm / loss_scale;
    const double lr = schedule.lr_at(state.step);
    // With fp16, a step whose gradients overflowed is skipped (the scaler backs off).
    if (!scaler || scaler->update(scaled_grad_norm)) {
      // AdamW writes the compute-dtype weights in the same pass; the next forward skips its cast.
      optimizer.step(lr, clip_scale(grad_norm, oc.gradient_clip_val) / loss_scale, model.compute_weights());
      model.mark_compute_weights_current();
    } else {
      log_warning("step {}: fp16 gradients overflowed at loss scale {}; step skipped, scale now {}", state.step + 1,
                  loss_scale, scaler->scale());
    }
    be.synchronize();
    state.step += 1;
    state.tokens_seen += accum * B * T;

    const double step_seconds = std::chrono::duration<double>(Clock::now() - step_start).count();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const double tokens_per_second = static_cast<double>(accum * B * T) / step_seconds;
    nlohmann::json row = {{"step", state.step}, {"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm},
                          {"tokens_per_second", tokens_per_second}, {"tokens", state.tokens_seen},
                          {"elapsed_s", elapsed}};
    if (scaler) {
      row["loss_scale"] = loss_scale;
      row["skipped_steps"] = scaler->skipped_steps();
    }
    if (!moe_stats.empty()) row["moe"] = moe_stats.to_json();
    if (!mod_stats.empty()) row["mod"] = mod_stats.to_json();
    metrics.append(row);
    LUMINA_CHECK(std::isfinite(loss), "step {}: the loss is {} (diverged): lower optim.learning_rate or check the data",
                 state.step, loss);
    if (tc.log_interval > 0 && (state.step % tc.log_interval == 0 || state.step == schedule.total_steps)) {
      ProgressStats ps;
      ps.step = state.step;
      ps.total_steps = schedule.total_steps;
      ps.loss = loss;
      ps.lr = lr;
      ps.grad_norm = grad_norm;
      ps.tokens_per_second = tokens_per_second;
      ps.start_step = start_step;
      ps.elapsed_seconds = elapsed;
      if (!moe_stats.empty()) ps.extra = moe_stats.progress_text();
      if (!mod_stats.empty()) ps.extra += (ps.extra.empty() ? "" : " | ") + mod_stats.progress_text();
      progress.update(ps);
      log_line(LogLevel::debug, format_progress(ps));
    }
    summary.last_loss = loss;

    bool is_best = false;
    const bool eval_now = tc.eval_interval > 0 && state.step % tc.eval_interval == 0;
    if (eval_now) {
      progress.finish();
      is_best = run_eval();
    }
    const SignalRequest signal = take_signal_request();
    const bool periodic = tc.save_every_n_batches > 0 && state.step % tc.save_every_n_batches == 0;
    if (periodic || is_best || signal != SignalRequest::none) {
      progress.finish();
      save(is_best);
    }
    if (signal == SignalRequest::save_and_exit) {
      restore_default_signal_handlers();
      log_info("stopping on signal at step {} (resume with --resume latest)", state.step);
      summary.interrupted = true;
      summary.steps = state.step;
      return summary;
    }
  }
  progress.finish();
  restore_default_signal_handlers();
  // A final evaluation (unless the last step just had one) and a final checkpoint.
  const bool evaluated_last_step = tc.eval_interval > 0 && state.step % tc.eval_interval == 0 && state.step > start_step;
  const bool best = evaluated_last_step ? false : run_eval();
  if (last_saved_step != state.step || best) save(best);
  summary.steps = state.step;
  if (tc.html_report) {
    const std::string report = (paths.root / "report.html").string();
    write_html_report(paths.root.string(), report);
    log_info("report: {}", report);
  }
  return summary;
}

}  // namespace lumina
