// Static files answered by the network process (route "static"): the pure
// decisions (which file a request names, its media type, its validators,
// which bytes a Range asks for) and the one syscall that opens a file
// beneath the root. Nothing here reads a file's bytes: they go from the
// page cache to the socket with sendfile (NetworkProcess::send_file_part).
//
// No path can leave the root: the request path is percent-decoded once;
// a NUL, a backslash, an encoded slash, or a "." or ".." segment is refused
// (404: whether such a name exists is nobody's business); and the file is
// opened with openat2(RESOLVE_BENEATH), so no symlink or ".." can resolve
// outside the root either (404 too).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/http_request.h"
#include "proto/unique_fd.h"

namespace ringhttpd::worker {

// The file path relative to the route's root that `request_path` names
// under `prefix` (the route's path), or nullopt when it is refused. ""
// names the root itself. Empty segments are dropped; a trailing slash is
// kept ("docs/"): the path then names a directory, never a file.
std::optional<std::string> static_relative_path(std::string_view prefix,
                                                std::string_view request_path);

// The media type for a file name, by its extension ("application/octet-stream"
// when unknown).
std::string_view media_type(std::string_view name);

// Extension (lowercase, without the dot) -> media type: a route's own
// table (config "static.types"), consulted before the built-in one.
using MediaTypes = std::map<std::string, std::string, std::less<>>;

// The media type for a file name: `overrides` by its last extension
// (compared case-insensitively), else the built-in table.
std::string_view media_type(std::string_view name, const MediaTypes& overrides);

// A strong validator from the file's identity, size and modification time.
std::string entity_tag(const struct stat& st);

// A single byte range (RFC 9110 14.1.2).
struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive
};
enum class RangeAnswer { whole, partial, unsatisfiable };
// What a Range header asks of a representation of `size` bytes. Anything
// but one well-formed "bytes=" range is answered whole (a server may ignore
// Range; several ranges would need multipart, not built).
RangeAnswer parse_range(std::string_view header, uint64_t size, ByteRange& range);

// The client's conditional fields (RFC 9110 13.1) for one request. A list
// field may come on several lines, which form one list (RFC 9110 5.3), so
// If-Match and If-None-Match hold all their lines joined with ", ". Each is
// "" when absent (an empty field is taken as absent too).
struct Conditions {
  std::string if_match;
  std::string_view if_unmodified_since;
  std::string if_none_match;
  std::string_view if_modified_since;
  std::string_view if_range;
};
Conditions conditions_of(const proto::RequestHead& req);

// What the preconditions of a GET or HEAD ask (RFC 9110 13.2.2, in its
// order: If-Match, else If-Unmodified-Since; then If-None-Match, else
// If-Modified-Since): answer, 304, or 412. `etag` and `last_modified` are
// the representation's validators as this server sends them.
enum class Precondition { proceed, not_modified, failed };
Precondition evaluate_preconditions(const Conditions& c, std::string_view etag,
                                    std::string_view last_modified);

// If-Range (RFC 9110 13.1.5): the Range applies when the field is absent,
// or is the current entity tag (a strong comparison: a weak tag never
// matches), or exactly the Last-Modified date sent.
bool if_range_holds(std::string_view if_range, std::string_view etag,
                    std::string_view last_modified);

// One entry of a directory listing (static.listing): a regular file or a
// directory (listed with a trailing '/').
struct ListedEntry {
  std::string name;
  bool directory = false;
  uint64_t size = 0;  // bytes, for a file
  int64_t mtime = 0;  // seconds since the epoch
};
// The path a listing's links start with: the route's prefix, then each
// segment of `relative` percent-encoded, ending in '/'. Made from what the
// route and the file names are, never from the request's own spelling, so
// "//evil.example/" or a path padded with slashes cannot shape the links.
std::string listing_base(std::string_view route_path, std::string_view relative);
// The HTML page listing `entries` of the directory whose links start with
// `base` (listing_base). Directories first, then files, each in byte order
// of their names; names escaped for HTML (control bytes shown as '?') and
// percent-encoded in their links; `parent` adds a "../" link; at most
// kMaxListingBytes of entries. `truncated` in: entries were left out
// already; out: so, or the page reached its bound (the page says so).
std::string directory_listing(std::string_view base, std::vector<ListedEntry> entries, bool parent,
                              bool& truncated);
// At most this many entries are listed, and this many directory entries
// examined (listed or not: hidden names, FIFOs, links that lead nowhere),
// and a page holds at most this many bytes of entries.
inline constexpr size_t kMaxListedEntries = 10000;
inline constexpr size_t kMaxExaminedEntries = 2 * kMaxListedEntries;
inline constexpr size_t kMaxListingBytes = 2 << 20;
// Reads the directory `dir_fd` (taken: it is closed) beneath the root
// `root_fd`, `relative` being its path there: the entries a listing shows.
// Hidden names (starting with '.') are left out, as nginx's autoindex does;
// so is anything that could not be served: not a regular file or a
// directory, or a symbolic link that leaves the root or leads nowhere
// (open_beneath). `truncated` is set when the bounds above cut it short.
std::vector<ListedEntry> read_listing(proto::UniqueFd dir_fd, int root_fd,
                                      const std::string& relative, bool& truncated);

// Opens `relative` beneath the directory `root_fd` (RESOLVE_BENEATH, no
// magic links), read-only and non-blocking: a FIFO or a device node under
// the root is opened without waiting (a FIFO's open would wait for a
// writer), for the caller to fstat and refuse. An invalid fd when it does
// not exist, cannot be opened, or would resolve outside the root.
proto::UniqueFd open_beneath(int root_fd, const std::string& relative, bool directory = false);

}  // namespace ringhttpd::worker
