// Static file decisions and openat2 (see static_files.h).
#include "worker/static_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <ctime>

#include "proto/http_request.h"
#include "proto/http_response.h"

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

namespace {

// 1*DIGIT, saturating at UINT64_MAX (a position past any file is still a
// position: first-pos past the end is 416, not a malformed range).
bool range_number(std::string_view s, uint64_t& v) {
  if (s.empty()) return false;
  v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

RangeAnswer parse_range(std::string_view header, uint64_t size, ByteRange& range) {
  // The unit is compared case-insensitively (RFC 9110 14.1).
  constexpr std::string_view kUnit = "bytes=";
  if (header.size() < kUnit.size() || !proto::iequals(header.substr(0, kUnit.size()), kUnit)) {
    return RangeAnswer::whole;
  }
  // A list (RFC 9110 5.6.1): empty elements are skipped; more than one
  // range is answered whole (several would need multipart, not built).
  std::string_view spec;
  int ranges = 0;
  std::string_view list = header.substr(kUnit.size());
  while (true) {
    const size_t comma = list.find(',');
    const std::string_view e = trim_ows(list.substr(0, comma));
    if (!e.empty()) {
      spec = e;
      ++ranges;
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  if (ranges != 1) return RangeAnswer::whole;
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeAnswer::whole;
  const std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  uint64_t first = 0, last = 0;
  if (a.empty()) {  // suffix: the last N bytes
    if (!range_number(b, last)) return RangeAnswer::whole;
    if (last == 0 || size == 0) return RangeAnswer::unsatisfiable;
    range = {size - std::min(last, size), size - 1};
    return RangeAnswer::partial;
  }
  if (!range_number(a, first)) return RangeAnswer::whole;
  if (b.empty()) {
    last = size == 0 ? 0 : size - 1;
  } else if (!range_number(b, last) || last < first) {
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

namespace {

// Every line of the field `name`, joined into one list (RFC 9110 5.3).
std::string joined(const std::vector<proto::HeaderView>& headers, std::string_view name) {
  std::string list;
  for (const proto::HeaderView& h : headers) {
    if (h.value.empty() || !proto::iequals(h.name, name)) continue;
    if (!list.empty()) list += ", ";
    list += h.value;
  }
  return list;
}

enum class TagComparison { strong, weak };

// Whether the entity-tag list `list` (RFC 9110 8.8.3: "*", or entity-tags
// separated by commas; an opaque-tag may itself hold a comma, so the list
// is read quote to quote) names `etag`. Strong comparison needs both tags
// strong (RFC 9110 8.8.3.2). A malformed rest of the list matches nothing.
bool tag_listed(std::string_view list, std::string_view etag, TagComparison how) {
  const bool etag_weak = etag.starts_with("W/");
  if (etag_weak) etag.remove_prefix(2);
  for (;;) {
    while (!list.empty() && (list.front() == ' ' || list.front() == '\t' || list.front() == ','))
      list.remove_prefix(1);
    if (list.empty()) return false;
    if (list.front() == '*') return true;
    const bool weak = list.starts_with("W/");
    if (weak) list.remove_prefix(2);
    if (list.empty() || list.front() != '"') return false;
    const size_t close = list.find('"', 1);
    if (close == std::string_view::npos) return false;
    const std::string_view opaque = list.substr(0, close + 1);
    list.remove_prefix(close + 1);
    const bool comparable = how == TagComparison::weak || (!weak && !etag_weak);
    if (comparable && opaque == etag) return true;
  }
}

// If-Unmodified-Since fails when the representation changed after the date
// (RFC 9110 13.1.4); a value that is no HTTP-date is ignored.
bool modified_since(std::string_view date, std::string_view last_modified) {
  const std::optional<int64_t> since = proto::parse_http_date(date);
  const std::optional<int64_t> modified = proto::parse_http_date(last_modified);
  return since && modified && *modified > *since;
}

// The same second, whichever HTTP-date form each is written in.
bool same_date(std::string_view a, std::string_view b) {
  const std::optional<int64_t> x = proto::parse_http_date(a);
  const std::optional<int64_t> y = proto::parse_http_date(b);
  return x && y && *x == *y;
}

}  // namespace

Conditions conditions_of(const proto::RequestHead& req) {
  Conditions c;
  c.if_match = joined(req.headers, "If-Match");
  c.if_unmodified_since = req.header("If-Unmodified-Since");
  c.if_none_match = joined(req.headers, "If-None-Match");
  c.if_modified_since = req.header("If-Modified-Since");
  c.if_range = req.header("If-Range");
  return c;
}

Precondition evaluate_preconditions(const Conditions& c, std::string_view etag,
                                    std::string_view last_modified) {
  // Steps 1 and 2: the representation must be the one the client has.
  if (!c.if_match.empty()) {
    if (!tag_listed(c.if_match, etag, TagComparison::strong)) return Precondition::failed;
  } else if (!c.if_unmodified_since.empty() &&
             modified_since(c.if_unmodified_since, last_modified)) {
    return Precondition::failed;
  }
  // Steps 3 and 4 (for GET and HEAD, the only methods a static route
  // answers): the client's copy is current. If-Modified-Since must name
  // the very second of Last-Modified (nginx's "if_modified_since exact"),
  // in any of the three HTTP-date forms (RFC 9110 5.6.7).
  if (!c.if_none_match.empty()) {
    return tag_listed(c.if_none_match, etag, TagComparison::weak) ? Precondition::not_modified
                                                                  : Precondition::proceed;
  }
  if (!c.if_modified_since.empty() && same_date(c.if_modified_since, last_modified)) {
    return Precondition::not_modified;
  }
  return Precondition::proceed;
}

bool if_range_holds(std::string_view if_range, std::string_view etag,
                    std::string_view last_modified) {
  if (if_range.empty()) return true;
  if (if_range.front() == '"' || if_range.starts_with("W/")) {
    return !etag.starts_with("W/") && if_range == etag;  // strong: a weak tag never matches
  }
  return if_range == last_modified;
}

// ---- directory listings (static.listing) ----

namespace {

void append_html(std::string& o, std::string_view text) {
  for (char ch : text) {
    switch (ch) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += ch;
    }
  }
}

// Everything but RFC 3986's unreserved characters as %HH: a name may hold
// any byte but '/' and NUL.
void append_percent_encoded(std::string& o, std::string_view name) {
  constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : name) {
    const auto b = static_cast<unsigned char>(ch);
    if (std::isalnum(b) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      o += ch;
    } else {
      o += '%';
      o += kHex[b >> 4];
      o += kHex[b & 0xF];
    }
  }
}

// A name as text on the page: control bytes (a newline would fake a line
// of the listing) shown as '?', the rest escaped for HTML.
void append_shown(std::string& o, std::string_view name) {
  std::string clean(name);
  for (char& ch : clean) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
  }
  append_html(o, clean);
}

void append_link(std::string& o, std::string_view href, std::string_view shown) {
  o += "<a href=\"";
  append_html(o, href);
  o += "\">";
  append_shown(o, shown);
  o += "</a>";
}

}  // namespace

std::string listing_base(std::string_view route_path, std::string_view relative) {
  std::string base(route_path);
  if (!base.ends_with('/')) base += '/';
  while (!relative.empty()) {
    const size_t slash = relative.find('/');
    const std::string_view segment = relative.substr(0, slash);
    if (!segment.empty()) {
      append_percent_encoded(base, segment);
      base += '/';
    }
    if (slash == std::string_view::npos) break;
    relative.remove_prefix(slash + 1);
  }
  return base;
}

std::string directory_listing(std::string_view base, std::vector<ListedEntry> entries, bool parent,
                              bool& truncated) {
  std::sort(entries.begin(), entries.end(), [](const ListedEntry& a, const ListedEntry& b) {
    return a.directory != b.directory ? a.directory : a.name < b.name;
  });
  std::string o = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ";
  append_html(o, base);
  o += "</title></head>\n<body><h1>Index of ";
  append_html(o, base);
  o += "</h1><hr><pre>\n";
  const size_t start = o.size();
  if (parent && base.size() > 1) {
    append_link(o, base.substr(0, base.rfind('/', base.size() - 2) + 1), "../");
    o += '\n';
  }
  for (const ListedEntry& e : entries) {
    if (o.size() - start >= kMaxListingBytes) {
      truncated = true;
      break;
    }
    std::string href(base);
    append_percent_encoded(href, e.name);
    if (e.directory) href += '/';
    append_link(o, href, e.directory ? e.name + "/" : e.name);
    char when[32] = "-";
    std::tm tm{};
    const std::time_t t = e.mtime;
    if (::gmtime_r(&t, &tm) != nullptr) std::strftime(when, sizeof when, "%d-%b-%Y %H:%M", &tm);
    o += "  ";
    o += when;
    o += "  ";
    o += e.directory ? "-" : std::to_string(e.size);
    o += '\n';
  }
  o += "</pre>";
  if (truncated) o += "<p>Not every entry is listed: the listing has a bound.</p>";
  o += "<hr></body></html>\n";
  return o;
}

std::vector<ListedEntry> read_listing(proto::UniqueFd dir_fd, int root_fd,
                                      const std::string& relative, bool& truncated) {
  truncated = false;
  std::vector<ListedEntry> out;
  const int fd = dir_fd.release();
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    ::close(fd);
    return out;
  }
  std::string prefix = relative;
  if (!prefix.empty() && !prefix.ends_with('/')) prefix += '/';
  size_t examined = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (out.size() == kMaxListedEntries || ++examined > kMaxExaminedEntries) {
      truncated = true;
      break;
    }
    const std::string_view name = e->d_name;
    if (name.starts_with('.')) continue;  // ".", ".." and hidden names
    struct stat st {};
    if (::fstatat(::dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISLNK(st.st_mode)) {  // listed only if it can be served: its target, beneath the root
      const proto::UniqueFd target = open_beneath(root_fd, prefix + std::string(name));
      if (!target || ::fstat(target.get(), &st) != 0) continue;
    }
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) continue;
    out.push_back({std::string(name), S_ISDIR(st.st_mode),
                   S_ISDIR(st.st_mode) ? 0 : static_cast<uint64_t>(st.st_size),
                   static_cast<int64_t>(st.st_mtim.tv_sec)});
  }
  ::closedir(dir);
  return out;
}

}  // namespace ringhttpd::worker
