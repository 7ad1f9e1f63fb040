// A parsed HTTP/1.x request, two ways:
//  * RequestHead: what the parser hands the network process. Its method,
//    target and headers are views into the bytes it was parsed from (the
//    read buffer), so a head goes from the read buffer into the ring record
//    in one copy; a head that spans several reads, or must outlive its read,
//    keeps its bytes in its own storage (own()).
//  * HttpRequest: owns its bytes (std::string), body included: what a
//    service decodes from a ring record and gives its handler, and what the
//    whole-request parsing calls (feed, feed_one) return.
#pragma once

#include <array>
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

// A header whose bytes live elsewhere (a read buffer, a ring record being read).
struct HeaderView {
  std::string_view name;
  std::string_view value;
};

// Where a request is asked for: the routing views of a request-target and a
// Host header, shared by both request types (they never fail: the parser
// validated the target; odd input yields an odd-but-bounded view).
// Path part of the target (before '?'); for absolute-form, the path of the URI.
std::string_view target_path(std::string_view target);
// Query part (after '?'), without the '?'; "" if none.
std::string_view target_query(std::string_view target);
// The target as a proxy sends it to an origin server (RFC 9112 3.2.1: origin-
// form): for absolute-form its path and query ("http://a/x?y" -> "/x?y";
// "" or "?y" when the URI has no path: the caller puts "/" first); any other
// form unchanged.
std::string_view origin_form(std::string_view target);
// Host to route on: the authority of an absolute-form target, else the Host
// header; without any port, lower-cased.
std::string request_host(std::string_view target, std::string_view host_header);

// Whether `value` is a valid Host field value (RFC 9110 §7.2, RFC 9112 §3.2):
//   Host = uri-host [ ":" port ]        (RFC 3986 §3.2.2, §3.2.3)
//   uri-host = IP-literal / IPv4address / reg-name
//   IP-literal = "[" ( IPv6address / IPvFuture ) "]"
//   reg-name = *( unreserved / pct-encoded / sub-delims )
// Decisions: an empty value is valid (RFC 9112 §3.2: a target without an
// authority); an empty uri-host before a port (":80") is not (the target URI
// would have an empty host, RFC 9110 §4.2.1); the port is empty (valid, "a:")
// or 1-5 digits of value <= 65535 (a longer or larger one is not a TCP port,
// and rejecting it bounds the check); and the whole value is at most
// kMaxHostBytes (a DNS name is at most 253 bytes: 255 with room, plus ":"
// and 5 port digits), which also bounds what an absolute-form authority
// adds to a request's encoded head as its Host (proto/ring_codec.h). Used
// for the Host field and for the authority of an absolute-form target; a
// false is a 400.
inline constexpr size_t kMaxHostBytes = 261;
bool valid_host(std::string_view value);

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
  std::string_view path() const { return target_path(target); }
  std::string_view query() const { return target_query(target); }
  std::string host() const { return request_host(target, header("Host")); }
};

// A request head whose bytes live elsewhere (see the top of this file).
// Move-only: a move keeps the views valid (the storage moves with them), a
// copy could not.
class RequestHead {
 public:
  std::string_view method;  // a static name (llhttp's), never in the read buffer
  std::string_view target;
  uint8_t version_major = 1;
  uint8_t version_minor = 1;
  std::vector<HeaderView> headers;
  bool keep_alive = true;
  bool expect_continue = false;
  // A GET without a body that asks to switch protocols ("Connection: upgrade"
  // and an Upgrade header, as llhttp sees them; RFC 9110 7.8): a WebSocket
  // handshake. The parser stops right after such a request when asked
  // (feed_events with `upgrade_stops`), so what follows can be taken over.
  bool upgrade = false;

  RequestHead() = default;
  // The source is left empty (no views, nothing used of no storage).
  RequestHead(RequestHead&& other) noexcept;
  RequestHead& operator=(RequestHead&& other) noexcept;
  RequestHead(const RequestHead&) = delete;
  RequestHead& operator=(const RequestHead&) = delete;

  std::string_view header(std::string_view name) const;
  std::string_view path() const { return target_path(target); }
  std::string_view query() const { return target_query(target); }
  std::string host() const { return request_host(target, header("Host")); }

  // Copies every byte the views still borrow into this head's storage: the
  // head then outlives the buffer it was parsed from. Cheap when nothing is
  // borrowed any more.
  void own();
  // Appends `more` to `field` -- this head's own target, or a header's name
  // or value, which is empty or already lies at the storage's end: a field
  // cut across two reads.
  void append_owned(std::string_view& field, std::string_view more);
  // Forgets the request; keeps the capacity (headers, storage) for the next.
  void clear();
  size_t storage_capacity() const { return storage_.size(); }
  // An owning copy (body empty).
  HttpRequest to_request() const;

 private:
  bool in_storage(std::string_view v) const;
  void reserve_storage(size_t bytes);
  // Bytes the views point into when they do not borrow them. A vector, not
  // a string: a move keeps its buffer where it is (no small-string copy).
  std::vector<char> storage_;
  size_t used_ = 0;
};

// ASCII case-insensitive comparison (header names, tokens).
bool iequals(std::string_view a, std::string_view b);

// tchar (RFC 9110 §5.6.2): the bytes of a token (method, header name).
inline constexpr std::array<bool, 256> kTchar = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) {
    t[static_cast<size_t>(c)] =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  }
  return t;
}();
constexpr bool is_tchar(char c) { return kTchar[static_cast<unsigned char>(c)]; }

// A hex digit's value, or -1 (percent-escapes, chunk sizes).
constexpr int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace ringhttpd::proto
