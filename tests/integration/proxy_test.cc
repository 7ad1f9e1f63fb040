// The "proxy" service type through the real binary, against upstreams the
// test runs itself on loopback (a thread per connection, each answering as
// the test says: normally, slowly, never, malformed, cut short, closing
// kept-alive connections). Checks what reaches the upstream (hop-by-hop
// headers gone, X-Forwarded-*), the errors (502, 504), keep-alive reuse,
// the retry of a reused connection found closed, an upstream that is down,
// streamed bodies both ways, many slow requests held at once, and routing
// on the normalized path while the upstream gets the target as sent.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "proto/unique_fd.h"
#include "tests/integration/server_harness.h"

namespace ringhttpd::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

struct UpRequest {
  std::string head;  // request line and headers
  std::string body;
  std::string line() const { return head.substr(0, head.find("\r\n")); }
  bool has(std::string_view header_line) const {
    return head.find(std::string(header_line) + "\r\n") != std::string::npos;
  }
};

// What the upstream does with a request: write to fd (and return true to
// keep the connection for the next request).
using Behavior = std::function<bool(const UpRequest&, int fd)>;

bool send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string ok(std::string_view body, std::string_view extra = {}) {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         std::string(extra) + "\r\n" + std::string(body);
}

// The answer for a path, as several upstreams below give it: the
// path itself, so each client can check it got its own.
std::string path_of(const UpRequest& r) {
  const size_t sp = r.line().find(' ');
  return r.line().substr(sp + 1, r.line().rfind(' ') - sp - 1);
}

// An upstream of the test's own (a LoopbackListener): each connection's
// requests are read one by one and given to the Behavior.
class Upstream {
 public:
  explicit Upstream(Behavior behavior) : behavior_(std::move(behavior)) {}
  int port() const { return listener_.port(); }
  std::string address() const { return listener_.address(); }
  int connections() const { return listener_.connections(); }
  int requests() const { return requests_; }
  UpRequest last() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }

 private:
  void serve(int c) {
    std::string buf;
    char tmp[65536];
    for (;;) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        const ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
        if (n <= 0) return;
        buf.append(tmp, static_cast<size_t>(n));
      }
      UpRequest r;
      r.head = buf.substr(0, end + 2);
      buf.erase(0, end + 4);
      size_t length = 0;
      const size_t cl = r.head.find("Content-Length: ");
      if (cl != std::string::npos) length = std::stoul(r.head.substr(cl + 16));
      const bool chunked = r.head.find("Transfer-Encoding: chunked") != std::string::npos;
      if (chunked && !read_chunked(c, buf, r.body)) return;
      while (!chunked && buf.size() < length) {
        const ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
        if (n <= 0) return;
        buf.append(tmp, static_cast<size_t>(n));
      }
      if (!chunked) {
        r.body = buf.substr(0, length);
        buf.erase(0, length);
      }
      ++requests_;
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_ = r;
      }
      if (!behavior_(r, c)) return;
    }
  }
  bool read_chunked(int c, std::string& buf, std::string& body) {
    char tmp[65536];
    for (;;) {
      size_t eol;
      while ((eol = buf.find("\r\n")) == std::string::npos) {
        const ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
        if (n <= 0) return false;
        buf.append(tmp, static_cast<size_t>(n));
      }
      const size_t size = std::stoul(buf.substr(0, eol), nullptr, 16);
      while (buf.size() < eol + 2 + size + 2) {
        const ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
        if (n <= 0) return false;
        buf.append(tmp, static_cast<size_t>(n));
      }
      body.append(buf, eol + 2, size);
      buf.erase(0, eol + 2 + size + 2);
      if (size == 0) return true;
    }
  }

  Behavior behavior_;
  std::atomic<int> requests_{0};
  std::mutex mu_;
  UpRequest last_;
  LoopbackListener listener_{[this](int fd) { serve(fd); }};  // last: stops first
};

std::string config(const std::vector<std::string>& upstreams, int processes = 1,
                   json extra = json::object()) {
  json service = {{"name", "api"},
                  {"type", "proxy"},
                  {"processes", processes},
                  {"upstreams", upstreams},
                  {"connect_timeout_ms", 500}};
  for (auto& [k, v] : extra.items()) service[k] = v;
  return json{
      {"listeners", {{{"address", "127.0.0.1"}, {"port", 0}}}},
      {"network", {{"processes", 1}, {"max_body_bytes", 1 << 30}}},
      {"services", {service}},
      {"routes", {{{"path", "/"}, {"service", "api"}}}},
      {"admin", {{"socket", ""}}},
  }
      .dump();
}

TEST(Proxy, ForwardsRequestsWithoutHopByHopHeadersAndWithXForwarded) {
  Upstream up([](const UpRequest& r, int fd) {
    return send_all(
        fd, ok("saw " + r.line() + " " + std::to_string(r.body.size()),
               "Keep-Alive: timeout=5\r\nX-From-Upstream: yes\r\nConnection: keep-alive\r\n"));
  });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(
      c.send("POST /a/b?q=1 HTTP/1.1\r\nHost: example.test\r\nConnection: X-Secret\r\n"
             "X-Secret: 1\r\nX-Forwarded-For: 10.0.0.1\r\nKeep-Alive: 300\r\n"
             "Content-Length: 5\r\n\r\nhello"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "saw POST /a/b?q=1 HTTP/1.1 5");
  EXPECT_EQ(r->headers["x-from-upstream"], "yes");
  EXPECT_EQ(r->headers.count("keep-alive"), 0u);
  EXPECT_EQ(r->headers["connection"], "keep-alive");  // ours, for the client connection
  const UpRequest seen = up.last();
  EXPECT_EQ(seen.body, "hello");
  EXPECT_TRUE(seen.has("Host: example.test")) << seen.head;
  EXPECT_TRUE(seen.has("X-Forwarded-For: 10.0.0.1, 127.0.0.1")) << seen.head;
  EXPECT_TRUE(seen.has("X-Forwarded-Proto: http")) << seen.head;
  EXPECT_TRUE(seen.has("X-Forwarded-Host: example.test")) << seen.head;
  EXPECT_TRUE(seen.has("Forwarded: for=127.0.0.1;host=example.test;proto=http")) << seen.head;
  EXPECT_FALSE(seen.has("X-Secret: 1")) << "listed in Connection: hop-by-hop";
  EXPECT_EQ(seen.head.find("Keep-Alive"), std::string::npos) << seen.head;
  // HEAD: the length, no body.
  ASSERT_TRUE(c.send("HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto h = c.read_response(10s, true);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(h->headers["content-length"], "22");  // "saw HEAD /h HTTP/1.1 0"
}

// How many Host lines an upstream request has (the first line is the
// request line, so every field line follows a CRLF).
int host_lines(const UpRequest& r) {
  int n = 0;
  for (size_t at = r.head.find("\r\nHost:"); at != std::string::npos;
       at = r.head.find("\r\nHost:", at + 1)) {
    ++n;
  }
  return n;
}

// An empty Host names nothing: the upstream gets its own address, as for
// an HTTP/1.0 client that sent none.
TEST(Proxy, AnEmptyHostIsTheUpstreamsAddress) {
  Upstream up([](const UpRequest&, int fd) { return send_all(fd, ok("x")); });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send("GET /e HTTP/1.1\r\nHost: \r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
  const UpRequest seen = up.last();
  EXPECT_TRUE(seen.has("Host: " + up.address())) << seen.head;
  EXPECT_EQ(host_lines(seen), 1) << seen.head;
}

// host_header: the upstream gets the Host configured, in place of the
// client's: its own address as configured ("$upstream"), or a literal; the
// client's Host is still told (X-Forwarded-Host, Forwarded's host).
TEST(Proxy, TheUpstreamGetsTheHostAsConfigured) {
  Upstream up([](const UpRequest&, int fd) { return send_all(fd, ok("x")); });
  for (const auto& [setting, want] :
       {std::pair<std::string, std::string>{"$upstream", up.address()},
        {"api.internal:8080", "api.internal:8080"}}) {
    Server server(config({up.address()}, 1, {{"host_header", setting}}));
    ASSERT_TRUE(server.ready()) << server.log();
    const auto r = http_get(server.port(), "/h");
    ASSERT_TRUE(r) << server.log();
    EXPECT_EQ(r->status, 200);
    const UpRequest seen = up.last();
    EXPECT_TRUE(seen.has("Host: " + want)) << setting << "\n" << seen.head;
    EXPECT_EQ(host_lines(seen), 1) << seen.head;
    EXPECT_TRUE(seen.has("X-Forwarded-Host: localhost")) << seen.head;
    EXPECT_TRUE(seen.has("Forwarded: for=127.0.0.1;host=localhost;proto=http")) << seen.head;
  }
}

// Routes match the normalized path (docs/configuration.md, "routes"): the
// ways around a "/private" route never reach the upstream, and a request
// that does reaches it with its target as sent (like nginx's proxy_pass
// without a URI).
TEST(Proxy, RoutesMatchTheNormalizedPathAndTheUpstreamGetsTheTargetAsSent) {
  Upstream up([](const UpRequest& r, int fd) { return send_all(fd, ok("saw " + r.line())); });
  json cfg = json::parse(config({up.address()}));
  cfg["routes"] = {{{"path", "/private"}, {"respond", {{"status", 403}}}},
                   {{"path", "/"}, {"service", "api"}}};
  Server server(cfg.dump());
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  for (const char* target :
       {"/x/../private", "/./private", "//private", "/%70rivate", "http://a/x/../private"}) {
    ASSERT_TRUE(c.send(std::string("GET ") + target + " HTTP/1.1\r\nHost: a\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 403) << target << ": " << r->body;
  }
  EXPECT_EQ(up.requests(), 0);
  ASSERT_TRUE(c.send("GET /a/./b//c/../%64?q=/../x HTTP/1.1\r\nHost: a\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "saw GET /a/./b//c/../%64?q=/../x HTTP/1.1");
  EXPECT_EQ(up.requests(), 1);
}

// RFC 9112 §3.2.2: an absolute-form target's authority replaces the Host
// the client sent, for the upstream too (Host and X-Forwarded-Host).
TEST(Proxy, AbsoluteFormAuthorityIsTheHostTheUpstreamSees) {
  Upstream up([](const UpRequest&, int fd) { return send_all(fd, ok("x")); });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send("GET http://public.example/ HTTP/1.1\r\nHost: admin.internal\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
  const UpRequest seen = up.last();
  EXPECT_TRUE(seen.has("Host: public.example")) << seen.head;
  EXPECT_TRUE(seen.has("X-Forwarded-Host: public.example")) << seen.head;
  EXPECT_EQ(seen.head.find("admin.internal"), std::string::npos) << seen.head;
  // The upstream is an origin server: it gets the origin form (RFC 9112
  // 3.2.1), "/" when the URI has no path.
  EXPECT_EQ(seen.line(), "GET / HTTP/1.1");
  for (const auto& [sent, line] : {std::pair{"http://public.example/p?q=1", "GET /p?q=1 HTTP/1.1"},
                                   std::pair{"http://public.example", "GET / HTTP/1.1"},
                                   std::pair{"http://public.example?q", "GET /?q HTTP/1.1"}}) {
    ASSERT_TRUE(c.send(std::string("GET ") + sent + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    r = c.read_response();
    ASSERT_TRUE(r) << sent << server.log();
    EXPECT_EQ(r->status, 200) << sent;
    EXPECT_EQ(up.last().line(), line) << sent;
  }
}

TEST(Proxy, KeptAliveUpstreamConnectionsAreReused) {
  Upstream up([](const UpRequest&, int fd) { return send_all(fd, ok("x")); });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  for (int i = 0; i < 20; ++i) {
    auto r = http_get(server.port(), "/r");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(up.requests(), 20);
  EXPECT_EQ(up.connections(), 1);
}

// The upstream closes each kept-alive connection right after answering
// (without saying so): the next request finds it closed before any byte of
// a response, and is sent again on a new connection.
TEST(Proxy, AReusedConnectionFoundClosedIsRetriedOnce) {
  Upstream up([](const UpRequest&, int fd) {
    send_all(fd, ok("fresh"));
    return false;  // then close
  });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(c.send("GET /again HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r) << i << server.log();
    EXPECT_EQ(r->status, 200) << i;
    EXPECT_EQ(r->body, "fresh");
    // Let the upstream's close arrive before the next request, sometimes.
    if (i % 2 == 0) std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(up.requests(), 10);
}

TEST(Proxy, ARefusingUpstreamGets502AndASilentOneGets504) {
  int dead_port;
  {
    Upstream gone([](const UpRequest&, int) { return false; });
    dead_port = gone.port();
  }  // closed: connects to it are refused
  {
    Server server(config({"127.0.0.1:" + std::to_string(dead_port)}));
    ASSERT_TRUE(server.ready()) << server.log();
    auto r = http_get(server.port(), "/x");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 502);
  }
  Upstream silent([](const UpRequest&, int) {
    std::this_thread::sleep_for(3s);
    return false;
  });
  Server server(config({silent.address()}, 1, {{"response_timeout_ms", 300}}));
  ASSERT_TRUE(server.ready()) << server.log();
  const auto began = Clock::now();
  auto r = http_get(server.port(), "/x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 504);
  EXPECT_LT(Clock::now() - began, 2s);
}

TEST(Proxy, MalformedOrTruncatedResponses) {
  Upstream up([](const UpRequest& r, int fd) {
    if (r.line().find("/garbage") != std::string::npos) send_all(fd, "NOT HTTP AT ALL\r\n\r\n");
    if (r.line().find("/cut-head") != std::string::npos)
      send_all(fd, "HTTP/1.1 200 OK\r\nContent-Le");
    if (r.line().find("/cut-body") != std::string::npos) {
      send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
    }
    return false;
  });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  for (const char* path : {"/garbage", "/cut-head"}) {
    auto r = http_get(server.port(), path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 502) << path;
  }
  // A body cut short: 502 if the cut is seen before anything left for the
  // client; otherwise the connection is closed short of the length the head
  // announced, so the client cannot take it as whole.
  for (int round = 0; round < 5; ++round) {
    Client c(server.port());
    ASSERT_TRUE(c.send("GET /cut-body HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto r = c.read_response(5s);
    if (r) {
      EXPECT_EQ(r->status, 502);
    } else {
      EXPECT_TRUE(c.closed_by_peer(1s)) << "a cut-off response must end its connection";
    }
  }
}

TEST(Proxy, AnUpstreamThatIsDownIsPassedOver) {
  int dead_port;
  {
    Upstream gone([](const UpRequest&, int) { return false; });
    dead_port = gone.port();
  }
  Upstream up([](const UpRequest&, int fd) { return send_all(fd, ok("alive")); });
  Server server(config({"127.0.0.1:" + std::to_string(dead_port), up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  for (int i = 0; i < 10; ++i) {
    auto r = http_get(server.port(), "/x");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << i;
  }
  EXPECT_TRUE(server.wait_for_log("passed over", 10s)) << server.log();
}

TEST(Proxy, BodiesStreamBothWays) {
  Upstream up([](const UpRequest& r, int fd) {
    if (r.line().find("/big") != std::string::npos) {
      const size_t n = 64 << 20;
      std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(n) + "\r\n\r\n";
      if (!send_all(fd, head)) return false;
      const std::string piece(1 << 20, 'z');
      for (size_t i = 0; i < n; i += piece.size()) {
        if (!send_all(fd, piece)) return false;
      }
      return true;
    }
    return send_all(fd, ok(std::to_string(r.body.size())));
  });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send("GET /big HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response(30s);
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->body.size(), size_t{64} << 20);
  EXPECT_EQ(r->body.find_first_not_of('z'), std::string::npos);
  // A 32 MiB upload, chunked by us when its length is unknown.
  std::string upload = "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 32; ++i) upload += "100000\r\n" + std::string(1 << 20, 'u') + "\r\n";
  upload += "0\r\n\r\n";
  ASSERT_TRUE(c.send(upload));
  auto u = c.read_response(30s);
  ASSERT_TRUE(u) << server.log();
  EXPECT_EQ(u->body, std::to_string(32 << 20));
}

// Many slow requests at once: two proxy processes hold them all, none
// waits for another (the design's "5 workers held 400 concurrent requests").
TEST(Proxy, FourHundredSlowRequestsAreHeldAtOnce) {
  Upstream up([](const UpRequest&, int fd) {
    std::this_thread::sleep_for(1s);
    return send_all(fd, ok("slow"));
  });
  Server server(config({up.address()}, 2, {{"keepalive", 512}}));
  ASSERT_TRUE(server.ready()) << server.log();
  const auto began = Clock::now();
  std::atomic<int> good{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 400; ++i) {
    clients.emplace_back([&] {
      auto r = http_get(server.port(), "/slow");
      if (r && r->status == 200) ++good;
    });
  }
  for (auto& t : clients) t.join();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - began);
  std::printf("400 concurrent 1-s requests through 2 proxy processes: %lld ms\n",
              static_cast<long long>(took.count()));
  EXPECT_EQ(good.load(), 400);
  EXPECT_LT(took, 3s);
}

// An upload that takes longer than response_timeout_ms is not a timeout:
// the response timer runs from the last byte sent upstream.
TEST(Proxy, ASlowSteadyUploadIsNotTimedOut) {
  Upstream up(
      [](const UpRequest& r, int fd) { return send_all(fd, ok(std::to_string(r.body.size()))); });
  Server server(config({up.address()}, 1, {{"response_timeout_ms", 400}}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send("POST /slow-up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"));
  for (int i = 0; i < 6; ++i) {
    std::this_thread::sleep_for(200ms);
    ASSERT_TRUE(c.send("1000\r\n" + std::string(4096, 'k') + "\r\n"));
  }
  ASSERT_TRUE(c.send("0\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->body, std::to_string(6 * 4096));
}

// A client cannot strip Host toward the upstream by listing it in
// Connection; an upstream status outside 100..599 is a malformed response
// (502) and the proxy goes on (its connection is dropped, not leaked).
TEST(Proxy, HostStaysAndAnImpossibleStatusIsRefused) {
  Upstream up([](const UpRequest& r, int fd) {
    if (r.line().find("/weird") != std::string::npos) {
      send_all(fd, "HTTP/1.1 600 Odd\r\nContent-Length: 4\r\n\r\nab");
      send_all(fd, "cd");
      return false;
    }
    return send_all(fd, ok(r.has("Host: h.test") ? "host" : "nohost"));
  });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send("GET /h HTTP/1.1\r\nHost: h.test\r\nConnection: Host\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "host");
  for (int i = 0; i < 3; ++i) {
    auto w = http_get(server.port(), "/weird");
    ASSERT_TRUE(w);
    EXPECT_EQ(w->status, 502);
  }
  auto after = http_get(server.port(), "/fine");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
}

// The body of a chunked message (no extensions, no trailers: ours).
std::string dechunk(std::string_view s) {
  std::string body;
  for (;;) {
    const size_t eol = s.find("\r\n");
    if (eol == std::string_view::npos) return body + "<cut>";
    const size_t n = std::stoul(std::string(s.substr(0, eol)), nullptr, 16);
    if (n == 0) return body;
    body.append(s.substr(eol + 2, n));
    s.remove_prefix(eol + 2 + n + 2);
  }
}

// RFC 9110 15.2: a 1xx has no content, so Content-Length or
// Transfer-Encoding on one is malformed; a status outside 100..599 is no
// status. Each is 502 at once (not a hang until timeout_ms, when the proxy
// process would be held and killed), and its connection is not reused.
TEST(Proxy, AnInterimResponseWithContentOrAStatusOutOfRangeIs502) {
  const std::map<std::string, std::string> answers = {
      {"/103-length", "HTTP/1.1 103 Early Hints\r\nContent-Length: 2\r\n\r\nok"},
      {"/199-length", "HTTP/1.1 199 X\r\nContent-Length: 2\r\n\r\nok"},
      {"/103-chunked", "HTTP/1.1 103 X\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
      {"/099", "HTTP/1.1 099 X\r\nContent-Length: 2\r\n\r\nok"},
      {"/600", "HTTP/1.1 600 X\r\nContent-Length: 2\r\n\r\nok"},
      {"/999", "HTTP/1.1 999 X\r\nContent-Length: 2\r\n\r\nok"},
  };
  Upstream up([&answers](const UpRequest& r, int fd) {
    for (const auto& [path, answer] : answers) {
      if (r.line().find(path + " ") != std::string::npos) {
        send_all(fd, answer);
        return true;  // then silence, the connection kept open
      }
    }
    if (r.line().find("/hints") != std::string::npos) {
      return send_all(fd, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok("fine"));
    }
    return send_all(fd, ok("fine"));
  });
  Server server(config({up.address()}, 1, {{"timeout_ms", 3000}}));
  ASSERT_TRUE(server.ready()) << server.log();
  const pid_t proxy = server.child("ringhttpd: service api g1 #0");
  for (const auto& [path, answer] : answers) {
    const auto began = Clock::now();
    auto r = http_get(server.port(), path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 502) << path;
    EXPECT_LT(Clock::now() - began, 1s) << path;
    auto fine = http_get(server.port(), "/fine");  // on a new upstream connection
    ASSERT_TRUE(fine) << path;
    EXPECT_EQ(fine->body, "fine") << path;
  }
  // A bad answer's connection is closed; each good one is kept, and taken
  // (then closed) by the next bad request.
  EXPECT_EQ(up.connections(), static_cast<int>(answers.size()) + 1);
  auto hints = http_get(server.port(), "/hints");  // an interim response done right
  ASSERT_TRUE(hints);
  EXPECT_EQ(hints->status, 200);
  EXPECT_EQ(hints->body, "fine");
  EXPECT_EQ(server.child("ringhttpd: service api g1 #0"), proxy) << server.log();
}

// A body that ends with the upstream's close (RFC 9112 6.3 rule 8: no
// Content-Length, not chunked; Python's http.server, HTTP/1.0 servers)
// arrives whole, framed as the network process decides (a length when it
// has it all at once, else chunked to HTTP/1.1, close-delimited to 1.0).
TEST(Proxy, ACloseDelimitedResponseComesWhole) {
  Upstream up([](const UpRequest& r, int fd) {
    if (r.line().find("/ten") != std::string::npos) {
      send_all(fd, "HTTP/1.0 200 OK\r\n\r\nten-body");
    } else {
      send_all(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-eof");
    }
    return false;  // then close
  });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  for (int i = 0; i < 40; ++i) {
    const bool ten = i % 2 == 0;
    const std::string want = ten ? "ten-body" : "until-eof";
    {
      Client c(server.port());
      ASSERT_TRUE(c.send(std::string("GET ") + (ten ? "/ten" : "/eof") +
                         " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
      auto all = c.read_until_close(5s);
      ASSERT_TRUE(all) << i;
      ASSERT_NE(all->find("200 OK"), std::string::npos) << i << *all;
      const std::string body = all->substr(all->find("\r\n\r\n") + 4);
      const bool chunked = all->find("Transfer-Encoding: chunked") != std::string::npos;
      EXPECT_EQ(chunked ? dechunk(body) : body, want) << i << *all;
    }
    Client c(server.port());
    ASSERT_TRUE(c.send(std::string("GET ") + (ten ? "/ten" : "/eof") + " HTTP/1.0\r\n\r\n"));
    auto all = c.read_until_close(5s);
    ASSERT_TRUE(all) << i;
    ASSERT_NE(all->find("200 OK"), std::string::npos) << i << *all;
    EXPECT_EQ(all->substr(all->find("\r\n\r\n") + 4), want) << i;
  }
}

// HTTP/1.1 requires Host (RFC 9112 3.2): a 1.0 client's request without one
// goes upstream with the upstream's own address, as nginx's $proxy_host.
TEST(Proxy, AnHttp10RequestWithoutHostGetsTheUpstreamAsHost) {
  Upstream up([](const UpRequest& r, int fd) {
    const size_t at = r.head.find("\r\nHost: ");
    const std::string host = at == std::string::npos
                                 ? "none"
                                 : r.head.substr(at + 8, r.head.find("\r\n", at + 2) - at - 8);
    return send_all(fd, ok(host));
  });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send("GET /h10 HTTP/1.0\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->body, up.address());
  EXPECT_EQ(up.last().head.find("X-Forwarded-Host"), std::string::npos) << up.last().head;
  Client d(server.port());  // the client's own Host is kept, once
  ASSERT_TRUE(d.send("GET /h10 HTTP/1.0\r\nHost: mine.test\r\n\r\n"));
  r = d.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "mine.test");
}

// An upstream that closes a kept-alive connection right after answering
// (with a length, without "Connection: close"): the next request, a POST
// that may not be sent twice, must not be put on that dead connection. Each
// reuse peeks first, so it goes on a new one. The answer and the FIN leave
// in one segment (held by MSG_MORE, pushed by the shutdown), so the proxy
// can never read the answer before the close is there to be seen: were they
// sent apart, a POST could go out in between, and no client may know of a
// close not yet made (RFC 9112 9.3.1; nginx answers 502 then too).
TEST(Proxy, AConnectionTheUpstreamClosedIsNotReusedForAPost) {
  Upstream up([](const UpRequest& r, int fd) {
    const std::string answer = ok(std::to_string(r.body.size()));
    ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_MORE);
    ::shutdown(fd, SHUT_WR);
    return false;  // then close
  });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(c.send("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"));
    auto r = c.read_response();
    ASSERT_TRUE(r) << i << server.log();
    EXPECT_EQ(r->status, 200) << i << r->body;
  }
  EXPECT_EQ(up.requests(), 30);
}

// RFC 9110 9.3.2 / 8.6: a HEAD answered chunked upstream has no known length,
// so the client gets no Content-Length (least of all 0), and the connection
// goes on.
TEST(Proxy, AHeadAnsweredChunkedGetsNoContentLength) {
  Upstream up([](const UpRequest& r, int fd) {
    if (r.line().starts_with("HEAD")) {
      return send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-H: 1\r\n\r\n");
    }
    return send_all(fd, ok("after"));
  });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send("HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto h = c.read_response(10s, true);
  ASSERT_TRUE(h) << server.log();
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(h->headers.count("content-length"), 0u);
  EXPECT_EQ(h->headers["x-h"], "1");
  ASSERT_TRUE(c.send("GET /g HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto g = c.read_response();
  ASSERT_TRUE(g);
  EXPECT_EQ(g->body, "after");
}

// Repeated field lines are one list (RFC 9110 5.3): every X-Forwarded-For
// and Forwarded line the client sent is kept, in order, before this hop's
// own entry; empty X-Forwarded-For elements (",,", a line "" or ",") are
// dropped.
TEST(Proxy, EveryXForwardedForAndForwardedLineIsKept) {
  Upstream up([](const UpRequest&, int fd) { return send_all(fd, ok("x")); });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(
      c.send("GET /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 9.9.9.9\r\n"
             "Forwarded: for=1.1.1.1\r\nX-Forwarded-For: 8.8.8.8,, 7.7.7.7 \r\n"
             "X-Forwarded-For:\r\nX-Forwarded-For: ,\r\nForwarded: for=2.2.2.2\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
  const UpRequest seen = up.last();
  EXPECT_TRUE(seen.has("X-Forwarded-For: 9.9.9.9, 8.8.8.8, 7.7.7.7, 127.0.0.1")) << seen.head;
  // Forwarded too (RFC 7239 4: one list), this hop's element last.
  EXPECT_TRUE(seen.has("Forwarded: for=1.1.1.1, for=2.2.2.2, for=127.0.0.1;host=a;proto=http"))
      << seen.head;
}

// A field name with an underscore never reaches the upstream (nginx's
// underscores_in_headers off): a CGI/WSGI/PHP-FPM application would read
// "X_Forwarded_For" as the X-Forwarded-For the proxy sets.
TEST(Proxy, FieldNamesWithAnUnderscoreAreDropped) {
  Upstream up([](const UpRequest&, int fd) { return send_all(fd, ok("x")); });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(
      c.send("GET /x HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 6.6.6.6\r\n"
             "Transfer_Encoding: chunked\r\nX-Real_IP: 5.5.5.5\r\nX-Kept: yes\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
  const UpRequest seen = up.last();
  EXPECT_EQ(seen.head.find('_'), std::string::npos) << seen.head;
  EXPECT_EQ(seen.head.find("6.6.6.6"), std::string::npos) << seen.head;
  EXPECT_TRUE(seen.has("X-Kept: yes")) << seen.head;
  EXPECT_TRUE(seen.has("X-Forwarded-For: 127.0.0.1")) << seen.head;
}

// The proxy decodes chunked and nothing else: any other transfer coding
// from an upstream (gzip before chunked, on one line or two, or alone and
// read to the close) would reach the client still encoded with nothing
// saying so. 502, as nginx; that connection is not used again.
TEST(Proxy, ATransferCodingOtherThanChunkedIs502) {
  Upstream up([](const UpRequest& r, int fd) {
    const std::string line = r.line();
    if (line.find("/gzip-chunked") != std::string::npos) {
      return send_all(fd,
                      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                      "5\r\nhello\r\n0\r\n\r\n");
    }
    if (line.find("/two-lines") != std::string::npos) {
      return send_all(fd,
                      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    }
    if (line.find("/gzip-eof") != std::string::npos) {
      send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello");
      return false;  // then close: the body would end with it
    }
    if (line.find("/chunked") != std::string::npos) {
      return send_all(fd,
                      "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
                      "5\r\nhello\r\n0\r\n\r\n");
    }
    return send_all(fd, ok("fine"));
  });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  const std::vector<std::string> bad = {"/gzip-chunked", "/two-lines", "/gzip-eof"};
  for (size_t i = 0; i < bad.size(); ++i) {
    const std::string& path = bad[i];
    auto r = http_get(server.port(), path);
    ASSERT_TRUE(r) << path << server.log();
    EXPECT_EQ(r->status, 502) << path << ": " << r->body;
    EXPECT_EQ(r->body.find("hello"), std::string::npos) << path;
    // The next request needs a new connection: the bad one was closed
    // (each bad request but the first took the previous good one's).
    auto fine = http_get(server.port(), "/fine");
    ASSERT_TRUE(fine) << path;
    EXPECT_EQ(fine->body, "fine") << path;
    EXPECT_EQ(up.connections(), static_cast<int>(i) + 2) << path;
  }
  auto chunked = http_get(server.port(), "/chunked");  // chunked alone, any case: decoded
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->status, 200);
  EXPECT_EQ(chunked->body, "hello");
}

// A chunked upstream body is decoded strictly (proto::ChunkedDecoder), not
// by llhttp, which takes any two bytes after chunk data as its CRLF and any
// byte after a CR as the LF. Broken framing is 502 (or a cut connection if
// the head already left), the connection is not reused, and what RFC 9112
// allows (BWS before ";", trailers) is decoded. Before, "helloXX" passed as
// a whole 200 and "5 ;x" was 502.
TEST(Proxy, BrokenChunkedFramingFromAnUpstreamIsRefusedAndValidFramingDecoded) {
  Upstream up([](const UpRequest& r, int fd) {
    const std::string line = r.line();
    const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    if (line.find("/two-bytes") != std::string::npos) {
      return send_all(fd, head + "5\r\nhelloXX0\r\n\r\n");
    }
    if (line.find("/cr-x") != std::string::npos)
      return send_all(fd, head + "5\rXhello\r\n0\r\n\r\n");
    if (line.find("/bare-lf") != std::string::npos) {
      return send_all(fd, head + "5\r\nhello\r\n0\r\nX: 1\n\r\n");
    }
    if (line.find("/bws") != std::string::npos) {
      return send_all(fd, head + "5 ;ext=1\r\nhello\r\n0 ; last\r\nX-Sum: 1\r\n\r\n");
    }
    return send_all(fd, ok("fine"));
  });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  const std::vector<std::string> bad = {"/two-bytes", "/cr-x", "/bare-lf"};
  for (size_t i = 0; i < bad.size(); ++i) {
    const std::string& path = bad[i];
    Client c(server.port());
    ASSERT_TRUE(c.send("GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto r = c.read_response(5s);
    if (r) {
      EXPECT_EQ(r->status, 502) << path << ": " << r->body;
    } else {
      EXPECT_TRUE(c.closed_by_peer(1s)) << path << ": a cut-off response must end its connection";
    }
    auto fine = http_get(server.port(), "/fine");
    ASSERT_TRUE(fine) << path;
    EXPECT_EQ(fine->body, "fine") << path;
    EXPECT_EQ(up.connections(), static_cast<int>(i) + 2) << path << ": the broken one was reused";
  }
  EXPECT_TRUE(server.wait_for_log("malformed chunked body", 5s)) << server.log();
  auto bws = http_get(server.port(), "/bws");
  ASSERT_TRUE(bws) << server.log();
  EXPECT_EQ(bws->status, 200);
  EXPECT_EQ(bws->body, "hello");
}

// An upstream's response head is held whole before it goes on: past 64 KiB
// it is 502, as the tunnel's, and the proxy's memory does not follow the
// upstream. Before, a 50 MB header grew the process by twice that, and the
// answer was 500.
TEST(Proxy, AResponseHeadPast64KiBIs502) {
  Upstream up([](const UpRequest& r, int fd) {
    if (r.line().find("/big") != std::string::npos) {
      // Just past the bound, and far past it.
      const size_t size = r.line().find("/big-just") != std::string::npos ? 66000 : 200 * 1024;
      const std::string value(size, 'a');
      send_all(fd, "HTTP/1.1 200 OK\r\nX-Big: " + value + "\r\nContent-Length: 2\r\n\r\nok");
      return false;
    }
    return send_all(fd, ok("fine", "X-Almost: " + std::string(60 * 1024, 'b') + "\r\n"));
  });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  for (const char* target : {"/big", "/big-just"}) {
    auto big = http_get(server.port(), target);
    ASSERT_TRUE(big) << server.log();
    EXPECT_EQ(big->status, 502) << target;
  }
  EXPECT_TRUE(server.wait_for_log("response head too large", 5s)) << server.log();
  auto fine = http_get(server.port(), "/fine");
  ASSERT_TRUE(fine) << server.log();
  EXPECT_EQ(fine->status, 200);
  EXPECT_EQ(fine->body, "fine");
}

// A head that fits the upstream's 64 KiB but not the ring as encoded (many
// short fields, at the smallest ring_bytes) is the upstream's fault: 502,
// not the 500 of a handler's mistake; so are an HTTP/1.0 response with
// Transfer-Encoding (RFC 9112 6.1: faulty framing, whatever follows it)
// and a Content-Length past 2^63 - 1, whatever the client's framing.
TEST(Proxy, HeadsTheRingCannotCarryOrWithFaultyFramingAre502) {
  Upstream up([](const UpRequest& r, int fd) {
    const std::string p = path_of(r);
    if (p == "/many") {
      std::string head = "HTTP/1.1 200 OK\r\n";
      for (int i = 0; i < 12000; ++i) head += "a:\r\n";  // 48 KB here, twice that encoded
      return send_all(fd, head + "Content-Length: 2\r\n\r\nok");
    }
    if (p == "/te10") {
      return send_all(fd,
                      "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: "
                      "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    }
    if (p == "/huge") {
      return send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\nok");
    }
    return send_all(fd, ok("fine"));
  });
  Server server(config({up.address()}, 1, {{"ring_bytes", 131072}}));
  ASSERT_TRUE(server.ready()) << server.log();
  for (const char* target : {"/many", "/te10", "/huge"}) {
    for (const char* connection : {"keep-alive", "close"}) {
      Client c(server.port());
      ASSERT_TRUE(c.send(std::string("GET ") + target +
                         " HTTP/1.1\r\nHost: t\r\nConnection: " + connection + "\r\n\r\n"));
      auto r = c.read_response(5s);
      ASSERT_TRUE(r) << target << server.log();
      EXPECT_EQ(r->status, 502) << target << " " << connection;
    }
  }
  EXPECT_TRUE(server.wait_for_log("response head too large for the ring", 5s)) << server.log();
  EXPECT_TRUE(server.wait_for_log("Transfer-Encoding in an HTTP/1.0 response", 5s));
  EXPECT_TRUE(server.wait_for_log("Content-Length out of range", 5s));
  auto fine = http_get(server.port(), "/fine");
  ASSERT_TRUE(fine) << server.log();
  EXPECT_EQ(fine->status, 200);
}

// A bare CR in an upstream's status line (llhttp's default, non-strict
// build takes any byte after the CR) would end the head there and pass its header lines on as body:
// 502, also when it is the final head after an interim one in the same
// read, or after an empty line. A 101 on this path (which asks for no
// switch) is 502 at once too. Valid interim heads still pass.
TEST(Proxy, ABareCrInAnUpstreamStatusLineIs502) {
  Upstream up([](const UpRequest& r, int fd) {
    const std::string tail = "Content-Length: 2\r\n\r\nok";
    if (r.line().find("/cr ") != std::string::npos) {
      send_all(fd, "HTTP/1.1 200 O\rK\r\n" + tail);
      return false;
    }
    if (r.line().find("/after-100 ") != std::string::npos) {
      send_all(fd, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 O\rK\r\n" + tail);
      return false;
    }
    if (r.line().find("/after-crlf ") != std::string::npos) {  // llhttp skips the empty line
      send_all(fd, "\r\nHTTP/1.1 200 O\rK\r\n" + tail);
      return false;
    }
    if (r.line().find("/switch ") != std::string::npos) {  // a switch nobody asked for
      return send_all(fd,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n"
                      "Connection: upgrade\r\n\r\n");  // and the connection stays
    }
    return send_all(fd, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n" + tail);
  });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  for (const char* target : {"/cr", "/after-100", "/after-crlf", "/switch"}) {
    auto r = http_get(server.port(), target);
    ASSERT_TRUE(r) << target << server.log();
    EXPECT_EQ(r->status, 502) << target << r->body;
  }
  auto fine = http_get(server.port(), "/fine");
  ASSERT_TRUE(fine) << server.log();
  EXPECT_EQ(fine->status, 200);
  EXPECT_EQ(fine->body, "ok");
}

// The config with network.request_timeout_ms set (the client's side).
std::string with_request_timeout(const std::string& cfg, int ms) {
  json j = json::parse(cfg);
  j["network"]["request_timeout_ms"] = ms;
  return j.dump();
}

// A request answered before its body ended (its upstream refuses: 502 at
// once) whose client then stops sending: its one answer went out, so the
// stall ends the connection with no 408 after it. A second response to one
// request would be taken by a pipelining client for its next one's.
TEST(Proxy, AStallAfterAnEarlyAnswerClosesWithoutASecondResponse) {
  int dead_port;
  {
    Upstream gone([](const UpRequest&, int) { return false; });
    dead_port = gone.port();
  }
  Server server(with_request_timeout(config({"127.0.0.1:" + std::to_string(dead_port)}), 300));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send("POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc"));
  auto r = c.read_response(5s);
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 502);
  EXPECT_TRUE(c.closed_by_peer(5s)) << "a second response followed the first";
}

// An upload the client stops sending is the client's stall, not the
// upstream's: the upstream waiting for the rest of the body is not timed
// out (no 504 blaming it); the client gets 408 at request_timeout_ms.
TEST(Proxy, AnUploadTheClientStallsGets408Not504) {
  Upstream up([](const UpRequest& r, int fd) { return send_all(fd, ok(r.body)); });
  Server server(
      with_request_timeout(config({up.address()}, 1, {{"response_timeout_ms", 200}}), 1000));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send("POST /stall HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc"));
  auto r = c.read_response(5s);
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 408) << r->body;
  EXPECT_FALSE(server.log().find("upstream timed out") != std::string::npos) << server.log();
}

// ---- pipeline > 1: GETs and HEADs behind others on a busy connection ----

// The tests below hold answers on purpose (to line requests up behind
// them): the upstream counts as fast however long its answers take, so
// pipelining goes on once a first answer is in (warm_up; AnswerPace,
// `pipeline_fast_ms`, has tests of its own here and in
// tests/unit/answer_pace_test.cc).
json pipelined(json extra = json::object()) {
  if (!extra.contains("pipeline")) extra["pipeline"] = 8;
  extra["pipeline_fast_ms"] = 3600000;
  return extra;
}

// One request to "/warm", answered 200: the upstream's pace is then known
// (before any answer, no request waits behind another). Its connection
// stays idle for the next request unless the upstream closes it.
bool warm_up(const Server& server) {
  const auto r = http_get(server.port(), "/warm");
  return r && r->status == 200;
}

// `n` clients each send one request at once; their answers, in client order.
std::vector<std::optional<Client::Response>> at_once(int port, const std::vector<std::string>& reqs,
                                                     const std::vector<bool>& head = {}) {
  std::vector<std::unique_ptr<Client>> clients;
  for (const std::string& r : reqs) {
    clients.push_back(std::make_unique<Client>(port));
    EXPECT_TRUE(clients.back()->send(r));
  }
  std::vector<std::optional<Client::Response>> out;
  for (size_t i = 0; i < clients.size(); ++i) {
    out.push_back(clients[i]->read_response(10s, i < head.size() && head[i]));
  }
  return out;
}

std::string get(const std::string& path) { return "GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n"; }

// The upstream holds its first answer on each connection, so the requests
// that come meanwhile wait behind it on that connection (up to 8), written
// together; each is answered in order and reaches its own client. A HEAD's
// answer has no body, a chunked one is decoded: the answers that follow on
// the connection are read from the right byte. A POST never waits behind
// others: it has a connection of its own.
TEST(Proxy, PipelinedRequestsShareAConnectionAndEachGetsItsOwnAnswer) {
  std::atomic<int> firsts{0};
  Upstream up([&](const UpRequest& r, int fd) {
    static thread_local int seen = 0;
    const std::string p = path_of(r);
    if (p != "/warm" && seen++ == 0) {
      ++firsts;
      std::this_thread::sleep_for(300ms);
    }
    if (r.line().starts_with("HEAD")) {
      return send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    }
    if (p == "/chunked") {
      return send_all(fd,
                      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\n/ch\r\n5\r\nunked\r\n0\r\n\r\n");
    }
    return send_all(fd, ok(p + (r.body.empty() ? "" : " " + r.body)));
  });
  Server server(config({up.address()}, 1, pipelined()));
  ASSERT_TRUE(server.ready()) << server.log();
  ASSERT_TRUE(warm_up(server)) << server.log();
  std::vector<std::string> reqs;
  std::vector<bool> head;
  for (int i = 0; i < 12; ++i) {
    reqs.push_back(i == 3 ? "HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n" : get("/r" + std::to_string(i)));
    head.push_back(i == 3);
  }
  reqs[5] = get("/chunked");
  reqs.push_back("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody");
  const auto answers = at_once(server.port(), reqs, head);
  for (size_t i = 0; i < answers.size(); ++i) {
    ASSERT_TRUE(answers[i]) << i << server.log();
    EXPECT_EQ(answers[i]->status, 200) << i;
  }
  EXPECT_EQ(answers[0]->body, "/r0");
  EXPECT_EQ(answers[3]->body, "");
  EXPECT_EQ(answers[3]->headers.at("content-length"), "5");
  EXPECT_EQ(answers[4]->body, "/r4");
  EXPECT_EQ(answers[6]->body, "/r6");
  EXPECT_EQ(answers[11]->body, "/r11");
  EXPECT_EQ(answers[12]->body, "/p body");
  // 12 GETs and HEADs: 8 on the first connection (the warm-up's), 4 on a
  // second; the POST on a third.
  EXPECT_EQ(up.requests(), 14);
  EXPECT_EQ(up.connections(), 3);
  // The chunked answer, decoded: it came whole, so it is sent on with a
  // Content-Length.
  EXPECT_EQ(answers[5]->body, "/chunked");
}

// Waits (up to 5 s) until the upstream has seen `n` requests.
void wait_requests(const Upstream& up, int n) {
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (up.requests() < n && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(1ms);
  }
}

// `n` requests at once, each answered with its path (`prefix` and its
// number), all 200.
void round_of(const Server& server, const std::string& prefix, int n = 4) {
  std::vector<std::string> reqs;
  for (int i = 0; i < n; ++i) reqs.push_back(get(prefix + std::to_string(i)));
  const auto answers = at_once(server.port(), reqs);
  for (size_t i = 0; i < answers.size(); ++i) {
    ASSERT_TRUE(answers[i]) << prefix << i << server.log();
    EXPECT_EQ(answers[i]->status, 200);
    EXPECT_EQ(answers[i]->body, prefix + std::to_string(i));
  }
}

// Before any answer, nothing is known of the upstream: requests that come
// at once each take a connection of their own, as with `pipeline` 1 (a
// cold burst to a slow upstream would otherwise wait 8 deep), whatever
// `pipeline_fast_ms` says.
TEST(Proxy, BeforeAFirstAnswerNoRequestWaitsBehindAnother) {
  Upstream up([](const UpRequest& r, int fd) {
    std::this_thread::sleep_for(100ms);
    return send_all(fd, ok(path_of(r)));
  });
  Server server(config({up.address()}, 1, pipelined()));
  ASSERT_TRUE(server.ready()) << server.log();
  round_of(server, "/a");
  EXPECT_EQ(up.connections(), 4);
  EXPECT_EQ(up.requests(), 4);
}

// `pipeline_fast_ms`: once the upstream's answers come slowly, a request
// no longer waits behind another's answer; it takes an idle connection or
// a new one. (30 ms, not the default 5: the requests of a round reach the
// proxy within it even on a busy machine. One answer of 300 ms makes the
// mean 37.5 ms.)
TEST(Proxy, AnUpstreamWhoseAnswersComeSlowlyIsNoLongerPipelinedTo) {
  Upstream up([](const UpRequest& r, int fd) {
    if (path_of(r) != "/warm") std::this_thread::sleep_for(300ms);
    return send_all(fd, ok(path_of(r)));
  });
  Server server(config({up.address()}, 1, {{"pipeline", 8}, {"pipeline_fast_ms", 30}}));
  ASSERT_TRUE(server.ready()) << server.log();
  ASSERT_TRUE(warm_up(server)) << server.log();  // answered at once: fast
  round_of(server, "/a");                        // all 4 on the warm-up's connection
  EXPECT_EQ(up.connections(), 1);
  round_of(server, "/b");  // each on a connection of its own: the idle one and 3 new
  EXPECT_EQ(up.connections(), 4);
  EXPECT_EQ(up.requests(), 9);
}

// A fast upstream that turns slow: a request that comes while the front
// request of a connection has waited `pipeline_fast_ms` for its answer
// does not join it, though the answers before came at once (the mean does
// not know yet).
TEST(Proxy, AConnectionWhoseFrontRequestHasWaitedLongIsNotJoined) {
  Upstream up([](const UpRequest& r, int fd) {
    if (path_of(r) == "/held") std::this_thread::sleep_for(1s);
    return send_all(fd, ok(path_of(r)));
  });
  Server server(config({up.address()}, 1, {{"pipeline", 8}, {"pipeline_fast_ms", 50}}));
  ASSERT_TRUE(server.ready()) << server.log();
  ASSERT_TRUE(warm_up(server)) << server.log();
  Client held(server.port());
  ASSERT_TRUE(held.send(get("/held")));
  wait_requests(up, 2);
  ASSERT_EQ(up.requests(), 2) << server.log();
  std::this_thread::sleep_for(100ms);  // the front's wait passes the bound (50 ms)
  const auto after = http_get(server.port(), "/after");
  ASSERT_TRUE(after) << server.log();
  EXPECT_EQ(after->body, "/after");
  EXPECT_EQ(up.connections(), 2);  // not behind /held: a connection of its own
  const auto r = held.read_response(5s);
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->body, "/held");
}

// A reset is not an end: only an orderly close ends a body without a
// length (RFC 9112 6.3, rule 8). Once part of such a body has reached the
// client, a reset cuts the client's connection, with no last chunk (as
// nginx does); pipelined or not, on an upstream connection kept alive from
// the request before.
TEST(Proxy, AResetEndsNoCloseDelimitedResponse) {
  for (const json& extra : {json::object(), pipelined()}) {
    std::atomic<bool> part_arrived{false};
    Upstream up([&](const UpRequest& r, int fd) {
      if (path_of(r) == "/warm") return send_all(fd, ok("warm"));
      send_all(fd, "HTTP/1.1 200 OK\r\n\r\npart-of-it");
      const auto until = std::chrono::steady_clock::now() + 5s;
      while (!part_arrived && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(1ms);
      }
      const linger reset{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
      return false;  // closed: a reset
    });
    Server server(config({up.address()}, 1, extra));
    ASSERT_TRUE(server.ready()) << server.log();
    ASSERT_TRUE(warm_up(server)) << server.log();
    Client c(server.port());
    ASSERT_TRUE(c.send(get("/cut")));
    std::string got;
    char buf[4096];
    pollfd pfd{c.fd(), POLLIN, 0};
    while (got.find("part-of-it") == std::string::npos && ::poll(&pfd, 1, 5000) == 1) {
      const ssize_t n = ::recv(c.fd(), buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    ASSERT_NE(got.find("part-of-it"), std::string::npos) << got << server.log();
    part_arrived = true;
    auto rest = c.read_until_close(5s);
    ASSERT_TRUE(rest) << extra << server.log();
    got += *rest;
    EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
    EXPECT_EQ(got.find("\r\n0\r\n\r\n"), std::string::npos) << got;
    EXPECT_TRUE(server.wait_for_log("connection reset during the response", 5s)) << server.log();
  }
}

// An upstream that ends a connection after one answer, saying so
// ("Connection: close") or not: the requests waiting behind that answer
// are sent again on new connections, and every client gets its own
// answer (none a 502).
TEST(Proxy, PipelinedRequestsBehindAClosedConnectionAreSentAgain) {
  for (const bool say_so : {true, false}) {
    Upstream up([&](const UpRequest& r, int fd) {
      std::this_thread::sleep_for(50ms);
      send_all(fd, ok(path_of(r), say_so ? "Connection: close\r\n" : ""));
      return false;
    });
    Server server(config({up.address()}, 1, pipelined()));
    ASSERT_TRUE(server.ready()) << server.log();
    ASSERT_TRUE(warm_up(server)) << server.log();
    std::vector<std::string> reqs;
    for (int i = 0; i < 6; ++i) reqs.push_back(get("/c" + std::to_string(i)));
    const auto answers = at_once(server.port(), reqs);
    for (size_t i = 0; i < answers.size(); ++i) {
      ASSERT_TRUE(answers[i]) << say_so << " " << i << server.log();
      EXPECT_EQ(answers[i]->status, 200) << say_so << " " << i;
      EXPECT_EQ(answers[i]->body, "/c" + std::to_string(i)) << say_so;
    }
    EXPECT_GE(up.connections(), 6) << say_so;
  }
}

// An upstream that ends every connection after one answer (as it may),
// under many requests at once: each request sent again goes first in line
// on a connection of its own, so every one is answered (none a 502), and
// none reaches the upstream more than three times.
// Answers each request with its path, then closes the connection; counts
// the requests it read, by path.
struct ClosingUpstream {
  std::mutex mu;
  std::map<std::string, int> sends;
  Upstream up{[this](const UpRequest& r, int fd) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ++sends[path_of(r)];
    }
    std::this_thread::sleep_for(5ms);
    send_all(fd, ok(path_of(r), "Connection: close\r\n"));
    return false;
  }};  // last: stops first
  void expect_sent_at_most(int times) {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [path, n] : sends) EXPECT_LE(n, times) << path;
  }
};

TEST(Proxy, PipelinedRequestsToAnUpstreamThatClosesAfterEachAnswerAreAllAnswered) {
  ClosingUpstream up;
  Server server(config({up.up.address()}, 1, pipelined({{"pipeline", 2}})));
  ASSERT_TRUE(server.ready()) << server.log();
  ASSERT_TRUE(warm_up(server)) << server.log();
  std::vector<std::string> reqs;
  for (int i = 0; i < 48; ++i) reqs.push_back(get("/m" + std::to_string(i)));
  const auto answers = at_once(server.port(), reqs);
  for (size_t i = 0; i < answers.size(); ++i) {
    ASSERT_TRUE(answers[i]) << i << server.log();
    EXPECT_EQ(answers[i]->status, 200) << i << " " << answers[i]->body;
    EXPECT_EQ(answers[i]->body, "/m" + std::to_string(i));
  }
  up.expect_sent_at_most(3);
}

// A client that leaves while its request waits on a shared connection, and
// a front request the upstream never answers (504 at response_timeout_ms):
// the connection is given up (the answer would still come on it), and the
// requests behind are sent again and answered.
TEST(Proxy, APipelinedRequestThatEndsEarlyCostsTheOthersNothing) {
  Upstream up([&](const UpRequest& r, int fd) {
    const std::string p = path_of(r);
    if (p == "/never") {  // no answer; what follows on the connection is read, unanswered
      char sink[4096];
      while (::recv(fd, sink, sizeof sink, 0) > 0) {
      }
      return false;
    }
    std::this_thread::sleep_for(100ms);
    return send_all(fd, ok(p));
  });
  Server server(config({up.address()}, 1, pipelined({{"response_timeout_ms", 400}})));
  ASSERT_TRUE(server.ready()) << server.log();
  ASSERT_TRUE(warm_up(server)) << server.log();
  {
    Client first(server.port());
    ASSERT_TRUE(first.send(get("/a")));
    auto leaving = std::make_unique<Client>(server.port());
    ASSERT_TRUE(leaving->send(get("/b")));
    Client last(server.port());
    ASSERT_TRUE(last.send(get("/c")));
    // The first is with the upstream (held 100 ms): the others wait behind it.
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (up.requests() < 2 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(1ms);
    }
    const linger reset{1, 0};  // gone (a FIN alone would still be answered)
    ::setsockopt(leaving->fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    leaving.reset();
    for (Client* c : {&first, &last}) {
      auto r = c->read_response(5s);
      ASSERT_TRUE(r) << server.log();
      EXPECT_EQ(r->status, 200);
    }
  }
  Client stuck(server.port());
  ASSERT_TRUE(stuck.send(get("/never")));
  Client behind(server.port());
  ASSERT_TRUE(behind.send(get("/after")));
  auto r = stuck.read_response(5s);
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 504);
  auto b = behind.read_response(5s);
  ASSERT_TRUE(b) << server.log();
  EXPECT_EQ(b->status, 200);
  EXPECT_EQ(b->body, "/after");
}

// A client that leaves while its request waits behind one whose answer is
// under way: that answer is read to its end and reaches its client whole;
// the request behind the leaver goes on another connection meanwhile (the
// shared one carries nothing after the answer under way).
TEST(Proxy, APipelinedRequestLeavingBehindAnAnswerUnderWayLetsItFinish) {
  std::atomic<bool> behind_written{false};
  std::atomic<bool> c_seen{false};
  const auto wait_for = [](const std::atomic<bool>& flag) {
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (!flag && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
    return flag.load();
  };
  Upstream up([&](const UpRequest& r, int fd) {
    const std::string p = path_of(r);
    if (p != "/slow") {
      if (p == "/c") c_seen = true;
      return send_all(fd, ok(p));
    }
    if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")) return false;
    pollfd pfd{fd, POLLIN, 0};
    behind_written = ::poll(&pfd, 1, 5000) == 1;  // the request behind came on this connection
    wait_for(c_seen);
    return send_all(fd, "world");
  });
  Server server(config({up.address()}, 1, pipelined()));
  ASSERT_TRUE(server.ready()) << server.log();
  ASSERT_TRUE(warm_up(server)) << server.log();
  Client first(server.port());
  ASSERT_TRUE(first.send(get("/slow")));
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (up.requests() < 2 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(1ms);
  }
  auto leaving = std::make_unique<Client>(server.port());
  ASSERT_TRUE(leaving->send(get("/b")));
  ASSERT_TRUE(wait_for(behind_written)) << server.log();
  Client last(server.port());
  ASSERT_TRUE(last.send(get("/c")));
  const linger reset{1, 0};  // closed with a reset: gone, not just done sending
  ::setsockopt(leaving->fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  leaving.reset();
  auto c = last.read_response(5s);
  ASSERT_TRUE(c) << server.log();
  EXPECT_EQ(c->status, 200);
  EXPECT_EQ(c->body, "/c");
  auto a = first.read_response(5s);
  ASSERT_TRUE(a) << server.log();
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->body, "helloworld");
  EXPECT_EQ(up.connections(), 2);
}

// A client leaving from the middle of a shared connection: the requests
// before it are still answered there (sent once), the ones behind it go
// on another connection.
TEST(Proxy, APipelinedRequestLeavingFromTheMiddleLetsThoseBeforeItBeAnswered) {
  std::mutex mu;
  std::map<std::string, int> sends;
  std::atomic<bool> queued{false};
  const auto count = [&](const std::string& path) {
    std::lock_guard<std::mutex> lock(mu);
    return sends[path];
  };
  Upstream up([&](const UpRequest& r, int fd) {
    const std::string p = path_of(r);
    {
      std::lock_guard<std::mutex> lock(mu);
      ++sends[p];
    }
    if (p == "/f") {
      // Holds its answer until /x, /y and /z are behind it on this
      // connection and /z has come again on another (the leave was seen).
      const auto until = std::chrono::steady_clock::now() + 5s;
      char peek[4096];
      while (std::chrono::steady_clock::now() < until) {
        const ssize_t n = ::recv(fd, peek, sizeof peek, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0 && std::string_view(peek, static_cast<size_t>(n)).find("GET /z ") !=
                         std::string_view::npos) {
          break;
        }
        std::this_thread::sleep_for(1ms);
      }
      queued = true;
      while (count("/z") < 1 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(1ms);
      }
    }
    return send_all(fd, ok(p));
  });
  Server server(config({up.address()}, 1, pipelined()));
  ASSERT_TRUE(server.ready()) << server.log();
  ASSERT_TRUE(warm_up(server)) << server.log();
  Client f(server.port());
  ASSERT_TRUE(f.send(get("/f")));
  wait_requests(up, 2);
  Client x(server.port());
  ASSERT_TRUE(x.send(get("/x")));
  auto y = std::make_unique<Client>(server.port());
  ASSERT_TRUE(y->send(get("/y")));
  Client z(server.port());
  ASSERT_TRUE(z.send(get("/z")));
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!queued && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(queued);
  const linger reset{1, 0};
  ::setsockopt(y->fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  y.reset();
  for (auto [c, path] : {std::pair<Client*, std::string>{&f, "/f"}, {&x, "/x"}, {&z, "/z"}}) {
    auto r = c->read_response(10s);
    ASSERT_TRUE(r) << path << server.log();
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->body, path);
  }
  EXPECT_EQ(count("/x"), 1);
}

// A request that waited behind one the upstream never answers goes again
// when that one times out (here onto an idle connection, so its clock
// starts at once), with a clock of its own: it gets the proxy's 504 at
// response_timeout_ms too, not the network process's at timeout_ms.
TEST(Proxy, APipelinedRequestSentAgainHasItsOwnTimer) {
  Upstream up([](const UpRequest& r, int fd) {
    if (path_of(r).starts_with("/warm")) {
      std::this_thread::sleep_for(50ms);
      return send_all(fd, ok("warm"));
    }
    char sink[4096];
    while (::recv(fd, sink, sizeof sink, 0) > 0) {
    }
    return false;
  });
  Server server(config({up.address()}, 1, pipelined({{"response_timeout_ms", 300}})));
  ASSERT_TRUE(server.ready()) << server.log();
  ASSERT_TRUE(warm_up(server)) << server.log();
  // 9 at once: two connections (8 on the warm-up's and 1), both idle afterwards.
  for (const auto& r : at_once(server.port(), std::vector<std::string>(9, get("/warm")))) {
    ASSERT_TRUE(r) << server.log();
  }
  ASSERT_EQ(up.connections(), 2);
  Client first(server.port());
  ASSERT_TRUE(first.send(get("/a")));
  wait_requests(up, 11);
  Client second(server.port());
  ASSERT_TRUE(second.send(get("/b")));
  for (Client* c : {&first, &second}) {
    auto r = c->read_response(10s);
    ASSERT_TRUE(r) << server.log();
    EXPECT_EQ(r->status, 504);
    EXPECT_NE(r->body.find("(upstream timed out)"), std::string::npos) << r->body;
  }
}

// A client that does not read its large answer holds no one else: a
// request that joined its connection goes elsewhere once that answer waits
// on its client, and one that comes later does not join it.
TEST(Proxy, APipelinedAnswerWaitingOnItsClientHoldsNoOneElse) {
  const std::string big(8 << 20, 'x');
  Upstream up([&](const UpRequest& r, int fd) {
    return send_all(fd, ok(path_of(r) == "/big" ? big : path_of(r)));
  });
  Server server(config({up.address()}, 1, pipelined({{"timeout_ms", 3000}})));
  ASSERT_TRUE(server.ready()) << server.log();
  ASSERT_TRUE(warm_up(server)) << server.log();
  Client slow(server.port(), 4096);
  ASSERT_TRUE(slow.send(get("/big")));
  wait_requests(up, 2);
  for (const std::string path : {"/b", "/c"}) {
    Client c(server.port());
    ASSERT_TRUE(c.send(get(path)));
    auto r = c.read_response(10s);
    ASSERT_TRUE(r) << server.log();
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->body, path);
  }
  auto r = slow.read_response(10s);
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body.size(), big.size());
}

// A request on which the upstream closes the connection without an answer
// is sent twice at most, however many idle connections there are to try
// it on (then 502), as without pipelining.
TEST(Proxy, APipelinedRequestThatKillsItsConnectionIsSentTwiceAtMost) {
  std::atomic<int> crashes{0};
  Upstream up([&](const UpRequest& r, int fd) {
    if (path_of(r) == "/crash") {
      ++crashes;
      return false;
    }
    std::this_thread::sleep_for(50ms);
    return send_all(fd, ok(path_of(r)));
  });
  Server server(config({up.address()}, 1, pipelined()));
  ASSERT_TRUE(server.ready()) << server.log();
  ASSERT_TRUE(warm_up(server)) << server.log();
  // 16 at once: two connections of 8 (one the warm-up's), both idle afterwards.
  std::vector<std::string> reqs;
  for (int i = 0; i < 16; ++i) reqs.push_back(get("/w" + std::to_string(i)));
  for (const auto& r : at_once(server.port(), reqs)) {
    ASSERT_TRUE(r) << server.log();
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_GE(up.connections(), 2);
  auto r = http_get(server.port(), "/crash");
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 502);
  EXPECT_EQ(crashes, 2);
}

// A StuckListener that answers one request first, so the proxy knows its
// pace and pipelines to it, and then has its accept queue filled.
struct FullQueue : StuckListener {
  // Answers the first request that comes while `ask` runs (200, then the
  // connection closes), then fills the queue. False if none came.
  bool warm_up_then_fill(const std::function<void()>& ask) {
    std::atomic<bool> served{false};
    std::thread answerer([&] {
      pollfd pfd{fd(), POLLIN, 0};
      if (::poll(&pfd, 1, 5000) != 1) return;
      const proto::UniqueFd c(::accept4(fd(), nullptr, nullptr, SOCK_CLOEXEC));
      const timeval bound{5, 0};  // a proxy that connects and sends nothing holds no one
      if (c) ::setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
      std::string buf;
      char tmp[4096];
      while (c && buf.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::recv(c.get(), tmp, sizeof tmp, 0);
        if (n <= 0) return;
        buf.append(tmp, static_cast<size_t>(n));
      }
      served = c && send_all(c.get(), ok("warm", "Connection: close\r\n"));
    });
    ask();
    answerer.join();
    fill();
    return served;
  }
};

// A connect that never completes (the upstream's accept queue is full, so
// its SYNs are dropped): every request waiting on it gets 504 when it
// times out, together, as each would on a connection of its own.
TEST(Proxy, PipelinedRequestsWaitingOnAConnectThatTimesOutAllGet504Together) {
  FullQueue up;
  ASSERT_GT(up.port(), 0);
  Server server(config({"127.0.0.1:" + std::to_string(up.port())}, 1, pipelined()));
  ASSERT_TRUE(server.ready()) << server.log();
  ASSERT_TRUE(up.warm_up_then_fill([&] { EXPECT_TRUE(warm_up(server)); })) << server.log();
  std::vector<std::string> reqs;
  for (int i = 0; i < 8; ++i) reqs.push_back(get("/q" + std::to_string(i)));
  const auto began = Clock::now();
  for (const auto& r : at_once(server.port(), reqs)) {
    ASSERT_TRUE(r) << server.log();
    EXPECT_EQ(r->status, 504);
    EXPECT_NE(r->body.find("connect timed out"), std::string::npos) << r->body;
  }
  // One connect_timeout_ms (500) for all, not one after another (4 s).
  EXPECT_LT(Clock::now() - began, 2s);
}

// A connect that timed out sent nothing, so the request goes to the next
// upstream (as nginx's proxy_next_upstream timeout), pipelined or not, and
// the one that timed out rests; with no other upstream, 504 (above).
TEST(Proxy, AConnectThatTimesOutGoesToTheNextUpstream) {
  for (const json& extra : {json::object(), pipelined()}) {
    StuckListener stuck;
    ASSERT_GT(stuck.port(), 0);
    stuck.fill();
    Upstream up([](const UpRequest& r, int fd) { return send_all(fd, ok(path_of(r))); });
    // Round robin starts with the first: the stuck one.
    Server server(config({stuck.address(), up.address()}, 1, extra));
    ASSERT_TRUE(server.ready()) << server.log();
    for (int i = 0; i < 4; ++i) {
      const std::string path = "/r" + std::to_string(i);
      auto r = http_get(server.port(), path);
      ASSERT_TRUE(r) << extra << server.log();
      EXPECT_EQ(r->status, 200) << extra << " " << i << " " << r->body;
      EXPECT_EQ(r->body, path) << extra;
    }
    EXPECT_TRUE(server.wait_for_log("connect timed out; passed over", 5s)) << server.log();
  }
}

// Connections from the proxy to `port` still connecting (SYN_SENT in
// /proc/net/tcp).
int connecting_to(int port) {
  char remote[16];
  std::snprintf(remote, sizeof remote, "0100007F:%04X", port);
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // the column names
  int n = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, l, r, state;
    fields >> slot >> l >> r >> state;
    if (r == remote && state == "02") ++n;
  }
  return n;
}

// Pipelined requests sent again (their connection closed before their
// answer) onto a connection whose connect then fails: they go to the other
// upstream and are all answered, none sent more than three times. Upstream
// a answers each request and closes; b's accept queue is full (its SYNs
// wait) until its listener closes, so the connects waiting there fail at
// their next SYN (refused, found by epoll: close_pipe with failed_connect).
// (Whether such a request keeps its place first in line there is not seen
// from outside: behind another, it is sent once more at most, and still
// answered.)
TEST(Proxy, PipelinedRequestsSentAgainOntoAFailedConnectAreAllAnswered) {
  ClosingUpstream a;
  FullQueue b;
  ASSERT_GT(b.port(), 0);
  Server server(config({a.up.address(), "127.0.0.1:" + std::to_string(b.port())}, 1,
                       pipelined({{"pipeline", 2}, {"connect_timeout_ms", 5000}})));
  ASSERT_TRUE(server.ready()) << server.log();
  // Round robin: one warm-up each.
  ASSERT_TRUE(b.warm_up_then_fill([&] {
    EXPECT_TRUE(warm_up(server));
    EXPECT_TRUE(warm_up(server));
  })) << server.log();
  const int base = connecting_to(b.port());  // the fillers not in the queue
  // b refuses once connects wait on it (they are then past their first SYN).
  std::thread closer([&] {
    const auto until = Clock::now() + 5s;
    while (connecting_to(b.port()) <= base && Clock::now() < until) {
      std::this_thread::sleep_for(1ms);
    }
    b.close();
  });
  std::vector<std::string> reqs;
  for (int i = 0; i < 48; ++i) reqs.push_back(get("/k" + std::to_string(i)));
  const auto answers = at_once(server.port(), reqs);
  closer.join();
  for (size_t i = 0; i < answers.size(); ++i) {
    ASSERT_TRUE(answers[i]) << i << server.log();
    EXPECT_EQ(answers[i]->status, 200) << i << " " << answers[i]->body;
    EXPECT_EQ(answers[i]->body, "/k" + std::to_string(i));
  }
  EXPECT_TRUE(server.wait_for_log("127.0.0.1:" + std::to_string(b.port()) + ": connect failed", 1s))
      << server.log();
  a.expect_sent_at_most(3);
}

// Requests cut from a connection before they went out are taken back: the
// upstream never sees them there. The connect waits (the upstream's accept
// queue is full, so its SYNs are dropped until there is room) while /y and
// /z join it; /y's client leaves, so /z goes on a connection of its own,
// and only /f is written on the first when it connects.
TEST(Proxy, RequestsCutFromAConnectionBeforeTheyWentOutAreNeverSentOnIt) {
  FullQueue up;
  ASSERT_GT(up.port(), 0);
  const int port = up.port();
  std::mutex mu;
  std::map<std::string, int> seen;
  std::vector<std::thread> served;
  Server server(
      config({"127.0.0.1:" + std::to_string(port)}, 1, pipelined({{"connect_timeout_ms", 4000}})));
  ASSERT_TRUE(server.ready()) << server.log();
  ASSERT_TRUE(up.warm_up_then_fill([&] { EXPECT_TRUE(warm_up(server)); })) << server.log();
  const int base = connecting_to(port);  // the fillers not in the queue
  const auto wait = [](const std::function<bool()>& done) {
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (!done() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
    return done();
  };
  Client f(server.port());
  ASSERT_TRUE(f.send(get("/f")));
  ASSERT_TRUE(wait([&] { return connecting_to(port) == base + 1; }));
  // /y is read (and so queued: one network process, one ring, in order)
  // before /z is sent, so /z is behind /y on the connection.
  auto y = std::make_unique<Client>(server.port());
  ASSERT_TRUE(y->send(get("/y")));
  ASSERT_TRUE(wait_server_read_all(server.port(), y->local_port(), 5s));
  Client z(server.port());
  ASSERT_TRUE(z.send(get("/z")));
  ASSERT_TRUE(wait_server_read_all(server.port(), z.local_port(), 5s));
  const linger reset{1, 0};
  ::setsockopt(y->fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  y.reset();
  // /z, sent again, dials a connection of its own.
  ASSERT_TRUE(wait([&] { return connecting_to(port) == base + 2; })) << server.log();
  // Room in the queue: the SYNs sent again get through; each connection's
  // requests are answered and recorded.
  std::thread acceptor([&] {
    for (;;) {
      const int c = ::accept4(up.fd(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      served.emplace_back([&, c] {
        std::string buf;
        char tmp[4096];
        for (ssize_t n; (n = ::recv(c, tmp, sizeof tmp, 0)) > 0;) {
          buf.append(tmp, static_cast<size_t>(n));
          for (size_t end; (end = buf.find("\r\n\r\n")) != std::string::npos;) {
            const std::string line = buf.substr(0, buf.find("\r\n"));
            const std::string path = line.substr(4, line.rfind(' ') - 4);
            buf.erase(0, end + 4);
            {
              std::lock_guard<std::mutex> lock(mu);
              ++seen[path];
            }
            send_all(c, ok(path));
          }
        }
        ::close(c);
      });
    }
  });
  up.unfill();
  for (auto [c, path] : {std::pair<Client*, std::string>{&f, "/f"}, {&z, "/z"}}) {
    auto r = c->read_response(10s);
    EXPECT_TRUE(r) << path << server.log();
    if (r) {
      EXPECT_EQ(r->body, path);
    }
  }
  server.stop(SIGTERM);
  ::shutdown(up.fd(), SHUT_RDWR);
  acceptor.join();
  for (auto& t : served) t.join();
  EXPECT_EQ(seen["/f"], 1);
  EXPECT_EQ(seen["/z"], 1);
  EXPECT_EQ(seen.count("/y"), 0u);
}

// nginx as the upstream, when it is installed (Debian: nginx-light):
// requests and a large body through it, over kept-alive connections.
TEST(Proxy, InFrontOfNginx) {
  if (::access("/usr/sbin/nginx", X_OK) != 0) GTEST_SKIP() << "nginx is not installed";
  char dir_template[] = "/tmp/rh-nginx-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  ::chmod(dir.c_str(), 0755);  // nginx's workers run as another user when we are root
  int port;
  {
    Upstream probe([](const UpRequest&, int) { return false; });
    port = probe.port();  // free a moment ago; nginx binds it below
  }
  {
    std::ofstream big(dir + "/big.bin");
    big << std::string(3 << 20, 'n');
    big.close();
    ::chmod((dir + "/big.bin").c_str(), 0644);
    std::ofstream conf(dir + "/nginx.conf");
    conf << "worker_processes 1; daemon off; pid " << dir << "/nginx.pid; error_log " << dir
         << "/error.log;\nevents { worker_connections 256; }\nhttp { access_log off;"
         << " server { listen 127.0.0.1:" << port << "; root " << dir << ";"
         << " location = /hello { return 200 \"hello from nginx\\n\"; } } }\n";
  }
  const pid_t nginx = ::fork();
  if (nginx == 0) {
    ::execl("/usr/sbin/nginx", "nginx", "-c", (dir + "/nginx.conf").c_str(), "-p",
            (dir + "/").c_str(), "-e", (dir + "/error.log").c_str(), nullptr);
    ::_exit(127);
  }
  Server server(config({"127.0.0.1:" + std::to_string(port)}));
  ASSERT_TRUE(server.ready()) << server.log();
  std::optional<Client::Response> r;
  const auto until = Clock::now() + 5s;  // nginx may still be starting
  while (Clock::now() < until) {
    r = http_get(server.port(), "/hello");
    if (r && r->status == 200) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello from nginx\n");
  Client c(server.port());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(c.send("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto b = c.read_response(10s);
    ASSERT_TRUE(b) << i;
    EXPECT_EQ(b->status, 200);
    EXPECT_EQ(b->body.size(), size_t{3} << 20);
  }
  ::kill(nginx, SIGQUIT);
  int status = 0;
  ::waitpid(nginx, &status, 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ringhttpd::testing
