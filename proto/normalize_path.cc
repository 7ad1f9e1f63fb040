// The normal form of a request path (see normalize_path.h).
#include "proto/normalize_path.h"

#include "proto/http_request.h"

namespace ringhttpd::proto {
namespace {

// Whether the segment starting at `at` (just after a '/') is "." or "..".
bool dot_segment_at(std::string_view path, size_t at) {
  const std::string_view seg = path.substr(at, path.find('/', at) - at);
  return seg == "." || seg == "..";
}

// The escape "%HH" at `at`: its byte, or -1 when it is not two hex digits.
int decode_escape(std::string_view path, size_t at) {
  if (at + 2 >= path.size()) return -1;  // "%" or "%H" at the end
  const int hi = hex_value(path[at + 1]);
  const int lo = hex_value(path[at + 2]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

// Ends the segment out[seg..] (out[seg - 1] is '/'): "." is dropped, ".."
// drops itself and the segment before it. False when ".." is at the root.
bool close_segment(std::string& out, size_t seg) {
  const std::string_view s = std::string_view(out).substr(seg);
  if (s == ".") {
    out.resize(seg);
  } else if (s == "..") {
    if (seg == 1) return false;  // "/.." climbs above the root
    out.resize(out.rfind('/', seg - 2) + 1);
  }
  return true;
}

}  // namespace

bool path_is_normal(std::string_view path) {
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '%') return false;
    if (c != '/' || i + 1 == path.size()) continue;
    if (path[i + 1] == '/' || (path[i + 1] == '.' && dot_segment_at(path, i + 1))) return false;
  }
  return true;
}

// One pass: each byte is decoded (an escape at most once) and appended;
// each slash, decoded or not, ends a segment, which is resolved at once.
NormalizedPath normalize_path(std::string_view path, std::string& scratch) {
  if (!path.starts_with('/') || path_is_normal(path)) return {path, 0};
  std::string& out = scratch;
  out.assign(1, '/');
  size_t seg = 1;  // where the current segment starts in `out`
  for (size_t i = 1; i < path.size(); ++i) {
    char c = path[i];
    if (c == '%') {
      const int byte = decode_escape(path, i);
      if (byte <= 0) return {{}, 400};  // invalid, or NUL
      c = static_cast<char>(byte);
      i += 2;
    }
    if (c != '/') {
      out += c;
      continue;
    }
    if (!close_segment(out, seg)) return {{}, 400};
    if (out.back() != '/') out += '/';  // a run of slashes is one
    seg = out.size();
  }
  if (!close_segment(out, seg)) return {{}, 400};
  return {out, 0};
}

}  // namespace ringhttpd::proto
