// Request and response heads through the ring record encoding, and refusal
// of records a peer could use to make the reader misread: truncated, lying
// counts and lengths, set reserved fields, more body than announced.
#include "proto/ring_codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "proto/http_parser.h"

namespace ringhttpd::proto {
namespace {

HttpRequest sample_request() {
  HttpRequest req;
  req.method = "POST";
  req.target = "/echo/x?a=1&b=%20";
  req.version_major = 1;
  req.version_minor = 0;
  req.keep_alive = false;
  req.headers = {{"Host", "example.com"}, {"X-Empty", ""}, {"Content-Type", "text/plain"}};
  return req;
}

TEST(RingCodec, RequestHeadRoundTrips) {
  const HttpRequest req = sample_request();
  std::string bytes;
  encode_request_head(req, RequestOrigin{1234, 7, 3, "127.0.0.1"}, 42, bytes);
  bytes += "first body piece";
  HttpRequest out;
  RequestOrigin origin;
  uint64_t body_length = 0;
  const size_t used = decode_request_head(bytes, out, origin, body_length);
  ASSERT_GT(used, 0u);
  EXPECT_EQ(bytes.substr(used), "first body piece");
  EXPECT_EQ(out.method, "POST");
  EXPECT_EQ(out.target, req.target);
  EXPECT_EQ(out.version_minor, 0);
  EXPECT_FALSE(out.keep_alive);
  ASSERT_EQ(out.headers.size(), 3u);
  EXPECT_EQ(out.headers[1].name, "X-Empty");
  EXPECT_EQ(out.headers[1].value, "");
  EXPECT_EQ(out.headers[2].value, "text/plain");
  EXPECT_EQ(origin.network_pid, 1234u);
  EXPECT_EQ(origin.generation, 7u);
  EXPECT_EQ(origin.network_index, 3u);
  EXPECT_EQ(body_length, 42u);
}

// A request head in parts: one gathering write puts the same bytes in the
// record as encode_request_head, and the method, target and header bytes are
// the request's own (views into it: nothing copied before the ring).
TEST(RingCodec, RequestHeadPartsAreTheEncodingAsViewsIntoTheRequest) {
  const HttpRequest req = sample_request();
  const RequestOrigin origin{1234, 7, 3, "127.0.0.1"};
  std::string encoded;
  ASSERT_TRUE(encode_request_head(req, origin, 42, encoded));
  RequestHeadParts parts;
  ASSERT_TRUE(parts.build(req, origin, 42));
  std::string joined;
  parts.append_to(joined);
  EXPECT_EQ(joined, encoded);
  EXPECT_EQ(parts.size(), encoded.size());
  auto borrowed = [&](const std::string& field) {
    for (std::string_view p : parts.parts()) {
      if (p.data() == field.data() && p.size() == field.size()) return true;
    }
    return false;
  };
  EXPECT_TRUE(borrowed(req.target));
  for (const Header& h : req.headers) {
    EXPECT_TRUE(borrowed(h.name)) << h.name;
    EXPECT_TRUE(h.value.empty() || borrowed(h.value)) << h.name;
  }
  // Built again (its buffers reused) for another request: only that one.
  HttpRequest other;
  other.method = "GET";
  other.target = "/";
  ASSERT_TRUE(parts.build(other, origin, 0));
  joined.clear();
  parts.append_to(joined);
  encoded.clear();
  ASSERT_TRUE(encode_request_head(other, origin, 0, encoded));
  EXPECT_EQ(joined, encoded);
}

TEST(RingCodec, TruncatedRequestHeadIsRefusedAtEveryLength) {
  std::string bytes;
  encode_request_head(sample_request(), RequestOrigin{}, 0, bytes);
  for (size_t n = 0; n < bytes.size(); ++n) {
    HttpRequest out;
    RequestOrigin origin;
    uint64_t len = 0;
    EXPECT_EQ(decode_request_head(std::string_view(bytes).substr(0, n), out, origin, len), 0u) << n;
  }
}

TEST(RingCodec, ResponseHeadRoundTrips) {
  std::string bytes;
  encode_response_head(404, {{"Content-Type", "application/json"}}, 1 << 20, bytes);
  int status = 0;
  std::vector<Header> headers;
  uint64_t length = 0;
  ASSERT_EQ(decode_response_head(bytes, status, headers, length), bytes.size());
  EXPECT_EQ(status, 404);
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers[0].name, "Content-Type");
  EXPECT_EQ(length, 1u << 20);
}

// The network process reads response heads as views into the ring record:
// the same fields, pointing into the payload, nothing copied.
TEST(RingCodec, ResponseHeadDecodesAsViewsIntoThePayload) {
  std::string bytes;
  encode_response_head(200, {{"Content-Type", "application/json"}, {"X-A", ""}}, 7, bytes);
  bytes += "body!!!";
  int status = 0;
  std::vector<HeaderView> views;
  uint64_t length = 0;
  const size_t used = decode_response_head(bytes, status, views, length);
  ASSERT_EQ(used, bytes.size() - 7);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(length, 7u);
  ASSERT_EQ(views.size(), 2u);
  EXPECT_EQ(views[0].name, "Content-Type");
  EXPECT_EQ(views[0].value, "application/json");
  EXPECT_EQ(views[1].name, "X-A");
  EXPECT_EQ(views[1].value, "");
  EXPECT_GE(views[0].value.data(), bytes.data());
  EXPECT_LE(views[0].value.data() + views[0].value.size(), bytes.data() + used);
  // A truncated head is refused the same way as with copies.
  for (size_t n = 0; n < used; ++n) {
    EXPECT_EQ(decode_response_head(std::string_view(bytes).substr(0, n), status, views, length), 0u)
        << n;
  }
}

TEST(RingCodec, ResponseWithImpossibleStatusIsRefused) {
  std::string bytes;
  encode_response_head(42, {}, 0, bytes);
  int status = 0;
  std::vector<Header> headers;
  uint64_t length = 0;
  EXPECT_EQ(decode_response_head(bytes, status, headers, length), 0u);
}

// Field offsets in an encoded head (ring_codec.h draws the layout), for the
// tests that forge a field.
constexpr size_t kRequestReserved = 15;
constexpr size_t kRequestKeepAlive = 14;
constexpr size_t kRequestHeaderCount = 28;
constexpr size_t kRequestMethod = 40;  // first byte after the fixed part
constexpr size_t kResponseReserved = 2;
constexpr size_t kResponseHeaderCount = 4;

void patch_u32(std::string& bytes, size_t at, uint32_t v) { std::memcpy(bytes.data() + at, &v, 4); }

std::vector<Header> many_headers(size_t n) {
  std::vector<Header> headers;
  headers.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    // Appended, not "H" + std::to_string(i): GCC 12 warns falsely (-Wrestrict) on that.
    std::string name = "H";
    name += std::to_string(i);
    headers.push_back({std::move(name), std::to_string(i)});
  }
  return headers;
}

bool same_headers(const std::vector<Header>& a, const std::vector<Header>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].value != b[i].value) return false;
  }
  return true;
}

// 16-bit counts dropped every header past 65,535 and read the rest of the
// head as body; the count must survive whole.
TEST(RingCodec, RequestHeadRoundTripsWith65537Headers) {
  HttpRequest req = sample_request();
  req.headers = many_headers(65537);
  std::string bytes;
  ASSERT_TRUE(encode_request_head(req, RequestOrigin{1, 2, 3, "127.0.0.1"}, 4, bytes));
  bytes += "body";
  HttpRequest out;
  RequestOrigin origin;
  uint64_t body_length = 0;
  const size_t used = decode_request_head(bytes, out, origin, body_length);
  ASSERT_EQ(used, bytes.size() - 4);
  EXPECT_EQ(out.method, "POST");
  EXPECT_EQ(out.target, req.target);
  EXPECT_TRUE(same_headers(out.headers, req.headers));
  EXPECT_EQ(body_length, 4u);
}

TEST(RingCodec, RequestHeadRoundTripsWithA70000ByteHeaderName) {
  HttpRequest req = sample_request();
  req.headers.insert(req.headers.begin() + 1, Header{std::string(70000, 'n'), "v"});
  std::string bytes;
  ASSERT_TRUE(encode_request_head(req, RequestOrigin{}, 0, bytes));
  HttpRequest out;
  RequestOrigin origin;
  uint64_t body_length = 1;
  ASSERT_EQ(decode_request_head(bytes, out, origin, body_length), bytes.size());
  EXPECT_TRUE(same_headers(out.headers, req.headers));
  EXPECT_EQ(body_length, 0u);
}

TEST(RingCodec, ResponseHeadRoundTripsWith65537HeadersAndA70000ByteName) {
  std::vector<Header> headers = many_headers(65537);
  headers.push_back({std::string(70000, 'n'), std::string(70000, 'v')});
  std::string bytes;
  ASSERT_TRUE(encode_response_head(201, headers, 0, bytes));
  int status = 0;
  std::vector<Header> out;
  uint64_t length = 1;
  ASSERT_EQ(decode_response_head(bytes, status, out, length), bytes.size());
  EXPECT_EQ(status, 201);
  EXPECT_TRUE(same_headers(out, headers));
  EXPECT_EQ(length, 0u);
}

TEST(RingCodec, TruncatedResponseHeadIsRefusedAtEveryLength) {
  std::string bytes;
  ASSERT_TRUE(encode_response_head(200, {{"A", "1"}, {"Content-Type", "text/plain"}}, 0, bytes));
  for (size_t n = 0; n < bytes.size(); ++n) {
    int status = 0;
    std::vector<Header> headers;
    uint64_t length = 0;
    EXPECT_EQ(decode_response_head(std::string_view(bytes).substr(0, n), status, headers, length),
              0u)
        << n;
  }
}

// A forged count must be refused by comparing it with the bytes present, not
// by trying to reserve that many entries first (a 4G-entry reservation would
// throw; a 1M-entry one would succeed and waste 64 MiB per record).
TEST(RingCodec, HeaderCountBeyondThePayloadIsRefusedWithoutAllocating) {
  std::string valid;
  ASSERT_TRUE(encode_request_head(sample_request(), RequestOrigin{}, 0, valid));
  for (const uint32_t count :
       {uint32_t{4}, uint32_t{1} << 20, std::numeric_limits<uint32_t>::max()}) {
    std::string bytes = valid;
    patch_u32(bytes, kRequestHeaderCount, count);
    HttpRequest out;
    RequestOrigin origin;
    uint64_t len = 0;
    size_t used = 1;
    EXPECT_NO_THROW(used = decode_request_head(bytes, out, origin, len)) << count;
    EXPECT_EQ(used, 0u) << count;
    EXPECT_LE(out.headers.capacity(), bytes.size() / 8) << count;
  }
  std::string response;
  ASSERT_TRUE(encode_response_head(200, {{"A", "1"}}, 0, response));
  patch_u32(response, kResponseHeaderCount, std::numeric_limits<uint32_t>::max());
  int status = 0;
  std::vector<Header> headers;
  uint64_t len = 0;
  size_t used = 1;
  EXPECT_NO_THROW(used = decode_response_head(response, status, headers, len));
  EXPECT_EQ(used, 0u);
  EXPECT_LE(headers.capacity(), response.size() / 8);
}

TEST(RingCodec, LengthBeyondThePayloadIsRefused) {
  std::string valid;
  ASSERT_TRUE(encode_request_head(sample_request(), RequestOrigin{}, 0, valid));
  const size_t first_header =
      kRequestMethod + sample_request().method.size() + sample_request().target.size();
  // (RequestOrigin{} has no client address: no bytes of it before the headers.)
  // The method length, the client address length, then the first header's
  // name and value lengths.
  for (const size_t at : {size_t{24}, size_t{36}, first_header, first_header + 4}) {
    for (const uint32_t n : {uint32_t{1000}, std::numeric_limits<uint32_t>::max()}) {
      std::string bytes = valid;
      patch_u32(bytes, at, n);
      HttpRequest out;
      RequestOrigin origin;
      uint64_t len = 0;
      EXPECT_EQ(decode_request_head(bytes, out, origin, len), 0u) << at << " " << n;
    }
  }
}

// The reserved fields and keep_alive have one valid spelling each, so a
// decodable head has exactly one encoding.
TEST(RingCodec, ReservedFieldsAndKeepAliveAcceptOnlyTheirOneSpelling) {
  std::string valid;
  ASSERT_TRUE(encode_request_head(sample_request(), RequestOrigin{}, 0, valid));
  for (const size_t at : {kRequestReserved, kRequestKeepAlive}) {
    std::string bytes = valid;
    bytes[at] = 2;
    HttpRequest out;
    RequestOrigin origin;
    uint64_t len = 0;
    EXPECT_EQ(decode_request_head(bytes, out, origin, len), 0u) << at;
  }
  std::string response;
  ASSERT_TRUE(encode_response_head(200, {}, 0, response));
  response[kResponseReserved] = 1;
  int status = 0;
  std::vector<Header> headers;
  uint64_t len = 0;
  EXPECT_EQ(decode_response_head(response, status, headers, len), 0u);
}

// What follows the head is the body's first piece: more of it than the head
// announced is garbage, not body.
TEST(RingCodec, MoreBodyThanBodyLengthIsRefused) {
  std::string bytes;
  ASSERT_TRUE(encode_request_head(sample_request(), RequestOrigin{}, 3, bytes));
  HttpRequest out;
  RequestOrigin origin;
  uint64_t len = 0;
  EXPECT_GT(decode_request_head(bytes + "abc", out, origin, len), 0u);
  EXPECT_EQ(decode_request_head(bytes + "abcd", out, origin, len), 0u);
  std::string response;
  ASSERT_TRUE(encode_response_head(200, {}, 0, response));
  int status = 0;
  std::vector<Header> headers;
  EXPECT_EQ(decode_response_head(response + "x", status, headers, len), 0u);
}

// A status that does not fit the field is reported, never narrowed (70200
// would have become 4664, and 65736 a plausible 200); what was appended is a
// head the peer refuses.
TEST(RingCodec, UnrepresentableStatusIsReportedAndRefusedByThePeer) {
  for (const int bad : {65736, 70200, -1}) {
    std::string bytes = "kept";
    EXPECT_FALSE(encode_response_head(bad, {{"A", "1"}}, 5, bytes)) << bad;
    ASSERT_EQ(bytes.substr(0, 4), "kept");
    int status = 0;
    std::vector<Header> headers;
    uint64_t len = 0;
    EXPECT_EQ(decode_response_head(std::string_view(bytes).substr(4), status, headers, len), 0u)
        << bad;
  }
}

// ---- the largest encoded head (max_request_head_bytes) ----

// The one request `text` parses to with `max_header_bytes`, or a failure.
HttpRequest parse_one(const std::string& text, uint32_t max_header_bytes) {
  ParserLimits limits;
  limits.max_header_bytes = max_header_bytes;
  limits.max_target_bytes = max_header_bytes;
  RequestParser parser(limits);
  std::vector<HttpRequest> out;
  EXPECT_TRUE(parser.feed(text, out)) << parser.error_reason();
  EXPECT_EQ(out.size(), 1u);
  return out.empty() ? HttpRequest{} : out[0];
}

size_t encoded_size(const HttpRequest& req) {
  std::string bytes;
  EXPECT_TRUE(
      encode_request_head(req, RequestOrigin{1, 2, 3, std::string(kMaxClientText, '9')}, 0, bytes));
  return bytes.size();
}

// A head of exactly `size` bytes made of the shortest header lines the
// parser accepts ("a:\r\n"); the bytes a whole line would not fill go to
// the target. (The tester's request was this shape: 3,700 lines.)
std::string minimal_lines_head(size_t size) {
  const std::string start = "GET / HTTP/1.1\r\nHost: a\r\n";
  const size_t lines = (size - start.size() - 2) / 4;
  std::string head = start;
  head.insert(5, std::string(size - start.size() - 2 - 4 * lines, 't'));  // after "GET /"
  for (size_t i = 0; i < lines; ++i) head += "a:\r\n";
  return head + "\r\n";
}

TEST(RingCodec, LargestRequestHeadIsTheFixedPartPlusFiveBytesPerShortestLine) {
  // 40 fixed + 64 client - 14 bytes of request-line framing, and 8 - 3
  // bytes more per header line than as text, for (max - 16) / 4 lines,
  // and 273 for an absolute-form authority taken as Host (261 + 4 + 8).
  EXPECT_EQ(max_request_head_bytes(16384), 16384u + 90 + 5 * 4092 + 273);
  EXPECT_EQ(max_request_head_bytes(16384), 37207u);
  EXPECT_EQ(max_request_head_bytes(1024), 2647u);
  EXPECT_EQ(max_request_head_bytes(1027), 1027u + 90 + 5 * 252 + 273);
  EXPECT_EQ(max_request_head_bytes(1028), 1028u + 90 + 5 * 253 + 273);
  EXPECT_EQ(max_request_head_bytes(1048576), 1048576u + 90 + 5 * 262140 + 273);
}

// The bound holds for the real worst case, parsed by the real parser and
// encoded with the longest client text, and is tight: within one line's 5
// bytes (plus the 2 the 3-byte "GET" has over the 1-byte method the bound
// allows, the Host line, and the 273 an absolute-form authority may add).
TEST(RingCodec, WorstCaseHeadOfMaxHeaderBytesEncodesWithinTheBound) {
  for (const uint32_t max : {1024u, 1025u, 1026u, 1027u, 4000u, 16384u, 65536u}) {
    const std::string text = minimal_lines_head(max);
    ASSERT_EQ(text.size(), max);
    const size_t encoded = encoded_size(parse_one(text, max));
    EXPECT_LE(encoded, max_request_head_bytes(max)) << max;
    EXPECT_GE(encoded + 15 + 273, max_request_head_bytes(max)) << max;
  }
  // The tester's 14,827-byte head: 33,366 bytes encoded, more than a 64 KiB
  // ring's record (32,752) takes; 4 x max_header_bytes was not enough.
  std::string tester = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 3700; ++i) tester += "a:\r\n";
  tester += "\r\n";
  ASSERT_EQ(tester.size(), 14827u);
  HttpRequest req = parse_one(tester, 16384);
  std::string bytes;
  ASSERT_TRUE(encode_request_head(req, RequestOrigin{1, 2, 3, "127.0.0.1"}, 0, bytes));
  EXPECT_EQ(bytes.size(), 33366u);
  EXPECT_LE(encoded_size(req), max_request_head_bytes(16384));
}

// What the bound rests on: every byte the encoding carries of a head
// (method, target, names, values) is a byte of its text, apart from the
// request line's framing and each header line's ":" and CRLF, except the
// Host an absolute-form target brings (bounded by kMaxHostBytes, and in the
// bound). A parser that added other bytes (a synthesized header) would
// break the ring size check; this says so here.
TEST(RingCodec, EncodedFieldsAreBytesOfTheHeadText) {
  const std::vector<std::string> heads = {
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
      "\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET http://example.com/long/path HTTP/1.1\r\nHost: b\r\n\r\n",
      "GET http://example.com:8080/ HTTP/1.1\r\nHost: other.example\r\na:\r\nb:  c  \r\n\r\n",
      "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
      "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nX:\t\tv\t\r\n\r\n",
      "GET / HTTP/1.0\r\n\r\n",
      "GET http://a.example/ HTTP/1.0\r\n\r\n",
      "M-SEARCH /m HTTP/1.1\r\nHost: a\r\n\r\n",
  };
  for (const std::string& text : heads) {
    const HttpRequest req = parse_one(text, 16384);
    size_t fields = req.method.size() + req.target.size();
    for (const Header& h : req.headers) fields += h.name.size() + h.value.size();
    // The one exception: an absolute-form target's authority is the Host
    // (RFC 9112 3.2.2), its bytes counted again, a "Host" line added if
    // there was none.
    const bool absolute = req.target.starts_with("http://");
    const size_t host_extra = absolute ? kMaxHostBytes + 4 + 3 : 0;
    EXPECT_LE(fields + 14 + 3 * req.headers.size(), text.size() + host_extra) << text;
    EXPECT_LE(encoded_size(req), max_request_head_bytes(static_cast<uint32_t>(text.size())))
        << text;
  }
}

// A head decoded in shared memory is checked, then formatted: the views
// must point into a private copy, or the writer could change the bytes
// between the two reads. After own_head_views, changing the ring's bytes
// changes nothing the views show.
TEST(RingCodec, OwnedHeadViewsDoNotSeeTheRingChange) {
  std::string ring;
  ASSERT_TRUE(encode_response_head(200, {{"X-Name", "fine"}, {"Server", "t"}}, 2, ring));
  ring += "ok";
  int status = 0;
  uint64_t length = 0;
  std::vector<HeaderView> headers;
  const size_t used = decode_response_head(ring, status, headers, length);
  ASSERT_GT(used, 0u);
  std::string copy;
  own_head_views(std::string_view(ring).substr(0, used), headers, copy);
  for (size_t i = 0; i < used; ++i) ring[i] = '\n';  // the writer rewrites it all
  ASSERT_EQ(headers.size(), 2u);
  EXPECT_EQ(headers[0].name, "X-Name");
  EXPECT_EQ(headers[0].value, "fine");
  EXPECT_EQ(headers[1].name, "Server");
  EXPECT_EQ(headers[1].value, "t");
  EXPECT_EQ(copy.size(), used);
}

}  // namespace
}  // namespace ringhttpd::proto
