// The access log of one process (a network process; a proxy process for
// the upgrades it took over): one line per response written,
// in the `combined` format (as nginx and Apache write it) or as one JSON
// object per line. Lines are formatted into a buffer and written with one
// write(2) when it holds 64 KiB, at least once a second, and on exit, so the
// request path never waits for the disk; a write that fails (full disk)
// loses those lines, counted, never a request. Each line is appended with
// O_APPEND, so several processes share one file without interleaving within
// a write. reopen() starts a new file at the same path (logrotate's
// postrotate sends SIGUSR1; the supervisor passes it on).
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

#include "proto/unique_fd.h"

namespace ringhttpd::worker {

// What a line says about one request and its response.
struct AccessEntry {
  std::string_view remote;  // client address, "127.0.0.1" or "::1"
  std::string_view method;  // "" when the request did not parse (400, 414...)
  std::string_view target;
  uint8_t version_major = 1;
  uint8_t version_minor = 1;
  int status = 0;
  uint64_t body_bytes = 0;  // response body bytes sent
  std::string_view referer;
  std::string_view user_agent;
  double duration_ms = 0;  // from the request's arrival to its response written
};

class AccessLog {
 public:
  enum class Format { combined, json };

  // `target`: "off", "stderr" or a file path. Returns "" or the error
  // (naming the path and the failing call).
  std::string open(const std::string& target, Format format);
  // log.format's value ("json", else combined).
  static Format format_named(std::string_view name) {
    return name == "json" ? Format::json : Format::combined;
  }
  bool enabled() const { return enabled_; }
  void record(const AccessEntry& entry, std::time_t now);
  // Writes the buffer if it is older than a second (or `force`).
  void flush(int64_t now_ms, bool force = false);
  // Same path, new file (after a rotation). "" or the error. After an
  // open that failed, each flush tries again (its lines are lost until the
  // file opens).
  std::string reopen();
  uint64_t lines_lost() const { return lost_; }
  // Lines lost since the last call: for a scoreboard counter that is added
  // to (it outlives a replaced process).
  uint64_t take_new_losses() {
    const uint64_t n = lost_ - lost_taken_;
    lost_taken_ = lost_;
    return n;
  }
  // A warning for the error log when lines were lost since the last one,
  // at most one per kLossReportEveryMs (a full disk fails every flush)
  // unless `force` (at exit); "" otherwise.
  std::string loss_report(int64_t now_ms, bool force = false);
  static constexpr int64_t kLossReportEveryMs = 10000;

  // Pure formatting, for tests.
  static void format_combined(const AccessEntry& e, std::string_view time_local, std::string& out);
  static void format_json(const AccessEntry& e, std::string_view time_iso, std::string& out);

 private:
  proto::UniqueFd open_path() const;  // path_, O_APPEND (empty, errno, if it cannot)
  bool enabled_ = false;
  Format format_ = Format::combined;
  std::string path_;  // "" for stderr
  proto::UniqueFd file_;
  int fd_ = -1;  // file_ or stderr
  std::string buffer_;
  size_t buffered_lines_ = 0;
  int64_t first_buffered_ms_ = -1;
  std::time_t time_second_ = -1;
  std::string time_text_;
  uint64_t lost_ = 0;
  const char* lost_call_ = "write";  // what failed last: "write", or "open" (not open yet)
  int lost_errno_ = 0;               // of the last failed call
  uint64_t reported_lost_ = 0;
  uint64_t lost_taken_ = 0;  // take_new_losses()
  int64_t last_report_ms_ = -1;
};

}  // namespace ringhttpd::worker
