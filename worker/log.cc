// Implementation of the stderr log (see log.h).
#include "worker/log.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace ringhttpd::worker {
namespace {

LogLevel g_level = LogLevel::info;
std::string g_role = "supervisor";
// stderr is a socket (systemd's journal stream): written with MSG_DONTWAIT.
bool g_stderr_socket = false;
// Lines this process could not write (stderr full): said in the next one.
uint64_t g_dropped = 0;

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "?";
}

// One event, one line: a control byte in a message (a path or a key from a
// config, a module's text) is written as \xNN, so it can neither forge a
// second line nor reach a terminal as an escape sequence.
void append_one_line(std::string& line, std::string_view message) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char ch : message) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c != 0x7f) {
      line += ch;
    } else {
      line += "\\x";
      line += kHex[c >> 4];
      line += kHex[c & 15];
    }
  }
}

void write_line(const char* tag, std::string_view message) {
  const int saved_errno = errno;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  gmtime_r(&ts.tv_sec, &tm);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string line;
  line.reserve(64 + message.size());
  line += stamp;
  line += "Z ringhttpd[";
  line += std::to_string(getpid());
  line += "] ";
  line += g_role;
  line += ' ';
  line += tag;
  line += ": ";
  append_one_line(line, message);
  if (g_dropped > 0) {
    line += " (";
    line += std::to_string(g_dropped);
    line += " earlier log lines of this process lost: stderr was not read)";
  }
  line += '\n';
  if (write_stderr(line.data(), line.size()) == static_cast<ssize_t>(line.size())) {
    g_dropped = 0;
  } else {
    ++g_dropped;
  }
  errno = saved_errno;
}

}  // namespace

void make_stderr_nonblocking() {
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return;
  if (S_ISSOCK(st.st_mode)) {
    g_stderr_socket = true;
    return;
  }
  if (!S_ISFIFO(st.st_mode)) return;
  // A description of our own: O_NONBLOCK on the inherited one would reach
  // whoever shares it (the shell that started us).
  const int fd = ::open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return;
  ::dup2(fd, STDERR_FILENO);  // without O_CLOEXEC: children inherit stderr
  ::close(fd);
}

ssize_t write_stderr(const char* data, size_t size) {
  size_t at = 0;
  while (at < size) {
    const ssize_t n = g_stderr_socket
                          ? ::send(STDERR_FILENO, data + at, size - at, MSG_DONTWAIT | MSG_NOSIGNAL)
                          : ::write(STDERR_FILENO, data + at, size - at);
    if (n > 0) {
      at += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return at > 0 ? static_cast<ssize_t>(at) : -1;
    }
  }
  return static_cast<ssize_t>(at);
}

LogLevel parse_log_level(std::string_view text) {
  if (text == "debug") return LogLevel::debug;
  if (text == "warn") return LogLevel::warn;
  if (text == "error") return LogLevel::error;
  return LogLevel::info;
}

void set_log_level(LogLevel level) { g_level = level; }
void set_log_role(std::string role) { g_role = std::move(role); }

namespace {
std::string g_last_error;
}  // namespace

void log(LogLevel level, std::string_view message) {
  if (level == LogLevel::error) g_last_error.assign(message.substr(0, 1024));
  if (level >= g_level) write_line(level_name(level), message);
}

std::string_view last_error() { return g_last_error; }

void log_notice(std::string_view message) { write_line("notice", message); }

std::string errno_message(std::string_view call) {
  return std::string(call) + ": " + std::strerror(errno);
}

}  // namespace ringhttpd::worker
