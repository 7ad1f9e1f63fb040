// Implementation of `check --init` (see module_init_check.h). The child does
// what a service process does before it serves: drop privileges, dlopen,
// init, and here destroy; it reports through a pipe and exits. The parent
// waits for its answer for at most the limit, then kills it.
#include "master/module_init_check.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>

#include "master/privileges.h"
#include "proto/unique_fd.h"
#include "worker/handlers/module.h"

namespace ringhttpd::master {
namespace {

// In the child: "" when init succeeded, else why. The caller then _exits,
// so nothing of the parent's state is flushed or destroyed twice.
std::string init_in_child(const Config& config, const worker::ServiceSettings& service) {
  const rlimit no_core{0, 0};  // a check leaves no core file behind
  ::setrlimit(RLIMIT_CORE, &no_core);
  if (will_drop_privileges(config.run_as, ::geteuid())) {
    if (std::string e = drop_privileges(config.run_as); !e.empty()) return e;
  }
  std::string error;
  const worker::ServiceIdentity identity{service.name, static_cast<uint32_t>(::getpid()), 0, 0};
  std::unique_ptr<worker::Handler> handler =
      worker::ModuleHandler::load(service.module, identity, error);
  if (!handler) return error.empty() ? std::string("init failed") : error;
  handler.reset();  // the module's destroy, as at a process's end
  return {};
}

// What the child wrote, until it closed the pipe or the deadline passed
// (then `timed_out`).
std::string read_answer(int fd, std::chrono::steady_clock::time_point deadline, bool& timed_out) {
  std::string out;
  char buf[1024];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      return out;
    }
    pollfd p{fd, POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;  // the deadline is checked above
    const ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return out;
    if (out.size() < 4096) out.append(buf, static_cast<size_t>(got));
  }
}

// "" when the module's init succeeded in a child, else the reason.
std::string run_one(const Config& config, const worker::ServiceSettings& service,
                    std::chrono::milliseconds limit) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return std::string("pipe2: ") + std::strerror(errno);
  proto::UniqueFd read_end(fds[0]);
  proto::UniqueFd write_end(fds[1]);
  const pid_t pid = ::fork();
  if (pid < 0) return std::string("fork: ") + std::strerror(errno);
  if (pid == 0) {
    read_end.reset();
    const std::string e = init_in_child(config, service);
    if (!e.empty()) {
      ssize_t unused = ::write(write_end.get(), e.data(), e.size());
      (void)unused;
    }
    ::_exit(e.empty() ? 0 : 1);
  }
  write_end.reset();
  bool timed_out = false;
  std::string answer =
      read_answer(read_end.get(), std::chrono::steady_clock::now() + limit, timed_out);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const std::string label = "module " + service.module.path;
  if (timed_out) {
    return label + ": init did not return within " + std::to_string(limit.count()) + " ms";
  }
  if (WIFSIGNALED(status)) {
    return label + ": init crashed (signal " + std::to_string(WTERMSIG(status)) + ")";
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  return answer.empty() ? label + ": init failed" : answer;
}

// The reason of a failing init as one line of the report. It begins with
// the label, "module PATH": the path is the config's, escaped like every
// value `check` prints. What follows is the module's text as
// ModuleHandler::init made it printable (bytes outside printable ASCII,
// and `\`, as \xNN): it is shown as `serve` logs it, not escaped a second
// time (that would print "\\x0a" for the module's newline).
std::string report(const std::string& label, const std::string& reason) {
  if (!reason.starts_with(label)) return escape_text(reason);
  return escape_text(label) + printable_line(std::string_view(reason).substr(label.size()));
}

}  // namespace

std::vector<std::string> run_module_inits(const Config& config) {
  std::vector<std::string> errors;
  for (size_t i = 0; i < config.services.size(); ++i) {
    const worker::ServiceSettings& service = config.services[i];
    if (service.type != "module") continue;
    const std::chrono::milliseconds limit{service.start_timeout_ms};
    if (std::string e = run_one(config, service, limit); !e.empty()) {
      errors.push_back("services[" + std::to_string(i) +
                       "].config: " + report("module " + service.module.path, e));
    }
  }
  return errors;
}

}  // namespace ringhttpd::master
