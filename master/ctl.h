// `ringhttpd ctl`: the admin socket's command-line client. It connects to
// the socket (blocking, with a deadline), sends one request line, reads one
// answer line, and prints it for a person (a `ps`-like table for status) or
// raw with --json. The formatting is pure, for unit tests.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace ringhttpd::master {

struct CtlOptions {
  std::optional<std::string> socket;       // --socket PATH
  std::optional<std::string> config_path;  // -c FILE: admin.socket read from it
  std::string command;                     // status, reload, config, metrics, help
  bool json = false;                       // print the raw answer line
};

// Adds the `ctl` subcommand to the command line, filling `options`.
CLI::App* add_ctl_command(CLI::App& app, CtlOptions& options);

// Runs the command; returns the exit status (0, or 1 with one line on stderr).
int run_ctl(const CtlOptions& options);

// The server's answer line: a JSON object nested at most kMaxAnswerDepth
// levels (a config answer needs under 10; the config reader allows 64 in
// the file). Otherwise nullopt with `error` set, one line for a person: a
// deeper answer would overflow the stack when it is copied or printed.
inline constexpr int kMaxAnswerDepth = 100;
std::optional<nlohmann::json> parse_answer(const std::string& line, std::string& error);

// How long `ctl reload` waits for its answer, from the serving config (the
// `config` command's answer): each process of the new generation has its
// start_timeout_ms (a network process 10 s), and a reload asked for while
// another runs is answered after the next one: twice the longest, plus
// 10 s. A reload whose new config raises start_timeout_ms may take longer
// (ctl then says so, and `ctl status` shows how it ended).
int reload_wait_ms(const nlohmann::json& config_answer);

// "850ms", "12s", "5m 12s", "3h 05m", "2d 4h".
std::string format_duration(int64_t ms);
// The status answer as a summary and one row per process. `now_unix_ms`
// dates the last reload ("1m 3s ago").
std::string format_status(const nlohmann::json& status, int64_t now_unix_ms);

}  // namespace ringhttpd::master
