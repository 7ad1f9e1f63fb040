// The `ringhttpd ctl` client (see ctl.h). What the server answers is read
// with the same care as any input: the line is bounded, the JSON parsed
// without exceptions, every field checked for its type before use, and
// strings made printable before they reach the terminal.
#include "master/ctl.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "master/config.h"
#include "master/lifecycle.h"
#include "master/systemd.h"
#include "proto/unique_fd.h"

namespace ringhttpd::master {
namespace {

using nlohmann::json;

constexpr int kTimeoutMs = 5000;
constexpr size_t kMaxAnswer = 64 << 20;

int64_t now_ms(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void fail_line(const std::string& message) {
  std::fprintf(stderr, "ringhttpd ctl: %s\n", message.c_str());
}

// A server string for the terminal: control bytes (escape sequences, a
// forged newline) become '?'.
std::string printable(std::string s) {
  for (char& ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) ch = '?';
  }
  return s;
}

std::string text(const json& v, const char* key, const std::string& fallback = "-") {
  const auto it = v.find(key);
  if (it == v.end() || it->is_null()) return fallback;
  if (it->is_string()) return printable(it->get<std::string>());
  if (it->is_number_integer() || it->is_boolean()) return it->dump();
  return fallback;
}

std::optional<int64_t> number(const json& v, const char* key) {
  const auto it = v.find(key);
  if (it == v.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

bool flag(const json& v, const char* key) {
  const auto it = v.find(key);
  return it != v.end() && it->is_boolean() && it->get<bool>();
}

std::string duration_of(const json& v, const char* key) {
  const std::optional<int64_t> ms = number(v, key);
  return ms ? format_duration(*ms) : "-";
}

// Where the socket is: --socket, else admin.socket of -c FILE, else of the
// embedded default config. Empty with a message printed when it cannot be said.
std::string socket_path(const CtlOptions& o) {
  if (o.socket) {
    if (o.socket->empty()) fail_line("--socket: an empty path names no socket");
    return *o.socket;
  }
  const ConfigResult r =
      o.config_path ? load_config_file(*o.config_path) : parse_config(default_config_text());
  const std::string where = o.config_path ? escape_text(*o.config_path) : "(embedded default)";
  if (!r.ok()) {
    for (const std::string& e : r.errors) fail_line(where + ": " + e);
    return "";
  }
  if (r.config.admin.socket.empty()) {
    fail_line(where + ": admin.socket is \"\": the admin socket is off");
  }
  return r.config.admin.socket;
}

// Connects, sends one line, returns the answer line (without "\n"), or
// nullopt with the error printed (unless `quiet`). A timeout's line ends
// with `timeout_hint` (the request was sent: the server may be acting on it).
std::optional<std::string> exchange(const std::string& path, const std::string& request,
                                    int timeout_ms, bool quiet = false,
                                    const std::string& timeout_hint = "") {
  const std::string shown = escape_text(path);
  const auto fail = [&](const std::string& message) {
    if (!quiet) fail_line(message);
    return std::nullopt;
  };
  proto::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fail(std::string("socket: ") + std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return fail("socket path too long: " + shown);
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  // Bounds connect() (a server with a full backlog) and each send.
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    std::string hint = " (is the server running?)";
    if (err == EACCES) hint = " (only root, the server's user or admin.group may use it)";
    if (err == EAGAIN) hint = " (the server is not accepting)";
    return fail("cannot connect to " + shown + ": " + std::strerror(err) + hint);
  }
  const std::string line = request + "\n";
  if (::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(line.size())) {
    return fail("cannot send to " + shown + ": " + std::strerror(errno));
  }
  const int64_t deadline = now_ms(CLOCK_MONOTONIC) + timeout_ms;
  std::string answer;
  char buf[65536];
  for (;;) {
    if (const size_t nl = answer.find('\n'); nl != std::string::npos) return answer.substr(0, nl);
    const int64_t left = deadline - now_ms(CLOCK_MONOTONIC);
    pollfd pfd{fd.get(), POLLIN, 0};
    const int ready = left > 0 ? ::poll(&pfd, 1, static_cast<int>(left)) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      return fail("no answer from " + shown + " within " + std::to_string(timeout_ms / 1000) +
                  " s" + timeout_hint);
    }
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return fail(shown + ": the server closed the connection without an answer" +
                  (n < 0 ? std::string(" (") + std::strerror(errno) + ")" : std::string()));
    }
    answer.append(buf, static_cast<size_t>(n));
    if (answer.size() > kMaxAnswer) return fail(shown + ": answer too long");
  }
}

// Left-aligned columns, two spaces apart; the last column is not padded.
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string last_reload_line(const json& status, int64_t now_unix_ms) {
  const auto it = status.find("last_reload");
  if (it == status.end() || !it->is_object()) return "last reload: none";
  const json& r = *it;
  const std::optional<int64_t> at = number(r, "at_ms");
  const std::string ago =
      at ? format_duration(std::max<int64_t>(0, now_unix_ms - *at)) + " ago" : "";
  if (flag(r, "ok")) {
    return "last reload: ok " + ago + " (generation " + text(r, "generation") + " in " +
           duration_of(r, "ms") + ")";
  }
  return "last reload: FAILED " + ago + ": " + text(r, "error", "?");
}

std::string print_json_error(const std::string& line) {
  return "the server's answer is not JSON: " + printable(line.substr(0, 200));
}

}  // namespace

std::optional<json> parse_answer(const std::string& line, std::string& error) {
  // The parser itself is iterative; copying, printing and comparing a value
  // recurse once per level. A value deeper than the bound is discarded as
  // it is parsed (nothing of it is built) and the answer refused.
  bool too_deep = false;
  const json::parser_callback_t bound = [&too_deep](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxAnswerDepth) {
      too_deep = true;
      return false;
    }
    return !too_deep;
  };
  json answer = json::parse(line, bound, /*allow_exceptions=*/false);
  if (too_deep) {
    error = "the server's answer nests deeper than " + std::to_string(kMaxAnswerDepth) +
            " levels; refused";
    return std::nullopt;
  }
  if (answer.is_discarded() || !answer.is_object()) {
    error = print_json_error(line);
    return std::nullopt;
  }
  return answer;
}

int reload_wait_ms(const json& config_answer) {
  constexpr int64_t kMaxStartMs = 3600000;  // the config's bound on start_timeout_ms
  int64_t longest = kReadyTimeoutMs;        // a network process's
  const auto config = config_answer.find("config");
  if (config != config_answer.end() && config->is_object()) {
    const auto services = config->find("services");
    if (services != config->end() && services->is_array()) {
      for (const json& s : *services) {
        if (!s.is_object()) continue;
        const auto t = s.find("start_timeout_ms");
        if (t == s.end() || !t->is_number_integer()) continue;  // unsigned ones too
        if (!t->is_number_unsigned() && t->get<int64_t>() < 0) continue;
        longest = std::max<int64_t>(longest, std::min<uint64_t>(t->get<uint64_t>(), kMaxStartMs));
      }
    }
  }
  return static_cast<int>(2 * longest + 10000);
}

std::string format_duration(int64_t ms) {
  if (ms < 0) ms = 0;
  const int64_t s = ms / 1000, m = s / 60, h = m / 60, d = h / 24;
  char buf[64];
  if (s < 1) {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  } else if (m < 1) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  } else if (h < 1) {
    std::snprintf(buf, sizeof buf, "%lldm %llds", static_cast<long long>(m),
                  static_cast<long long>(s % 60));
  } else if (d < 1) {
    std::snprintf(buf, sizeof buf, "%lldh %02lldm", static_cast<long long>(h),
                  static_cast<long long>(m % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldd %lldh", static_cast<long long>(d),
                  static_cast<long long>(h % 24));
  }
  return buf;
}

namespace {

// A loop runs at least once a second; this much silence means a process
// stuck inside a handler (the watchdog kills it only for an overdue request).
constexpr int64_t kStuckAfterMs = 5000;

// The line under the table about one process, or "": a crash loop, a
// replacement pending, a loop that has not run for a while.
std::string process_note(const json& p) {
  const int64_t streak = number(p, "streak").value_or(0);
  const std::optional<int64_t> next = number(p, "restart_in_ms");
  const std::optional<int64_t> silent = number(p, "heartbeat_age_ms");
  const bool stuck = silent && *silent >= kStuckAfterMs;
  const bool loop = streak >= static_cast<int64_t>(kCrashLoopStreak);
  if (!loop && !next && !stuck) return "";
  std::string note = text(p, "role");
  if (text(p, "service") != "-") note += " " + text(p, "service");
  note += " g" + text(p, "generation") + " #" + text(p, "index") + ":";
  if (stuck) note += " its loop has not run for " + format_duration(*silent) + ";";
  if (loop) note += " crash loop (" + std::to_string(streak) + " failures in a row);";
  if (next) note += " replacement in " + format_duration(*next);
  if (!next && loop) note += " running again";
  if (note.back() == ';') note.pop_back();
  return note + "\n";
}

}  // namespace

std::string format_status(const json& status, int64_t now_unix_ms) {
  if (!status.is_object()) return "(not a status answer)\n";
  std::string out = "ringhttpd " + text(status, "version", "?") + " (pid " + text(status, "pid") +
                    "), up " + duration_of(status, "uptime_ms") + "\n";
  std::string listeners;
  if (const auto it = status.find("listeners"); it != status.end() && it->is_array()) {
    for (const json& l : *it) {
      if (l.is_string())
        listeners += (listeners.empty() ? "" : ", ") + printable(l.get<std::string>());
    }
  }
  const std::string gen = text(status, "generation", "");
  out += gen.empty() ? "starting (no generation serves yet)" : "generation " + gen + " serving";
  if (!listeners.empty()) out += " on " + listeners;
  out += "\n" + last_reload_line(status, now_unix_ms) + "\n";
  if (flag(status, "reload_in_progress")) {
    out += std::string("reload in progress") +
           (flag(status, "reload_pending") ? "; another one requested meanwhile" : "") + "\n";
  }
  std::vector<std::vector<std::string>> rows = {{"ROLE", "SERVICE", "GEN", "IDX", "PID", "STATE",
                                                 "UPTIME", "REQUESTS", "CONNS", "INFLIGHT",
                                                 "RESTARTS"}};
  std::string notes;
  if (const auto it = status.find("processes"); it != status.end() && it->is_array()) {
    for (const json& p : *it) {
      if (!p.is_object()) continue;
      rows.push_back({text(p, "role"), text(p, "service"), text(p, "generation"), text(p, "index"),
                      text(p, "pid"), text(p, "state"), duration_of(p, "uptime_ms"),
                      text(p, "requests"), text(p, "connections"), text(p, "inflight"),
                      text(p, "restarts")});
      notes += process_note(p);
    }
  }
  out += "\n" + table(rows);
  if (!notes.empty()) out += "\n" + notes;
  return out;
}

CLI::App* add_ctl_command(CLI::App& app, CtlOptions& o) {
  CLI::App* ctl = app.add_subcommand(
      "ctl",
      "talk to a running server over its admin socket: status, reload, config, metrics, help");
  CLI::Option* socket = ctl->add_option_function<std::string>(
                               "--socket", [&o](const std::string& v) { o.socket = v; },
                               "the admin socket (default: admin.socket of the embedded config)")
                            ->type_name("PATH");
  ctl->add_option_function<std::string>(
         "-c,--config", [&o](const std::string& v) { o.config_path = v; },
         "read admin.socket from this config file")
      ->type_name("FILE")
      ->excludes(socket);
  ctl->add_option("command", o.command, "status, reload, config, metrics or help")
      ->required()
      ->check(CLI::IsMember({"status", "reload", "config", "metrics", "help"}));
  ctl->add_flag("--json", o.json, "print the server's answer as it is (one JSON line)");
  return ctl;
}

int run_ctl(const CtlOptions& o) {
  const std::string path = socket_path(o);
  if (path.empty()) return 1;
  int timeout = kTimeoutMs;
  std::string timeout_hint;
  if (o.command == "reload") {
    // How long to wait, from the serving config. Quietly: a server that
    // cannot be reached is reported by the reload itself, and one that
    // does not tell (busy forking a large generation, an error answer)
    // gets the least wait, as before start_timeout_ms existed.
    const std::optional<std::string> config =
        exchange(path, R"({"command":"config"})", kTimeoutMs, /*quiet=*/true);
    std::string ignored;
    timeout = reload_wait_ms(config ? parse_answer(*config, ignored).value_or(json::object())
                                    : json::object());
    timeout_hint = "; the reload may still be under way: see `ctl status`";
  }
  const std::optional<std::string> line =
      exchange(path, json{{"command", o.command}}.dump(), timeout, false, timeout_hint);
  if (!line) return 1;
  std::string error;
  const std::optional<json> parsed = parse_answer(*line, error);
  if (!parsed) return fail_line(error), 1;
  const json& answer = *parsed;
  const bool ok = flag(answer, "ok");
  if (o.json) {
    std::printf("%s\n", line->c_str());
    return ok ? 0 : 1;
  }
  if (!ok) {
    fail_line((o.command == "reload" ? "reload failed: " : "") + text(answer, "error", "?"));
    return 1;
  }
  if (o.command == "status") {
    std::fputs(format_status(answer, now_ms(CLOCK_REALTIME)).c_str(), stdout);
  } else if (o.command == "reload") {
    std::printf("reload ok: generation %s serving (%s)\n", text(answer, "generation").c_str(),
                duration_of(answer, "ms").c_str());
  } else if (o.command == "metrics") {
    // The exposition as the server made it (label values are escaped there;
    // a control byte other than newline, which no config should produce, is
    // still kept from the terminal).
    const auto it = answer.find("metrics");
    if (it == answer.end() || !it->is_string()) return fail_line("no \"metrics\" in the answer"), 1;
    std::string out = it->get<std::string>();
    for (char& ch : out) {
      const auto c = static_cast<unsigned char>(ch);
      if ((c < 0x20 && ch != '\n') || c == 0x7f) ch = '?';
    }
    std::fputs(out.c_str(), stdout);
  } else if (o.command == "config") {
    // By reference: the answer's depth is bounded (parse_answer), and
    // nothing needs a copy.
    const auto it = answer.find("config");
    const json none;
    const json& config = it != answer.end() ? *it : none;
    std::printf("%s\n", config.dump(2, ' ', false, json::error_handler_t::replace).c_str());
  } else {
    const auto it = answer.find("commands");
    if (it != answer.end() && it->is_array()) {
      for (const json& c : *it) {
        if (c.is_object()) {
          std::printf("%-8s %s\n", text(c, "command").c_str(), text(c, "description").c_str());
        }
      }
    }
  }
  return 0;
}

}  // namespace ringhttpd::master
