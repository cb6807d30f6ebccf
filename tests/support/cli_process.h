#pragma once
// Running the lumina binary from tests (LUMINA_BINARY): to completion with its
// output captured, or in the background to be signalled or killed.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace lumina::test {

struct CliResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr, interleaved
};

// Starts `lumina args...` with extra environment entries ("NAME=value"), stdout and
// stderr to `log_path`. Returns the child's pid.
inline pid_t spawn_lumina(const std::vector<std::string>& args, const std::string& log_path,
                          const std::vector<std::string>& env = {}) {
  // Everything the child needs is built before fork(): after it, only exec-safe calls.
  std::vector<char*> argv{const_cast<char*>(LUMINA_BINARY)};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e) envp.push_back(*e);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execve(LUMINA_BINARY, argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

inline int wait_exit_code(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `lumina args...` to completion.
inline CliResult run_lumina(const std::vector<std::string>& args, const std::string& log_path,
                            const std::vector<std::string>& env = {}) {
  CliResult r;
  r.exit_code = wait_exit_code(spawn_lumina(args, log_path, env));
  r.output = read_text(log_path);
  return r;
}

// Polls `condition` every 5 ms for up to `timeout`; true when it held.
template <class F>
bool wait_until(F&& condition, std::chrono::milliseconds timeout = std::chrono::milliseconds(60000)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

}  // namespace lumina::test
