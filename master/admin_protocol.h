// The admin socket's wire protocol, apart from any socket (Envoy's split of
// framing and decisions from I/O), so it is tested without processes:
//
//   client -> server   one JSON object per line: {"command": "status"}\n
//   server -> client   one JSON object per line, always with "ok":
//                      {"ok": true, ...} or {"ok": false, "error": "..."}\n
//
// - LineBuffer: splits what a client sent into lines and refuses a line
//   longer than kMaxAdminLine (the client is then answered and closed).
// - parse_admin_request: one line -> a command or an error answer.
// - admin_line: a JSON value -> one line of text, invalid UTF-8 replaced (a
//   process title or a file name is not guaranteed UTF-8, and dump() would
//   throw on it).
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace ringhttpd::master {

inline constexpr size_t kMaxAdminLine = 64 * 1024;

class LineBuffer {
 public:
  // Appends bytes read from the client.
  void append(std::string_view bytes) { data_.append(bytes); }
  // The next complete line without its "\n" (and without a "\r" before it),
  // or nullopt when no complete line is buffered. Never returns a line
  // longer than kMaxAdminLine: once overflowed() is true it returns nothing.
  std::optional<std::string> next_line();
  // Whatever is left (a last line without "\n", at EOF).
  std::string take_rest();
  // True when more than kMaxAdminLine bytes arrived without a newline.
  bool overflowed() const;
  size_t buffered() const { return data_.size() - at_; }

 private:
  std::string data_;
  size_t at_ = 0;       // data_[0, at_) was consumed
  size_t scanned_ = 0;  // data_[at_, scanned_) holds no newline (no rescans)
};

enum class AdminCommand { status, reload, config, metrics, help };

struct AdminRequest {
  std::optional<AdminCommand> command;  // nullopt: `error` is the answer
  nlohmann::json error;
};

// A line is a JSON object with a string "command"; other keys are ignored
// (room for arguments later).
AdminRequest parse_admin_request(std::string_view line);

nlohmann::json admin_error(std::string_view message);
nlohmann::json admin_help();
// One line of output, "\n" included.
std::string admin_line(const nlohmann::json& answer);

}  // namespace ringhttpd::master
