// The records HTTP messages travel in over the shared-memory rings: record
// types and flags, and the byte encoding of request and response heads.
// Pure functions over bytes; the ring itself (shm/ring.h) only moves them.
//
// A message is a head record, then zero or more body records; the last
// record of a message carries kRecordEnd. The head record's payload is the
// encoded head followed by the first piece of the body.
//
// Request head (native byte order: both ends run on the same machine):
//   u32 network_pid | u32 generation | u32 network_index | u8 major | u8 minor
//   u8 keep_alive | u8 0 | u64 body_length | u16 method_len | u16 n_headers
//   u32 target_len | method | target | n_headers x (u16 name_len | u32
//   value_len | name | value)
// Response head:
//   u16 status | u16 n_headers | u32 0 | u64 body_length | headers as above
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "proto/http_request.h"
#include "proto/http_response.h"

namespace ringhttpd::proto {

enum RecordType : uint16_t {
  kRequestHead = 1,
  kRequestBody = 2,
  kResponseHead = 3,
  kResponseBody = 4,
};
inline constexpr uint16_t kRecordEnd = 1;  // flag: last record of the message

// Where a request came from, for the handler (and the echo handler's JSON).
struct RequestOrigin {
  uint32_t network_pid = 0;
  uint32_t generation = 0;
  uint32_t network_index = 0;
};

// Appends the encoded head of `req` (not its body); body_length is the size
// of the whole body that follows.
void encode_request_head(const HttpRequest& req, const RequestOrigin& origin, uint64_t body_length,
                         std::string& out);
// Decodes a request head from the front of `payload`. On success fills `req`
// (body left empty), `origin` and `body_length`, and returns the number of
// bytes the head took (the rest of the payload is body). 0 means malformed.
size_t decode_request_head(std::string_view payload, HttpRequest& req, RequestOrigin& origin,
                           uint64_t& body_length);

void encode_response_head(int status, const std::vector<Header>& headers, uint64_t body_length,
                          std::string& out);
size_t decode_response_head(std::string_view payload, int& status, std::vector<Header>& headers,
                            uint64_t& body_length);

}  // namespace ringhttpd::proto
