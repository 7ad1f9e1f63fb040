// An HTTP response as handlers produce it and as it travels back over a ring,
// and the writer that turns a status, headers and a body length into the
// HTTP/1.1 response head the network process sends. Framing headers
// (Content-Length, Connection, Transfer-Encoding, Date, Server) are always the
// writer's: a handler's own copies are dropped, so a handler can never make
// the connection's framing wrong.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/http_request.h"

namespace ringhttpd::proto {

struct HttpResponse {
  int status = 200;
  std::vector<Header> headers;  // e.g. Content-Type; framing headers ignored
  std::string body;
};

// "OK", "Not Found", ...: the phrase of the IANA HTTP Status Code Registry
// for every registered code (418: "I'm a teapot"); "Unknown" for a code
// without a registered phrase (306, 427, 509, 599, ...).
std::string_view reason_phrase(int status);

// True for headers the writer owns (dropped when a handler sets them).
// Whether a header a service gave may be written as it is: the name is a
// token (RFC 9110 5.1) and the value holds no CR, LF or NUL (5.5), so it can
// never end the line and start another (response splitting).
bool valid_header_field(std::string_view name, std::string_view value);
inline bool valid_header_field(const Header& header) {
  return valid_header_field(header.name, header.value);
}

bool is_framing_header(std::string_view name);

// Whether a response to `method` with `status` carries no body (HEAD, 1xx,
// 204, 304): then the head still says the length, but no body bytes follow.
bool response_has_body(std::string_view method, int status);

// Appends the status line and headers, ending with the blank line.
// `date` is an IMF-fixdate ("Tue, 24 Nov 2026 10:00:00 GMT"). A length of
// kUnknownBodyLength is sent as "Transfer-Encoding: chunked", or (`http10`:
// the client knows no chunked coding) as no length at all: the body then
// ends with the connection, which the caller must close.
void append_response_head(std::string& out, int status, const std::vector<Header>& headers,
                          uint64_t content_length, bool keep_alive, std::string_view date,
                          bool http10 = false);
void append_response_head(std::string& out, int status, const std::vector<HeaderView>& headers,
                          uint64_t content_length, bool keep_alive, std::string_view date,
                          bool http10 = false);

// A complete small response for an error or a fixed answer: head and body.
// `body` empty means a one-line body with the status and reason.
std::string make_simple_response(int status, bool keep_alive, std::string_view date,
                                 std::string_view content_type = "text/plain",
                                 std::string_view body = {}, bool head_only = false,
                                 std::string_view extra_headers = {});

// IMF-fixdate for a unix time in seconds.
std::string http_date(int64_t unix_seconds);

// The unix time of an HTTP-date in any of its three formats (RFC 9110
// 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms, which a
// recipient must accept), or nullopt when the value is none of them.
std::optional<int64_t> parse_http_date(std::string_view value);

}  // namespace ringhttpd::proto
