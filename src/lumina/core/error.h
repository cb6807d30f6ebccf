#pragma once
// Errors: one exception type whose message says what went wrong, where
// (file, line, field) and what to change. Context is prepended as the error
// travels outwards ("loading configs/x.toml: model.hidden_size: ...").
#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace lumina {

class Error : public std::runtime_error {
 public:
  explicit Error(std::string message) : std::runtime_error(std::move(message)) {}

  // Returns a new error whose message is "<context>: <this message>".
  Error with_context(const std::string& context) const { return Error(context + ": " + what()); }
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace lumina

// LUMINA_CHECK(cond, "fmt", args...): throws lumina::Error with the message when cond is false.
#define LUMINA_CHECK(cond, ...)         \
  do {                                  \
    if (!(cond)) ::lumina::fail(__VA_ARGS__); \
  } while (0)
