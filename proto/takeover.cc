// See takeover.h: the layout of a taken-over connection's payload.
#include "proto/takeover.h"

#include <cstring>

#include "proto/control.h"

namespace ringhttpd::proto {

std::string encode_takeover(std::string_view head, std::string_view early) {
  const size_t total = kTakeoverPrefix + head.size() + early.size();
  if (total > kMaxControlPayload) return {};
  std::string out;
  out.reserve(total);
  const auto len = static_cast<uint32_t>(head.size());
  out.append(reinterpret_cast<const char*>(&len), sizeof len);
  out.append(head);
  out.append(early);
  return out;
}

bool decode_takeover(std::string_view payload, HttpRequest& req, RequestOrigin& origin,
                     std::string_view& early) {
  if (payload.size() < kTakeoverPrefix || payload.size() > kMaxControlPayload) return false;
  uint32_t len = 0;
  std::memcpy(&len, payload.data(), sizeof len);
  if (len == 0 || len > payload.size() - kTakeoverPrefix) return false;
  const std::string_view head = payload.substr(kTakeoverPrefix, len);
  uint64_t body_length = 0;
  // The whole head must decode, and announce no body (an upgrade has none).
  if (decode_request_head(head, req, origin, body_length) != head.size() || body_length != 0) {
    return false;
  }
  early = payload.substr(kTakeoverPrefix + len);
  return true;
}

}  // namespace ringhttpd::proto
