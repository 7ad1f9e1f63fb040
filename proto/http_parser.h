// Streaming HTTP/1.1 request parser over llhttp. Input may arrive split at any
// byte boundary; complete requests come out in order (pipelining). On a
// protocol error the parser stops for good and names the status to answer
// (400, 413, 414, 417, 431, 501, 505) -- the connection is then closed, so no
// byte after the error is ever interpreted. 501 is an unknown method (a token
// that is not a known method) or transfer coding; 417 an Expect other than
// 100-continue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/http_request.h"

namespace ringhttpd::proto {

// What parsing produced, in order: for each request a head (its
// RequestHead is the next one in `heads`), body pieces as they were decoded,
// then its end. A request may begin in one call and end in a later one.
//
// A head's views point into the data given to feed_events() (valid as long
// as that data), except for the bytes of a head that began in an earlier
// call: those the head holds in its own storage. Its method is a static
// string. RequestHead::own() makes a head independent of the data.
struct RequestEvent {
  enum class Kind : uint8_t { head, body, end };
  Kind kind;
  // head: the Content-Length, or kUnknownBodyLength (chunked);
  // body: piece.size(); end: the whole body's length.
  uint64_t length;
  // body: the decoded bytes. A view into the data given to feed_events()
  // (chunk framing is skipped, never copied): valid as long as that data.
  std::string_view piece;
};

struct RequestEvents {
  std::vector<RequestHead> heads;
  std::vector<RequestEvent> events;
  size_t completed = 0;  // end events so far
  void clear();
};

// Every method the parser takes (llhttp's HTTP methods but CONNECT; any
// other token is 501), the common ones first: what a route without a method
// list can be asked.
std::span<const std::string_view> accepted_methods();

struct ParserLimits {
  uint32_t max_header_bytes = 16384;  // request line + headers; over -> 431
  uint32_t max_target_bytes = 8192;   // request-target; over -> 414
  uint64_t max_body_bytes = 1048576;  // decoded body; over -> 413
};

class RequestParser {
 public:
  explicit RequestParser(ParserLimits limits = {});
  ~RequestParser();
  RequestParser(RequestParser&&) noexcept;
  RequestParser& operator=(RequestParser&&) noexcept;

  // Feeds bytes; appends what they produced to `out` (see RequestEvent).
  // With `consumed`: stops right after the first request that ends and says
  // how many bytes of `data` were used. Returns false once the parser has
  // failed (then error_status() != 0); later calls consume nothing.
  bool feed_events(std::string_view data, RequestEvents& out, size_t* consumed = nullptr);
  // The same, always saying in `consumed` how many bytes were used: it
  // stops after the first request that ends when `one_request`, and always
  // right after a request whose head has `upgrade` (the bytes after it may
  // belong to another protocol: the caller decides whether they are HTTP,
  // and feeds them again if so).
  bool feed_events(std::string_view data, RequestEvents& out, size_t& consumed, bool one_request);

  // The same as whole requests, bodies joined (tests, and callers that want
  // whole requests). Every request completed by `data` is appended to `out`.
  // Returns false once the parser has failed (then error_status() != 0);
  // all later calls return false and consume nothing.
  bool feed(std::string_view data, std::vector<HttpRequest>& out);

  // Like feed(), but stops right after the first request that completes:
  // `consumed` says how many bytes of `data` were used (the rest belongs to
  // the next request). A connection handed to another process is cut here.
  bool feed_one(std::string_view data, std::vector<HttpRequest>& out, size_t& consumed);

  int error_status() const;               // 0 while no error
  std::string_view error_reason() const;  // short human text for logs/body
  // True when bytes of an unfinished request have been consumed (so a
  // timeout is a 408, not an idle keep-alive close).
  bool mid_request() const;
  // True when the head of the current request is complete and it carries
  // "Expect: 100-continue" and a body is still to come (so the caller may
  // send "100 Continue"). Cleared when the request completes.
  bool wants_continue() const;
  // The current (or failed) request's method is HEAD, as far as it was read:
  // an error answered to it carries no body.
  bool head_request() const;

  // A request the caller took from this parser and is done with: its
  // buffers (header list, storage) serve the next request, so a
  // connection's steady stream of requests allocates less. Optional.
  void recycle(RequestHead&& done);

  // Frees the parsing state when nothing of a next request has been
  // consumed; the next feed() starts a fresh one. An idle keep-alive
  // connection then holds no parser memory.
  void release_if_idle();

 private:
  bool collect(std::string_view data, std::vector<HttpRequest>& out, size_t* consumed);

  struct Impl;
  ParserLimits limits_;
  RequestEvents scratch_;       // collect(): this call's events
  HttpRequest partial_;         // collect(): the request whose end is still to come
  std::unique_ptr<Impl> impl_;  // created by the first feed()
};

}  // namespace ringhttpd::proto
