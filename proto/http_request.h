// A parsed HTTP/1.x request as the network process routes it and as it is
// encoded into a ring record. Owns its bytes (std::string): a request outlives
// the read buffer it was parsed from.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringhttpd::proto {

// A message body's length when it is not known in advance (a chunked
// request; a response a handler streams without announcing its length).
inline constexpr uint64_t kUnknownBodyLength = ~uint64_t{0};

struct Header {
  std::string name;   // as received (case preserved)
  std::string value;  // leading/trailing whitespace removed
};

// A header whose bytes live elsewhere (in a ring record being read).
struct HeaderView {
  std::string_view name;
  std::string_view value;
};

struct HttpRequest {
  std::string method;  // e.g. "GET"
  std::string target;  // request-target as received, e.g. "/a/b?x=1"
  uint8_t version_major = 1;
  uint8_t version_minor = 1;
  std::vector<Header> headers;
  std::string body;              // decoded (chunked framing removed)
  bool keep_alive = true;        // after this request, per version and Connection
  bool expect_continue = false;  // "Expect: 100-continue" was sent

  // First header with this name (ASCII case-insensitive), or "" if none.
  std::string_view header(std::string_view name) const;
  // Path part of the target (before '?'); for absolute-form, the path of the URI.
  std::string_view path() const;
  // Query part (after '?'), without the '?'; "" if none.
  std::string_view query() const;
  // Host to route on: the authority of an absolute-form target, else the Host
  // header; without any port, lower-cased.
  std::string host() const;
};

// ASCII case-insensitive comparison (header names, tokens).
bool iequals(std::string_view a, std::string_view b);

}  // namespace ringhttpd::proto
