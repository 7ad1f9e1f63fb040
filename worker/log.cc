// Implementation of the stderr log (see log.h).
#include "worker/log.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace ringhttpd::worker {
namespace {

LogLevel g_level = LogLevel::info;
std::string g_role = "supervisor";

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
  line += '\n';
  ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
  (void)unused;
  errno = saved_errno;
}

}  // namespace

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
