#pragma once
// Signal handling for training: SIGTERM/SIGINT ask the trainer to save a
// checkpoint and exit after the current step; SIGUSR1 asks it to save and go
// on. Handlers only set flags (async-signal-safe); the trainer polls them
// between steps.
namespace lumina {

enum class SignalRequest { none, save_and_exit, save_and_continue };

void install_training_signal_handlers();
// Back to the default actions (a signal after the loop ends the process at once).
void restore_default_signal_handlers();
// Returns the pending request and clears it (save_and_exit wins over save_and_continue).
SignalRequest take_signal_request();

}  // namespace lumina
