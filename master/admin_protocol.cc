// The admin protocol's pure parts (see admin_protocol.h).
#include "master/admin_protocol.h"

#include <algorithm>
#include <array>
#include <set>
#include <string>
#include <utility>

#include "master/config.h"

namespace ringhttpd::master {
namespace {

using nlohmann::json;

struct CommandInfo {
  std::string_view name;
  AdminCommand command;
  std::string_view help;
};

constexpr std::array<CommandInfo, 5> kCommands = {{
    {"status", AdminCommand::status,
     "version, uptime, generations, last reload, one row per process"},
    {"reload", AdminCommand::reload,
     "reload the config (as SIGHUP); answers when the new generation serves or the reload failed"},
    {"config", AdminCommand::config, "the effective config of the serving generation"},
    {"metrics", AdminCommand::metrics,
     "the serving generation's metrics, Prometheus text exposition format 0.0.4"},
    {"help", AdminCommand::help, "this list"},
}};

// What a client sent is echoed back only escaped and cut short: an error
// answer must not grow with the input.
std::string shown(std::string_view text) {
  constexpr size_t kMax = 64;
  std::string out = escape_text(text.substr(0, kMax));
  if (text.size() > kMax) out += "...";
  return out;
}

}  // namespace

std::optional<std::string> LineBuffer::next_line() {
  const size_t nl = data_.find('\n', std::max(at_, scanned_));
  if (nl == std::string::npos) {
    scanned_ = data_.size();
    return std::nullopt;
  }
  if (nl - at_ > kMaxAdminLine) return std::nullopt;  // overflowed() says so
  size_t end = nl;
  if (end > at_ && data_[end - 1] == '\r') --end;
  std::string line = data_.substr(at_, end - at_);
  at_ = nl + 1;
  scanned_ = at_;
  // Compact once the consumed part dominates, so the buffer does not grow
  // with the number of lines a long-lived client sends.
  if (at_ > 4096 && at_ * 2 > data_.size()) {
    data_.erase(0, at_);
    scanned_ -= at_;
    at_ = 0;
  }
  return line;
}

std::string LineBuffer::take_rest() {
  std::string rest = data_.substr(at_);
  data_.clear();
  at_ = scanned_ = 0;
  return rest;
}

bool LineBuffer::overflowed() const {
  // Only the first line not yet taken counts (complete or not): several
  // short lines in one read are fine. kMaxAdminLine bytes plus "\n" is the
  // longest line allowed.
  const size_t open = data_.find('\n', at_);
  const size_t len = (open == std::string::npos ? data_.size() : open) - at_;
  return len > kMaxAdminLine;
}

AdminRequest parse_admin_request(std::string_view line) {
  AdminRequest r;
  // No exceptions: a parse failure gives a discarded value. (Nesting is
  // bounded by kMaxAdminLine; nlohmann parses and destroys iteratively.)
  // A NUL would end the reader early ("{...}\0garbage" read as "{...}"), and
  // a repeated key would leave the last one standing, where a wrapper that
  // checked the first could be bypassed: both are refused, as the config
  // loader refuses its duplicate keys.
  if (line.find('\0') != std::string_view::npos) {
    r.error = admin_error("a request line must not contain a NUL byte");
    return r;
  }
  std::set<std::string> top_keys;
  std::string repeated;
  const json::parser_callback_t note_keys = [&](int depth, json::parse_event_t event, json& key) {
    if (event == json::parse_event_t::key && depth == 1 && key.is_string() &&
        !top_keys.insert(key.get<std::string>()).second && repeated.empty()) {
      repeated = key.get<std::string>();
    }
    return true;
  };
  const json v = json::parse(line, note_keys, /*allow_exceptions=*/false);
  if (!v.is_discarded() && !repeated.empty()) {
    r.error = admin_error("duplicate key \"" + shown(repeated) + "\" in the request");
    return r;
  }
  if (v.is_discarded()) {
    r.error = admin_error(
        "malformed JSON: a request is one JSON object per line, "
        "e.g. {\"command\": \"status\"}");
    return r;
  }
  if (!v.is_object()) {
    r.error = admin_error("a request must be a JSON object, e.g. {\"command\": \"status\"}");
    return r;
  }
  const auto it = v.find("command");
  if (it == v.end() || !it->is_string()) {
    r.error = admin_error("missing \"command\" (a string); try {\"command\": \"help\"}");
    return r;
  }
  const std::string& name = it->get_ref<const std::string&>();
  for (const CommandInfo& c : kCommands) {
    if (c.name == name) {
      r.command = c.command;
      return r;
    }
  }
  r.error = admin_error("unknown command \"" + shown(name) + "\"; try {\"command\": \"help\"}");
  return r;
}

json admin_error(std::string_view message) {
  return {{"ok", false}, {"error", std::string(message)}};
}

json admin_help() {
  json commands = json::array();
  for (const CommandInfo& c : kCommands) {
    commands.push_back({{"command", std::string(c.name)}, {"description", std::string(c.help)}});
  }
  return {{"ok", true}, {"commands", std::move(commands)}};
}

std::string admin_line(const json& answer) {
  return answer.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace ringhttpd::master
