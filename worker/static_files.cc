// Static file decisions and openat2 (see static_files.h).
#include "worker/static_files.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>

#include "proto/http_request.h"

namespace ringhttpd::worker {
namespace {

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i) {
    char a = s[s.size() - suffix.size() + i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (a != suffix[i]) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> static_relative_path(std::string_view prefix,
                                                std::string_view request_path) {
  if (!request_path.starts_with(prefix)) return std::nullopt;
  std::string_view rest = request_path.substr(prefix.size());
  std::string decoded;
  decoded.reserve(rest.size());
  for (size_t i = 0; i < rest.size(); ++i) {
    char c = rest[i];
    if (c == '%') {
      if (i + 2 >= rest.size()) return std::nullopt;  // "%" or "%x" at the end
      const int hi = proto::hex_value(rest[i + 1]), lo = proto::hex_value(rest[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      if (c == '/') return std::nullopt;  // an encoded slash is not a separator here
      i += 2;
    }
    if (c == '\0' || c == '\\') return std::nullopt;
    decoded += c;
  }
  // Segment by segment: no "." or "..", no empty segment inside.
  std::string out;
  size_t at = 0;
  while (at <= decoded.size()) {
    const size_t slash = decoded.find('/', at);
    const std::string_view seg = std::string_view(decoded).substr(
        at, slash == std::string::npos ? std::string::npos : slash - at);
    if (seg == "." || seg == "..") return std::nullopt;
    if (!seg.empty()) {
      if (!out.empty()) out += '/';
      out += seg;
    }
    if (slash == std::string::npos) break;
    at = slash + 1;
  }
  // A trailing slash names a directory: kept, so that a file named with
  // one is not found (the open fails with ENOTDIR), as nginx answers it.
  if (!out.empty() && decoded.ends_with('/')) out += '/';
  return out;
}

std::string_view media_type(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 24> kTypes = {{
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".json", "application/json"},
      {".txt", "text/plain; charset=utf-8"},
      {".xml", "application/xml"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".webp", "image/webp"},
      {".ico", "image/vnd.microsoft.icon"},
      {".avif", "image/avif"},
      {".woff", "font/woff"},
      {".woff2", "font/woff2"},
      {".pdf", "application/pdf"},
      {".wasm", "application/wasm"},
      {".mp4", "video/mp4"},
      {".webm", "video/webm"},
      {".gz", "application/gzip"},
      {".zip", "application/zip"},
  }};
  for (const auto& [ext, type] : kTypes) {
    if (ends_with_ci(name, ext)) return type;
  }
  return "application/octet-stream";
}

std::string_view media_type(std::string_view name, const MediaTypes& overrides) {
  if (!overrides.empty()) {
    const size_t dot = name.rfind('.');
    const size_t slash = name.rfind('/');
    if (dot != std::string_view::npos && (slash == std::string_view::npos || dot > slash)) {
      std::string ext(name.substr(dot + 1));
      for (char& c : ext) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
      if (auto it = overrides.find(ext); it != overrides.end()) return it->second;
    }
  }
  return media_type(name);
}

std::string entity_tag(const struct stat& st) {
  char tag[96];
  std::snprintf(
      tag, sizeof tag, "\"%llx-%llx-%llx.%lx\"", static_cast<unsigned long long>(st.st_ino),
      static_cast<unsigned long long>(st.st_size),
      static_cast<unsigned long long>(st.st_mtim.tv_sec), static_cast<long>(st.st_mtim.tv_nsec));
  return tag;
}

RangeAnswer parse_range(std::string_view header, uint64_t size, ByteRange& range) {
  constexpr std::string_view kUnit = "bytes=";
  if (!header.starts_with(kUnit)) return RangeAnswer::whole;
  std::string_view spec = header.substr(kUnit.size());
  if (spec.find(',') != std::string_view::npos) return RangeAnswer::whole;  // several: ignored
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeAnswer::whole;
  const std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  auto number = [](std::string_view s, uint64_t& v) {
    if (s.empty()) return false;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
  };
  uint64_t first = 0, last = 0;
  if (a.empty()) {  // suffix: the last N bytes
    if (!number(b, last)) return RangeAnswer::whole;
    if (last == 0 || size == 0) return RangeAnswer::unsatisfiable;
    range = {size - std::min(last, size), size - 1};
    return RangeAnswer::partial;
  }
  if (!number(a, first)) return RangeAnswer::whole;
  if (b.empty()) {
    last = size == 0 ? 0 : size - 1;
  } else if (!number(b, last) || last < first) {
    return RangeAnswer::whole;  // invalid: ignored (RFC 9110 14.2)
  }
  if (first >= size) return RangeAnswer::unsatisfiable;
  range = {first, std::min(last, size - 1)};
  return RangeAnswer::partial;
}

proto::UniqueFd open_beneath(int root_fd, const std::string& relative, bool directory) {
  open_how how{};
  // O_NONBLOCK: opening a FIFO (or a device) must never wait, since the
  // whole network process would wait with it (a FIFO's open blocks until
  // a writer comes). It changes nothing for a regular file: reads and
  // sendfile from the page cache block briefly on the disk as without it
  // (open(2)), so the caller's fstat decides, and serves regular files only.
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (directory ? O_DIRECTORY : 0);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  const char* path = relative.empty() ? "." : relative.c_str();
  const long fd = ::syscall(SYS_openat2, root_fd, path, &how, sizeof how);
  return proto::UniqueFd(fd < 0 ? -1 : static_cast<int>(fd));
}

}  // namespace ringhttpd::worker
