// The server's own log (not the access log): one line per event on stderr,
// prefixed with the process's role so interleaved lines from several
// processes stay readable. A line is written with a single write(2), so lines
// from different processes never mix.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace ringhttpd::worker {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };

// Parses "debug", "info", "warn", "error" (config log.level); info otherwise.
LogLevel parse_log_level(std::string_view text);

// Process-wide settings: the minimum level and the role prefix
// (e.g. "network g1 #0"). Set once at process start, before any logging.
void set_log_level(LogLevel level);
void set_log_role(std::string role);

void log(LogLevel level, std::string_view message);
inline void log_debug(std::string_view m) { log(LogLevel::debug, m); }
inline void log_info(std::string_view m) { log(LogLevel::info, m); }
inline void log_warn(std::string_view m) { log(LogLevel::warn, m); }
inline void log_error(std::string_view m) { log(LogLevel::error, m); }

// Written whatever the level, tagged "notice": for the few lines that say
// the server's state to an operator or a script (ready, a reload serving),
// which must not disappear with log.level "warn" or "error".
void log_notice(std::string_view message);

// The last message logged at level error by this process (whatever the
// level setting; at most 1 KiB): what a child that cannot start tells the
// supervisor (ControlType::failed), so that `ctl reload` can say why.
std::string_view last_error();

// Logging never blocks a process: a reader of stderr that stops reading (a
// pipe to a stalled logger, a full journal stream) costs lines, not the
// event loop. Called once by the supervisor before its first fork: a pipe
// gets a non-blocking description of its own (the one inherited may be
// shared with the shell that started us), a socket is written with
// MSG_DONTWAIT; files and terminals are left as they are. A line that
// could not be written is counted and said in this process's next line.
void make_stderr_nonblocking();
// Writes to stderr as above: the bytes written (fewer than `size`, or -1
// with errno, when stderr is full or failed).
ssize_t write_stderr(const char* data, size_t size);

// "call: strerror(errno)" for error messages that name the failing syscall.
std::string errno_message(std::string_view call);

}  // namespace ringhttpd::worker
