#include "lumina/train/signals.h"

#include <atomic>
#include <csignal>

namespace lumina {

namespace {
std::atomic<int> g_exit_requested{0};
std::atomic<int> g_save_requested{0};

void on_signal(int sig) {
  if (sig == SIGUSR1) g_save_requested.store(1);
  else g_exit_requested.store(1);
}
}  // namespace

void install_training_signal_handlers() {
  struct sigaction action{};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGUSR1, &action, nullptr);
}

void restore_default_signal_handlers() {
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) std::signal(sig, SIG_DFL);
}

SignalRequest take_signal_request() {
  if (g_exit_requested.exchange(0)) {
    g_save_requested.store(0);
    return SignalRequest::save_and_exit;
  }
  if (g_save_requested.exchange(0)) return SignalRequest::save_and_continue;
  return SignalRequest::none;
}

}  // namespace lumina
