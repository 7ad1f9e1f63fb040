// Connections taken over by a service (upgrades), their pure decisions
// without processes: which requests the parser marks and stops after, which
// the network process gives away (worker/takeover.h), the payload's layout
// (proto/takeover.h), the supervisor's checks and choice of process
// (master/takeover.h), and a tunnel's flow rules and the bytes it writes
// (worker/handlers/tunnel.h).
#include "master/takeover.h"

#include <gtest/gtest.h>

#include "proto/control.h"
#include "proto/http_parser.h"
#include "proto/takeover.h"
#include "worker/handlers/tunnel.h"
#include "worker/takeover.h"

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
  EXPECT_FALSE(
      upgrade_of("POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n"
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

// ---- which requests the network process gives away ----

struct Routes {
  std::vector<worker::ServiceSettings> services;
  worker::RouteSettings route;
  Routes(std::string type, bool upgrade) {
    services.resize(2);
    services[1].name = "ws";
    services[1].type = std::move(type);
    services[1].proxy.upgrade = upgrade;
    route.kind = worker::RouteSettings::Kind::service;
    route.service_index = 1;
  }
};

proto::RequestHead head(bool upgrade, bool keep_alive = true) {
  proto::RequestHead h;
  h.method = "GET";
  h.upgrade = upgrade;
  h.keep_alive = keep_alive;
  return h;
}

TEST(Takeover, WhichRequestsAreTakenOver) {
  const Routes proxy("proxy", true);
  EXPECT_TRUE(worker::takes_over(head(true), &proxy.route, proxy.services, false));
  EXPECT_FALSE(worker::takes_over(head(false), &proxy.route, proxy.services, false));
  EXPECT_FALSE(worker::takes_over(head(true, false), &proxy.route, proxy.services, false))
      << "Connection: upgrade, close";
  EXPECT_FALSE(worker::takes_over(head(true), &proxy.route, proxy.services, true)) << "stopping";
  EXPECT_FALSE(worker::takes_over(head(true), nullptr, proxy.services, false));
  const Routes off("proxy", false);
  EXPECT_FALSE(worker::takes_over(head(true), &off.route, off.services, false));
  const Routes echo("echo", true);
  EXPECT_FALSE(worker::takes_over(head(true), &echo.route, echo.services, false));
  worker::RouteSettings respond;
  EXPECT_FALSE(worker::takes_over(head(true), &respond, proxy.services, false));
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
  EXPECT_TRUE(
      proto::encode_takeover(encoded_head(), std::string(proto::kMaxControlPayload, 'x')).empty());
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

// ---- the supervisor ----

TEST(Takeover, TheSupervisorChecksEveryFieldOfTheMessage) {
  const std::string good = proto::encode_takeover(encoded_head(), "");
  EXPECT_EQ(master::check_takeover(1, 1, good, 2), "");
  EXPECT_NE(master::check_takeover(1, 0, good, 2), "");
  EXPECT_NE(master::check_takeover(1, 2, good, 2), "");
  EXPECT_NE(master::check_takeover(2, 1, good, 2), "");
  EXPECT_NE(master::check_takeover(1, 1, "junk", 2), "");
}

TEST(Takeover, TheServingConfigsServiceIsFoundByName) {
  std::vector<worker::ServiceSettings> s(3);
  s[0].name = "app";
  s[1].name = "ws";
  s[1].type = "proxy";
  s[2].name = "off";
  s[2].type = "proxy";
  s[2].proxy.upgrade = false;
  EXPECT_EQ(master::serving_service("ws", s), 1);
  EXPECT_EQ(master::serving_service("app", s), -1) << "not a proxy";
  EXPECT_EQ(master::serving_service("off", s), -1) << "upgrade off";
  EXPECT_EQ(master::serving_service("gone", s), -1);
}

TEST(Takeover, EqualProcessesTakeConnectionsInTurnPassingOverUnreadyOnes) {
  std::vector<master::TakerCandidate> c(3, {true});
  uint32_t next = 0;
  EXPECT_EQ(master::pick_taker(c, next), 0);
  EXPECT_EQ(master::pick_taker(c, next), 1);
  EXPECT_EQ(master::pick_taker(c, next), 2);
  EXPECT_EQ(master::pick_taker(c, next), 0);
  c[1].ready = false;
  EXPECT_EQ(master::pick_taker(c, next), 2);
  EXPECT_EQ(master::pick_taker(c, next), 0);
  c.assign(3, {false});
  EXPECT_EQ(master::pick_taker(c, next), -1);
  EXPECT_EQ(master::pick_taker({}, next), -1);
}

// Tunnels last: a process that holds many (after a restart of its sibling,
// say) gets none until the others catch up, and takes sent but not yet
// taken off a process's socket count as held.
TEST(Takeover, TheProcessHoldingTheFewestConnectionsTakesTheNext) {
  std::vector<master::TakerCandidate> c(3, {true});
  c[0].connections = 50;
  c[1].connections = 10;
  c[2].connections = 12;
  uint32_t next = 0;
  EXPECT_EQ(master::pick_taker(c, next), 1);
  c[1].sent = 3;  // three on their way to it: 13
  EXPECT_EQ(master::pick_taker(c, next), 2);
  c[1].taken = 3;
  c[1].connections = 13;  // taken and open: still 13
  EXPECT_EQ(master::pick_taker(c, next), 2);
  c[2].connections = 13;  // a tie: from `next` on (past 2, so 0, then 1)
  EXPECT_EQ(master::pick_taker(c, next), 1);
  c[1].taken = 9;  // more taken than sent (its word): none on their way
  c[1].connections = 5;
  EXPECT_EQ(master::pick_taker(c, next), 1);
  c[1].ready = false;
  EXPECT_EQ(master::pick_taker(c, next), 2);
}

// ---- a tunnel's flows and bytes ----

TEST(Takeover, AFlowReadsOnlyWithRoomAndShutsItsDestinationAfterTheLastByte) {
  worker::Flow f;
  EXPECT_TRUE(worker::flow_wants_read(f));
  EXPECT_FALSE(worker::flow_wants_write(f));
  f.buf.assign(worker::kFlowBytes, 'x');
  EXPECT_FALSE(worker::flow_wants_read(f)) << "full: the source waits";
  EXPECT_TRUE(worker::flow_wants_write(f));
  f.at = 1;
  EXPECT_TRUE(worker::flow_wants_read(f));
  f.src_eof = true;
  EXPECT_FALSE(worker::flow_wants_read(f));
  EXPECT_FALSE(worker::flow_should_shut(f)) << "bytes still to write";
  f.at = f.buf.size();
  EXPECT_TRUE(worker::flow_should_shut(f));
  EXPECT_FALSE(worker::flow_done(f));
  f.dst_shut = true;
  EXPECT_FALSE(worker::flow_should_shut(f));
  EXPECT_TRUE(worker::flow_done(f));
}

TEST(Takeover, TheUpstreamGetsTheUpgradeAndNoOtherHopByHopField) {
  worker::ServiceRequest r;
  r.http.method = "GET";
  r.http.target = "/chat?room=1";
  r.http.headers = {{"Host", "chat.test"},          {"Connection", "Upgrade, X-Secret"},
                    {"Upgrade", "websocket"},       {"X-Secret", "1"},
                    {"Keep-Alive", "300"},          {"X-Forwarded-For", "10.0.0.9"},
                    {"Sec-WebSocket-Version", "13"}};
  r.origin.client = "127.0.0.1";
  const std::string h = worker::upgrade_request_head(r, "up:80");
  EXPECT_TRUE(h.starts_with("GET /chat?room=1 HTTP/1.1\r\nHost: chat.test\r\n")) << h;
  EXPECT_NE(h.find("Connection: upgrade\r\nUpgrade: websocket\r\n"), std::string::npos) << h;
  EXPECT_NE(h.find("Sec-WebSocket-Version: 13\r\n"), std::string::npos) << h;
  EXPECT_NE(h.find("X-Forwarded-For: 10.0.0.9, 127.0.0.1\r\n"), std::string::npos) << h;
  EXPECT_NE(h.find("X-Forwarded-Host: chat.test\r\n"), std::string::npos) << h;
  EXPECT_NE(h.find("Forwarded: for=127.0.0.1;host=chat.test;proto=http\r\n"), std::string::npos)
      << h;
  EXPECT_EQ(h.find("X-Secret"), std::string::npos) << h;
  EXPECT_EQ(h.find("Keep-Alive"), std::string::npos) << h;
  EXPECT_TRUE(h.ends_with("\r\n\r\n"));
  r.http.headers = {{"Upgrade", "websocket"}};
  EXPECT_NE(worker::upgrade_request_head(r, "up:81").find("Host: up:81\r\n"), std::string::npos);
  // As on the request path: every X-Forwarded-For line, no underscore names.
  r.http.headers = {{"Upgrade", "websocket"},
                    {"X-Forwarded-For", "9.9.9.9"},
                    {"X_Forwarded_For", "6.6.6.6"},
                    {"X-Forwarded-For", "8.8.8.8"}};
  const std::string joined = worker::upgrade_request_head(r, "up:82");
  EXPECT_NE(joined.find("X-Forwarded-For: 9.9.9.9, 8.8.8.8, 127.0.0.1\r\n"), std::string::npos)
      << joined;
  EXPECT_EQ(joined.find("6.6.6.6"), std::string::npos) << joined;
}

// host_header: the upstream's address, or a literal, in place of the
// client's Host (X-Forwarded-Host and Forwarded still say the client's).
TEST(Takeover, TheUpstreamsHostIsAsConfigured) {
  worker::ServiceRequest r;
  r.http.method = "GET";
  r.http.target = "/chat";
  r.http.headers = {{"Host", "chat.test"}, {"Upgrade", "websocket"}};
  r.origin.client = "127.0.0.1";
  for (const auto& [setting, host] : {std::pair<std::string, std::string>{"$upstream", "up:80"},
                                      {"api.internal:8080", "api.internal:8080"}}) {
    const std::string h = worker::upgrade_request_head(r, "up:80", worker::HostHeader{setting});
    EXPECT_TRUE(h.starts_with("GET /chat HTTP/1.1\r\nHost: " + host + "\r\n")) << h;
    EXPECT_EQ(h.find("\r\nHost: chat.test\r\n"), std::string::npos) << h;
    EXPECT_NE(h.find("X-Forwarded-Host: chat.test\r\n"), std::string::npos) << h;
    EXPECT_NE(h.find(";host=chat.test;"), std::string::npos) << h;
  }
}

TEST(Takeover, AnAnswerOtherThan101KeepsItsFramingAndSaysClose) {
  const std::string h = worker::closing_response_head(403, {{"Content-Length", "6"},
                                                            {"Connection", "keep-alive"},
                                                            {"Keep-Alive", "5"},
                                                            {"X-Why", "origin"}});
  // Server and Date are ours, as on every answer (the upstream's dropped).
  EXPECT_EQ(h.substr(0, h.find("Date: ")), "HTTP/1.1 403 Forbidden\r\nServer: ringhttpd\r\n");
  EXPECT_EQ(h.substr(h.find("Content-Length")),
            "Content-Length: 6\r\nX-Why: origin\r\nConnection: close\r\n\r\n");
  const std::string mine =
      worker::closing_response_head(200, {{"Server", "origin/1"}, {"Date", "then"}});
  EXPECT_EQ(mine.find("origin/1"), std::string::npos) << mine;
  EXPECT_EQ(mine.find("then"), std::string::npos) << mine;
  const std::string e = worker::tunnel_error_response(502, "refused");
  EXPECT_TRUE(e.starts_with("HTTP/1.1 502 Bad Gateway\r\nServer: ringhttpd\r\nDate: ")) << e;
  EXPECT_NE(e.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(e.ends_with("502 Bad Gateway (refused)\n")) << e;
}

}  // namespace
}  // namespace ringhttpd
