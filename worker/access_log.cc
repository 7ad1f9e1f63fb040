// Access log formatting and buffered writes (see access_log.h).
#include "worker/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "worker/event_loop.h"
#include "worker/log.h"

namespace ringhttpd::worker {
namespace {

constexpr size_t kFlushBytes = 64 * 1024;
constexpr int64_t kFlushAfterMs = 1000;

// A field from the request goes into a quoted string: '"', '\' and every
// byte outside printable ASCII become \xHH (as nginx does), so a request
// can never forge a line or a field.
void append_escaped(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
}

void append_field(std::string& out, std::string_view s) {
  if (s.empty()) {
    out += '-';
  } else {
    append_escaped(out, s);
  }
}

void append_json_string(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      // Bytes, not text: each one outside printable ASCII is \u00HH, so the
      // line is valid JSON whatever the client sent.
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

}  // namespace

void AccessLog::format_combined(const AccessEntry& e, std::string_view time_local,
                                std::string& out) {
  append_field(out, e.remote);
  out += " - - [";
  out += time_local;
  out += "] \"";
  if (e.method.empty()) {
    out += '-';
  } else {
    append_escaped(out, e.method);
    out += ' ';
    append_escaped(out, e.target);
    out += " HTTP/";
    out += static_cast<char>('0' + e.version_major % 10);
    out += '.';
    out += static_cast<char>('0' + e.version_minor % 10);
  }
  out += "\" ";
  out += std::to_string(e.status);
  out += ' ';
  out += std::to_string(e.body_bytes);
  out += " \"";
  append_field(out, e.referer);
  out += "\" \"";
  append_field(out, e.user_agent);
  out += "\"\n";
}

void AccessLog::format_json(const AccessEntry& e, std::string_view time_iso, std::string& out) {
  char duration[32];
  std::snprintf(duration, sizeof duration, "%.3f", e.duration_ms);
  out += "{\"time\":\"";
  out += time_iso;
  out += "\",\"remote\":";
  append_json_string(out, e.remote);
  out += ",\"method\":";
  append_json_string(out, e.method);
  out += ",\"target\":";
  append_json_string(out, e.target);
  out += ",\"version\":\"";
  out += static_cast<char>('0' + e.version_major % 10);
  out += '.';
  out += static_cast<char>('0' + e.version_minor % 10);
  out += "\",\"status\":";
  out += std::to_string(e.status);
  out += ",\"bytes\":";
  out += std::to_string(e.body_bytes);
  out += ",\"referer\":";
  append_json_string(out, e.referer);
  out += ",\"user_agent\":";
  append_json_string(out, e.user_agent);
  out += ",\"duration_ms\":";
  out += duration;
  out += "}\n";
}

std::string AccessLog::open(const std::string& target, Format format) {
  format_ = format;
  enabled_ = target != "off";
  if (!enabled_) return {};
  if (target == "stderr") {
    fd_ = STDERR_FILENO;
    return {};
  }
  path_ = target;
  return reopen();
}

std::string AccessLog::reopen() {
  if (path_.empty()) return {};
  proto::UniqueFd fd = open_path();
  if (!fd) return "log.access: open " + path_ + ": " + std::strerror(errno);
  if (fd_ >= 0) flush(0, true);  // what was buffered belongs to the old file
  file_ = std::move(fd);
  fd_ = file_.get();
  return {};
}

proto::UniqueFd AccessLog::open_path() const {
  return proto::UniqueFd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
}

void AccessLog::record(const AccessEntry& entry, std::time_t now) {
  if (!enabled_) return;
  if (now != time_second_) {
    time_second_ = now;
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    char text[40];
    const char* pattern =
        format_ == Format::combined ? "%d/%b/%Y:%H:%M:%S +0000" : "%Y-%m-%dT%H:%M:%SZ";
    std::strftime(text, sizeof text, pattern, &tm);
    time_text_ = text;
  }
  if (format_ == Format::combined) {
    format_combined(entry, time_text_, buffer_);
  } else {
    format_json(entry, time_text_, buffer_);
  }
  ++buffered_lines_;
  if (first_buffered_ms_ < 0) first_buffered_ms_ = monotonic_ms();
  if (buffer_.size() >= kFlushBytes) flush(0, true);
}

void AccessLog::flush(int64_t now_ms, bool force) {
  if (buffer_.empty()) return;
  if (!force && now_ms - first_buffered_ms_ < kFlushAfterMs) return;
  if (fd_ < 0 && !path_.empty()) {
    file_ = open_path();
    fd_ = file_.get();
  }
  if (fd_ < 0) {  // not open yet (see open_access_log): these lines are lost
    lost_ += buffered_lines_;
    lost_call_ = "open";
    lost_errno_ = errno;
  }
  size_t at = 0;
  while (fd_ >= 0 && at < buffer_.size()) {
    const ssize_t n = fd_ == STDERR_FILENO ? write_stderr(buffer_.data() + at, buffer_.size() - at)
                                           : ::write(fd_, buffer_.data() + at, buffer_.size() - at);
    if (n > 0) {
      at += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // Full disk, or gone: the lines not written are lost, requests not. A
    // line cut by a partial write counts as lost.
    const std::string_view rest = std::string_view(buffer_).substr(at);
    lost_ += static_cast<uint64_t>(std::count(rest.begin(), rest.end(), '\n'));
    lost_call_ = "write";
    lost_errno_ = n < 0 ? errno : ENOSPC;
    break;
  }
  buffer_.clear();
  buffered_lines_ = 0;
  first_buffered_ms_ = -1;
}

std::string AccessLog::loss_report(int64_t now_ms, bool force) {
  if (lost_ == reported_lost_) return {};
  if (!force && last_report_ms_ >= 0 && now_ms - last_report_ms_ < kLossReportEveryMs) return {};
  std::string out = "log.access: ";
  out += path_.empty() ? "stderr" : path_;
  out += ": " + std::to_string(lost_ - reported_lost_) + " lines lost (" + lost_call_ + ": ";
  out += std::strerror(lost_errno_);
  out += "); the requests were answered";
  reported_lost_ = lost_;
  last_report_ms_ = now_ms;
  return out;
}

}  // namespace ringhttpd::worker
