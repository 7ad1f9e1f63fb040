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
//   u8 keep_alive (0 or 1) | u8 0 | u64 body_length | u32 method_len
//   u32 n_headers | u32 target_len | u32 client_len | method | target | client
//   n_headers x (u32 name_len | u32 value_len | name | value)
// (client: the client's address as text, for X-Forwarded-For; at most 64)
// Response head:
//   u16 status (100..599) | u16 0 | u32 n_headers | u64 body_length
//   headers as above
//
// body_length is kUnknownBodyLength when the sender does not know it yet
// (a chunked request, a response streamed without a length): then the
// message ends with the record carrying kRecordEnd.
//
// Counts and lengths are 32-bit: a head is bounded by max_header_bytes (at
// most 1 MiB), so 16 bits were too few (65,536 header fields or a 64 KiB
// name) and 32 always suffice. The bytes after the head are body: at most
// body_length of them. Anything else -- a length or count the payload cannot
// hold, a non-zero reserved byte, keep_alive not 0 or 1, more body than
// body_length -- makes the record malformed. So a decodable head has exactly
// one encoding.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/http_request.h"
#include "proto/http_response.h"

namespace ringhttpd::proto {

enum RecordType : uint16_t {
  kRequestHead = 1,
  kRequestBody = 2,
  kResponseHead = 3,
  kResponseBody = 4,
  // Flow control, either way: the sender of a message may have at most
  // kBodyWindow body bytes the receiver has not consumed. The receiver
  // returns credit as it consumes: payload u64 = bytes consumed of message
  // `id` since its last credit.
  kCredit = 5,
  // Network -> service: request `id` is abandoned (its client left, or it
  // was answered 504); the service stops sending its response and drops
  // what it still receives of it. No payload.
  kCancel = 6,
  // Network -> service: the response to `id` may use the whole kBodyWindow
  // from now on; until then it has kFirstWindow. No payload. Sent when the
  // response streams and its client is the one being written to (it is the
  // first its connection owes), so the responses queued behind it on a
  // pipelining connection hold a small window each, not a whole one.
  kWindow = 7,
};
inline constexpr uint16_t kRecordEnd = 1;    // flag: last record of the message
inline constexpr uint16_t kRecordAbort = 2;  // flag, with kRecordEnd on a response body:
                                             // the response failed part-way (the
                                             // client's connection must be closed)

// Body bytes of one message that may be on their way (sent, not yet
// credited back): what a slow reader can make each side hold per message.
inline constexpr uint64_t kBodyWindow = 256 * 1024;
// The receiver returns credit once it has consumed this much (or the
// message ended): fewer records than one per body piece.
inline constexpr uint64_t kCreditEvery = kBodyWindow / 4;
// A response's window until the network process opens the whole of it
// (kWindow). A response this size or smaller never waits for it.
inline constexpr uint64_t kFirstWindow = kBodyWindow / 4;

// A credit record's payload (8 bytes, native order), and its decoding:
// false for a payload of another size or zero bytes.
std::string encode_credit(uint64_t bytes);
bool decode_credit(std::string_view payload, uint64_t& bytes);

// Where a request came from, for the handler (and the echo handler's JSON).
struct RequestOrigin {
  uint32_t network_pid = 0;
  uint32_t generation = 0;
  uint32_t network_index = 0;
  std::string client;  // the client's IP address as text ("" if unknown)
};
inline constexpr size_t kMaxClientText = 64;

// Encoded size of a request head: kRequestHeadFixed bytes (network_pid ..
// client_len), then method, target and client, then per header
// kHeaderEntryOverhead bytes (name_len, value_len) plus its name and value.
inline constexpr uint64_t kRequestHeadFixed = 40;
inline constexpr uint64_t kHeaderEntryOverhead = 2 * sizeof(uint32_t);

// The largest encoded request head (RequestHeadParts::size()) of a head the
// parser accepts when max_header_bytes is `max_header_bytes`: the bound the
// ring size is checked against. The parser counts in max_header_bytes every
// byte from the first of the request (leading empty lines included) to the
// final CRLF, and each field in the encoding is bytes of that text (the
// method, the target, a header's name and its value without the OWS around
// it). So, for a head of H <= max_header_bytes bytes with N header lines:
//   text     H >= method + 1 + target + 1 + 8 ("HTTP/1.1") + 2
//                 + sum(name + 1 (":") + value + 2) + 2 (final CRLF)
//   encoded  E  = 40 + method + target + client + sum(8 + name + value)
//   so       E <= H - 14 - 3N + 40 + client + 8N = H + 26 + client + 5N
// Each header costs 5 bytes more encoded than as text, so the worst case is
// the most header lines: the shortest line is 4 bytes ("a:\r\n", a name of
// one byte, an empty value: 9 bytes encoded, 2.25 times its text), and with
// a method, target and names of at least 1 byte, N <= (H - 16) / 4. The
// target limit (max_target_bytes) does not enter: target bytes cost the same
// encoded as in the text. One exception: with an absolute-form target the
// Host value is the target's authority (RFC 9112 3.2.2), its bytes encoded
// twice, and added as a header when the client sent none; a Host is at most
// kMaxHostBytes (longer is 400), so that adds at most kMaxHostBytes + 4
// ("Host") + 8. With client <= kMaxClientText (64):
//   E <= max_header_bytes + 90 + 5 x floor((max_header_bytes - 16) / 4) + 273
// (16384 -> 37207 bytes; 1024 -> 2647.)
constexpr uint64_t max_request_head_bytes(uint64_t max_header_bytes) {
  constexpr uint64_t kFraming = 14;       // text not in any field: 2 SP, "HTTP/1.1", 2 CRLF
  constexpr uint64_t kShortestHead = 16;  // "M / HTTP/1.1\r\n\r\n"
  constexpr uint64_t kShortestLine = 4;   // "a:\r\n"
  constexpr uint64_t kLineFraming = 3;    // ":" and CRLF, in no field
  const uint64_t lines =
      max_header_bytes > kShortestHead ? (max_header_bytes - kShortestHead) / kShortestLine : 0;
  constexpr uint64_t kAuthorityAsHost = kMaxHostBytes + 4 + kHeaderEntryOverhead;
  return max_header_bytes + (kRequestHeadFixed - kFraming) + kMaxClientText +
         lines * (kHeaderEntryOverhead - kLineFraming) + kAuthorityAsHost;
}

// The encoded head of a request as a list of byte ranges, for a gathering
// write into a ring record (shm::Ring::try_push takes parts): the method,
// target, client and header bytes are views into the request (for a
// RequestHead, into the read buffer it was parsed from), so they are copied
// once, into the ring; only the fixed fields and the lengths are written
// here. Built again for each request; its buffers are reused.
class RequestHeadParts {
 public:
  RequestHeadParts() = default;
  RequestHeadParts(const RequestHeadParts&) = delete;  // parts point into it
  RequestHeadParts& operator=(const RequestHeadParts&) = delete;

  // The parts of the head of `req`, body_length being the size of the whole
  // body that follows. The views stay valid while `req`, `origin` and this
  // object are unchanged. False, as for encode_request_head, when the head
  // cannot be represented: the parts are then a refused head.
  bool build(const RequestHead& req, const RequestOrigin& origin, uint64_t body_length);
  bool build(const HttpRequest& req, const RequestOrigin& origin, uint64_t body_length);
  const std::vector<std::string_view>& parts() const { return parts_; }
  size_t size() const { return size_; }  // bytes of all parts
  void append_to(std::string& out) const;

 private:
  template <typename Request>
  bool build_as(const Request& req, const RequestOrigin& origin, uint64_t body_length);

  static constexpr size_t kFixedBytes = kRequestHeadFixed;  // network_pid .. client_len
  char fixed_[kFixedBytes] = {};
  std::vector<std::array<char, 8>> lengths_;  // name_len | value_len per header
  std::vector<std::string_view> parts_;
  size_t size_ = 0;
};

// Appends the encoded head of `req` (not its body); body_length is the size
// of the whole body that follows. Returns false if the head cannot be
// represented (a count or length over 2^32 - 1): then what was appended is a
// head every decoder refuses (its reserved byte is set), never a truncated
// one, so a caller that sends it anyway gets a malformed-record answer rather
// than a peer reading the wrong bytes (its body) as headers. Callers should
// still check: the refused head is small, so a ring-size check passes it.
// (For requests it cannot happen today: a head is at most max_header_bytes.)
// The parts of RequestHeadParts joined: the network process sends the parts
// themselves; this form is for tests and the codec's fuzz corpus.
bool encode_request_head(const HttpRequest& req, const RequestOrigin& origin, uint64_t body_length,
                         std::string& out);
// Decodes a request head from the front of `payload`. On success fills `req`
// (body left empty), `origin` and `body_length`, and returns the number of
// bytes the head took (the rest of the payload is body). 0 means malformed;
// the outputs are then unspecified. What it allocates is proportional to the
// payload's size, never to a count or length the record merely claims.
size_t decode_request_head(std::string_view payload, HttpRequest& req, RequestOrigin& origin,
                           uint64_t& body_length);

// As encode_request_head; false also when `status` does not fit 16 bits (a
// handler's mistake; the head appended then has status 0 and its reserved
// field set: refused, where a narrowed status could have read as a valid one).
bool encode_response_head(int status, const std::vector<Header>& headers, uint64_t body_length,
                          std::string& out);
// The bytes encode_response_head appends for `headers`, or SIZE_MAX when
// they cannot be encoded at all.
size_t response_head_bytes(const std::vector<Header>& headers);
// As decode_request_head; a status outside 100..599 is malformed.
size_t decode_response_head(std::string_view payload, int& status, std::vector<Header>& headers,
                            uint64_t& body_length);
// The same, with the headers as views into `payload` (nothing copied or
// allocated per header; valid as long as the payload is).
size_t decode_response_head(std::string_view payload, int& status, std::vector<HeaderView>& headers,
                            uint64_t& body_length);

// Copies `head` (the decoded bytes of a head, views in `headers` pointing
// into it) into `copy` and points the views at the copy instead, the
// lengths unchanged. For a head read in shared memory: what is checked and
// then used must be read once, or the writer could change it in between (a
// CR LF after the check is a split response, a name turned into
// "Content-Length" a smuggled one). One memcpy of the head, no allocation
// once `copy` has grown.
void own_head_views(std::string_view head, std::vector<HeaderView>& headers, std::string& copy);

}  // namespace ringhttpd::proto
