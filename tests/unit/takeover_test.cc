// Connections taken over by a service (upgrades), their pure parts without
// processes: which requests the parser marks and stops after, and the
// takeover payload's layout (proto/takeover.h).
#include <gtest/gtest.h>

#include "proto/control.h"
#include "proto/http_parser.h"
#include "proto/takeover.h"

namespace ringhttpd {
namespace {

constexpr std::string_view kUpgrade =
    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n";

// ---- the parser ----

TEST(Takeover, TheParserMarksAnUpgradeAndStopsRightAfterIt) {
  proto::RequestParser parser;
  proto::RequestEvents ev;
  const std::string input = std::string(kUpgrade) + "\x81\x05hello";
  size_t used = 0;
  ASSERT_TRUE(parser.feed_events(input, ev, used, /*one_request=*/false));
  EXPECT_EQ(used, kUpgrade.size());
  ASSERT_EQ(ev.heads.size(), 1u);
  EXPECT_TRUE(ev.heads[0].upgrade);
  EXPECT_EQ(ev.completed, 1u);
}

TEST(Takeover, OnlyABodilessGetWithBothHeadersIsAnUpgrade) {
  const auto upgrade_of = [](std::string_view text) {
    proto::RequestParser parser;
    proto::RequestEvents ev;
    size_t used = 0;
    EXPECT_TRUE(parser.feed_events(text, ev, used, false)) << text;
    return !ev.heads.empty() && ev.heads[0].upgrade;
  };
  EXPECT_TRUE(upgrade_of(kUpgrade));
  EXPECT_FALSE(upgrade_of("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"));
  EXPECT_FALSE(upgrade_of("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n"));
  EXPECT_FALSE(upgrade_of(
      "POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n"
      "Content-Length: 2\r\n\r\nhi"));
  EXPECT_FALSE(upgrade_of("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
}

// Pipelined plain requests still all come out of one feed.
TEST(Takeover, PlainPipelinedRequestsAreNotStopped) {
  proto::RequestParser parser;
  proto::RequestEvents ev;
  const std::string two = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n";
  size_t used = 0;
  ASSERT_TRUE(parser.feed_events(two, ev, used, false));
  EXPECT_EQ(used, two.size());
  EXPECT_EQ(ev.completed, 2u);
}

// ---- the payload ----

std::string encoded_head() {
  proto::HttpRequest req;
  req.method = "GET";
  req.target = "/ws";
  req.headers = {{"Host", "a"}, {"Upgrade", "websocket"}};
  proto::RequestOrigin origin{1, 2, 3, "10.0.0.1"};
  std::string out;
  EXPECT_TRUE(proto::encode_request_head(req, origin, 0, out));
  return out;
}

TEST(Takeover, ThePayloadCarriesTheHeadAndTheEarlyBytes) {
  const std::string payload = proto::encode_takeover(encoded_head(), "early");
  proto::HttpRequest req;
  proto::RequestOrigin origin;
  std::string_view early;
  ASSERT_TRUE(proto::decode_takeover(payload, req, origin, early));
  EXPECT_EQ(req.target, "/ws");
  EXPECT_EQ(req.header("Upgrade"), "websocket");
  EXPECT_EQ(origin.client, "10.0.0.1");
  EXPECT_EQ(early, "early");
  EXPECT_TRUE(proto::encode_takeover(encoded_head(), std::string(proto::kMaxControlPayload, 'x'))
                  .empty());
}

TEST(Takeover, APayloadThatIsNotOneIsRefused) {
  proto::HttpRequest req;
  proto::RequestOrigin origin;
  std::string_view early;
  const std::string good = proto::encode_takeover(encoded_head(), "x");
  EXPECT_FALSE(proto::decode_takeover("", req, origin, early));
  EXPECT_FALSE(proto::decode_takeover(good.substr(0, 3), req, origin, early));
  std::string long_len = good;
  long_len[0] = '\xff';  // a head length past the end
  EXPECT_FALSE(proto::decode_takeover(long_len, req, origin, early));
  std::string zero = good;
  zero[0] = zero[1] = zero[2] = zero[3] = 0;
  EXPECT_FALSE(proto::decode_takeover(zero, req, origin, early));
  std::string cut = good;
  cut[0] = static_cast<char>(cut[0] - 1);  // the head one byte short: does not decode
  EXPECT_FALSE(proto::decode_takeover(cut, req, origin, early));
  // Every prefix that cuts into the head is refused.
  for (size_t n = 0; n < good.size() - 1; ++n) {
    EXPECT_FALSE(proto::decode_takeover(good.substr(0, n), req, origin, early)) << n;
  }
}

}  // namespace
}  // namespace ringhttpd
