// The payload of a connection taken over by a service process (control
// messages `takeover`, network -> supervisor, and `take`, supervisor ->
// service; proto/control.h): the request that asked for it, encoded as a
// ring request head (proto/ring_codec.h, body length 0), and the bytes the
// client sent after that head (already read by the network process, so they
// travel with the socket):
//
//   +--------------+----------------------------+-----------------------+
//   | head_len u32 | request head (head_len)    | early bytes (the rest) |
//   +--------------+----------------------------+-----------------------+
//
// Pure functions over bytes: the supervisor checks a payload before it
// passes it on, the service process decodes it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "proto/http_request.h"
#include "proto/ring_codec.h"

namespace ringhttpd::proto {

inline constexpr size_t kTakeoverPrefix = sizeof(uint32_t);

// The payload for `head` (an encoded request head) and `early`; empty when
// it would not fit in one control message (kMaxControlPayload).
std::string encode_takeover(std::string_view head, std::string_view early);

// Splits a payload; false when it is not one (too short, a head length past
// its end, a head that does not decode as a request head without a body).
// On success `req`, `origin` and `early` (a view into `payload`) are set.
bool decode_takeover(std::string_view payload, HttpRequest& req, RequestOrigin& origin,
                     std::string_view& early);

// What a client gets when no process of the service can take its
// connection (control message `take_refused`; the supervisor writes it
// itself when the network process cannot be told), before the connection
// closes.
inline constexpr std::string_view kTakeoverRefusedBody = "503 no process free\n";
inline constexpr std::string_view kTakeoverRefused =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n"
    "Retry-After: 1\r\nConnection: close\r\n\r\n503 no process free\n";
static_assert(kTakeoverRefused.ends_with(kTakeoverRefusedBody) &&
              kTakeoverRefusedBody.size() == 20);

}  // namespace ringhttpd::proto
