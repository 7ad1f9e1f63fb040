// Request and response heads through the ring record encoding, and refusal
// of truncated records.
#include "proto/ring_codec.h"

#include <gtest/gtest.h>

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
  encode_request_head(req, RequestOrigin{1234, 7, 3}, 42, bytes);
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

TEST(RingCodec, ResponseWithImpossibleStatusIsRefused) {
  std::string bytes;
  encode_response_head(42, {}, 0, bytes);
  int status = 0;
  std::vector<Header> headers;
  uint64_t length = 0;
  EXPECT_EQ(decode_response_head(bytes, status, headers, length), 0u);
}

}  // namespace
}  // namespace ringhttpd::proto
