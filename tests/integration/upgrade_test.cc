// Connections taken over by the proxy (upgrades) through the real binary,
// against an upstream the test runs on loopback (a thread per connection):
// one that answers 101 and then echoes, one that answers 200 instead, one
// that refuses. Checks the WebSocket-style exchange both ways, the bytes
// the client sent right after its head, large transfers through one tunnel
// with a slow reader (the proxy's memory stays bounded), half-close, the
// idle timeout, 200 tunnels in one proxy process (and its gauge), a plain
// request on the same route, a tunnel closed with the process that held it,
// one that lives on across a reload, and a graceful stop.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/integration/server_harness.h"

namespace ringhttpd::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr std::string_view k101 =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

bool send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// One accepted upstream connection: its request head and what came after.
struct UpConn {
  int fd;
  std::string head;
  std::string rest;  // bytes after the head, read with it
};
using Behavior = std::function<void(UpConn&)>;

// 101, then every byte back as it comes; at the client's EOF, "<eof>" and
// the upstream's own close.
void echo_101(UpConn& c) {
  if (!send_all(c.fd, k101) || !send_all(c.fd, c.rest)) return;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (!send_all(c.fd, std::string_view(buf, static_cast<size_t>(n)))) return;
  }
  send_all(c.fd, "<eof>");
}

// Sends `answer`, then keeps the connection open, reading until the proxy
// closes it.
Behavior answers_and_stays(std::string answer) {
  return [answer = std::move(answer)](UpConn& c) {
    send_all(c.fd, answer);
    char b;
    while (::recv(c.fd, &b, 1, 0) > 0) {
    }
  };
}

// An upstream of the test's own (a LoopbackListener): each connection's
// head is read and the connection given to the Behavior.
class WsUpstream {
 public:
  explicit WsUpstream(Behavior behavior) : behavior_(std::move(behavior)) {}
  std::string address() const { return listener_.address(); }
  int port() const { return listener_.port(); }
  int connections() const { return listener_.connections(); }
  int closed() const { return listener_.closed(); }
  std::string last_head() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_head_;
  }
  // Waits until `n` connections have ended on this side.
  bool wait_closed(int n, std::chrono::milliseconds timeout) {
    const auto end = Clock::now() + timeout;
    while (closed() < n && Clock::now() < end) std::this_thread::sleep_for(5ms);
    return closed() >= n;
  }

 private:
  void serve(int c) {
    UpConn conn{c, {}, {}};
    std::string buf;
    char tmp[65536];
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
      if (n <= 0) return;
      buf.append(tmp, static_cast<size_t>(n));
    }
    conn.head = buf.substr(0, end + 2);
    conn.rest = buf.substr(end + 4);
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_head_ = conn.head;
    }
    behavior_(conn);
  }

  Behavior behavior_;
  std::mutex mu_;
  std::string last_head_;
  LoopbackListener listener_{[this](int fd) { serve(fd); }};  // last: stops first
};

// A raw client connection: bytes in, bytes out, with deadlines.
class Raw {
 public:
  explicit Raw(int port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~Raw() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }
  bool send(std::string_view s) { return send_all(fd_, s); }
  // Reads until `n` bytes are buffered (false at EOF or the deadline).
  bool fill(size_t n, std::chrono::milliseconds timeout = 10s, size_t chunk = 65536) {
    const auto end = Clock::now() + timeout;
    while (buf_.size() < n) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (left <= 0ms) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      std::string tmp(chunk, '\0');
      const ssize_t r = ::recv(fd_, tmp.data(), tmp.size(), 0);
      if (r <= 0) return false;
      buf_.append(tmp.data(), static_cast<size_t>(r));
    }
    return true;
  }
  // The next `n` bytes.
  std::optional<std::string> take(size_t n, std::chrono::milliseconds timeout = 10s) {
    if (!fill(n, timeout)) return std::nullopt;
    std::string out = buf_.substr(0, n);
    buf_.erase(0, n);
    return out;
  }
  // A response head (through the blank line).
  std::optional<std::string> head(std::chrono::milliseconds timeout = 10s) {
    const auto end = Clock::now() + timeout;
    size_t at;
    while ((at = buf_.find("\r\n\r\n")) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (left <= 0ms || !fill(buf_.size() + 1, left)) return std::nullopt;
    }
    std::string out = buf_.substr(0, at + 4);
    buf_.erase(0, at + 4);
    return out;
  }
  // Everything until EOF; nullopt if the peer did not close in time.
  std::optional<std::string> until_close(std::chrono::milliseconds timeout = 10s) {
    const auto end = Clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (left <= 0ms) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char tmp[65536];
      const ssize_t r = ::recv(fd_, tmp, sizeof tmp, 0);
      if (r <= 0) break;
      buf_.append(tmp, static_cast<size_t>(r));
    }
    std::string out = std::move(buf_);
    buf_.clear();
    return out;
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

std::string upgrade_request(std::string_view path = "/ws") {
  return "GET " + std::string(path) +
         " HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
         "Keep-Alive: 300\r\n\r\n";
}

std::string config(const std::vector<std::string>& upstreams, json extra = json::object(),
                   int processes = 1) {
  json service = {{"name", "ws"},
                  {"type", "proxy"},
                  {"processes", processes},
                  {"upstreams", upstreams},
                  {"connect_timeout_ms", 500}};
  for (auto& [k, v] : extra.items()) service[k] = v;
  return json{
      {"listeners", {{{"address", "127.0.0.1"}, {"port", 0}}}},
      {"network", {{"processes", 1}}},
      {"services", {service}},
      {"routes", {{{"path", "/"}, {"service", "ws"}}}},
      {"admin", {{"socket", ""}}},
  }
      .dump();
}

// Upgrades a fresh connection; the 101's head is checked and consumed.
std::unique_ptr<Raw> open_tunnel(int port, std::string_view early = {}) {
  auto c = std::make_unique<Raw>(port);
  if (c->fd() < 0 || !c->send(upgrade_request() + std::string(early))) return nullptr;
  auto head = c->head();
  if (!head || !head->starts_with("HTTP/1.1 101 ")) return nullptr;
  return c;
}

// Polls `done` until it holds or `timeout` passes.
bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto end = Clock::now() + timeout;
  while (!done() && Clock::now() < end) std::this_thread::sleep_for(5ms);
  return done();
}

// The resident memory of a process (kB), from /proc.
long rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  }
  return -1;
}

TEST(Upgrade, AWebSocketExchangeGoesBothWaysWithTheBytesSentAfterTheHead) {
  WsUpstream up(echo_101);
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Raw c(server.port());
  // The first frame right behind the head, in the same segment.
  ASSERT_TRUE(c.send(upgrade_request() + "early-frame"));
  auto head = c.head();
  ASSERT_TRUE(head) << server.log();
  EXPECT_TRUE(head->starts_with("HTTP/1.1 101 Switching Protocols\r\n")) << *head;
  EXPECT_NE(head->find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), std::string::npos);
  EXPECT_EQ(c.take(11), "early-frame");
  for (int i = 0; i < 200; ++i) {
    const std::string m = "message " + std::to_string(i) + ";";
    ASSERT_TRUE(c.send(m));
    ASSERT_EQ(c.take(m.size()), m) << i;
  }
  const std::string seen = up.last_head();
  EXPECT_TRUE(seen.starts_with("GET /ws HTTP/1.1\r\n")) << seen;
  EXPECT_NE(seen.find("Connection: upgrade\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("Upgrade: websocket\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"), std::string::npos);
  EXPECT_NE(seen.find("X-Forwarded-For: 127.0.0.1\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("X-Forwarded-Host: ws.test\r\n"), std::string::npos) << seen;
  EXPECT_EQ(seen.find("Keep-Alive"), std::string::npos) << "hop-by-hop: " << seen;
}

// A plain request on the same route is not taken over: it goes through the
// ring (the network process frames it, keep-alive), and the connection
// serves the next request.
TEST(Upgrade, APlainRequestOnTheSameRouteGoesThroughTheRing) {
  WsUpstream up(
      [](UpConn& c) { send_all(c.fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain"); });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(c.send("GET /p HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r) << server.log();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "plain");
    EXPECT_EQ(r->headers["connection"], "keep-alive");
  }
  EXPECT_EQ(up.last_head().find("Upgrade"), std::string::npos);
}

// upgrade: false keeps the old behaviour: Upgrade is dropped, the request
// is proxied as plain HTTP through the ring.
TEST(Upgrade, OffTheUpgradeIsProxiedAsPlainHttp) {
  WsUpstream up(
      [](UpConn& c) { send_all(c.fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno"); });
  Server server(config({up.address()}, {{"upgrade", false}}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send(upgrade_request()));
  auto r = c.read_response();
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["connection"], "keep-alive");
  EXPECT_EQ(up.last_head().find("Upgrade"), std::string::npos) << up.last_head();
}

TEST(Upgrade, AnAnswerOtherThan101GoesToTheClientAndTheConnectionCloses) {
  WsUpstream up(answers_and_stays(  // kept open by the upstream: the proxy closes
      "HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\nConnection: keep-alive\r\n"
      "X-Why: origin\r\n\r\nnot ok"));
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Raw c(server.port());
  ASSERT_TRUE(c.send(upgrade_request()));
  auto all = c.until_close();
  ASSERT_TRUE(all) << server.log();
  EXPECT_TRUE(all->starts_with("HTTP/1.1 403 Forbidden\r\n")) << *all;
  EXPECT_NE(all->find("Connection: close\r\n"), std::string::npos) << *all;
  EXPECT_EQ(all->find("keep-alive"), std::string::npos) << *all;
  EXPECT_NE(all->find("X-Why: origin\r\n"), std::string::npos) << *all;
  EXPECT_TRUE(all->ends_with("\r\n\r\nnot ok")) << *all;
  EXPECT_TRUE(up.wait_closed(1, 5s));
}

// Each upgrade gets one access-log line, written by the proxy process that
// held it when it ends, and its count in ringhttpd_responses_total: a 101
// with every byte relayed to the client as its bytes, an answer other than
// 101 with its body's, the proxy's own 502 for a malformed answer, and a
// client that half-closes before any answer 499 (it gets none: an upgrade
// has no use for a connection closed one way).
TEST(Upgrade, EachUpgradeHasOneAccessLogLineAndItsCount) {
  WsUpstream up([](UpConn& c) {
    if (c.head.starts_with("GET /no ")) {
      return answers_and_stays("HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\nnot ok")(c);
    }
    if (c.head.starts_with("GET /bad ")) return answers_and_stays("garbage\r\n\r\n")(c);
    if (c.head.starts_with("GET /slow ")) {  // never answers: its client leaves first
      char b;
      while (::recv(c.fd, &b, 1, 0) > 0) {
      }
      return;
    }
    echo_101(c);
  });
  json cfg = json::parse(config({up.address()}));
  cfg.erase("admin");  // the default socket, for ctl metrics
  // Relative: in the server's own working directory, removed with it.
  cfg["log"] = {{"access", "access.log"}, {"format", "json"}};
  Server server(cfg.dump());
  const std::string path = server.workdir().path() + "/access.log";
  ASSERT_TRUE(server.ready()) << server.log();
  {
    Raw ws(server.port());
    ASSERT_TRUE(ws.send(upgrade_request("/ws?room=1") + "hello"));
    ASSERT_TRUE(ws.head()) << server.log();
    ::shutdown(ws.fd(), SHUT_WR);  // the upstream answers "<eof>" and closes
    EXPECT_EQ(ws.until_close(), "hello<eof>");
  }
  {
    Raw no(server.port());
    ASSERT_TRUE(no.send(upgrade_request("/no")));
    auto all = no.until_close();
    ASSERT_TRUE(all) << server.log();
    EXPECT_TRUE(all->ends_with("\r\n\r\nnot ok")) << *all;
  }
  {
    Raw bad(server.port());
    ASSERT_TRUE(bad.send(upgrade_request("/bad")));
    auto all = bad.until_close();
    ASSERT_TRUE(all) << server.log();
    EXPECT_TRUE(all->starts_with("HTTP/1.1 502 ")) << *all;
  }
  {
    Raw slow(server.port());
    ASSERT_TRUE(slow.send(upgrade_request("/slow")));
    ASSERT_TRUE(wait_for([&] { return up.connections() == 4; }, 5s));
    ::shutdown(slow.fd(), SHUT_WR);
    EXPECT_EQ(slow.until_close(), "");   // no answer, and closed at once
    EXPECT_TRUE(up.wait_closed(4, 5s));  // the upstream's side too
  }
  std::vector<json> lines;
  ASSERT_TRUE(wait_for(
      [&] {
        lines.clear();
        std::ifstream in(path);
        for (std::string l; std::getline(in, l);) {
          json line = json::parse(l, nullptr, false);
          if (line.is_discarded()) return false;  // a line still being written
          lines.push_back(std::move(line));
        }
        return lines.size() >= 4;
      },
      10s))
      << server.log();
  ASSERT_EQ(lines.size(), 4u);
  std::map<std::string, json> by_target;
  for (const json& l : lines) by_target[l["target"].get<std::string>()] = l;
  const json& ws = by_target["/ws?room=1"];
  EXPECT_EQ(ws["status"], 101) << ws.dump();
  EXPECT_EQ(ws["bytes"], 10) << ws.dump();
  EXPECT_EQ(ws["method"], "GET") << ws.dump();
  EXPECT_EQ(ws["version"], "1.1") << ws.dump();
  EXPECT_EQ(ws["remote"], "127.0.0.1") << ws.dump();
  const json& no = by_target["/no"];
  EXPECT_EQ(no["status"], 403) << no.dump();
  EXPECT_EQ(no["bytes"], 6) << no.dump();
  EXPECT_EQ(by_target["/bad"]["status"], 502) << by_target["/bad"].dump();
  EXPECT_GT(by_target["/bad"]["bytes"], 0) << by_target["/bad"].dump();
  EXPECT_EQ(by_target["/slow"]["status"], 499) << by_target["/slow"].dump();
  EXPECT_EQ(by_target["/slow"]["bytes"], 0) << by_target["/slow"].dump();
  std::string metrics;
  run_binary({"ctl", "--socket", server.workdir().admin_socket(), "metrics"}, metrics);
  EXPECT_NE(metrics.find("\nringhttpd_responses_total{class=\"1xx\"} 1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("\nringhttpd_responses_total{class=\"4xx\"} 2\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("\nringhttpd_responses_total{class=\"5xx\"} 1\n"), std::string::npos)
      << metrics;
  // logrotate: the proxy process reopens the file too, when it reads the
  // supervisor's message; upgrades until a line lands in the new file.
  ASSERT_EQ(::rename(path.c_str(), (path + ".1").c_str()), 0);
  ::kill(server.pid(), SIGUSR1);
  ASSERT_TRUE(server.wait_for_log("reopening log files", 5s));
  const auto new_file_written = [&] {
    std::ifstream in(path);
    return in.good() && in.peek() != EOF;
  };
  bool landed = false;
  for (int i = 0; i < 5 && !landed; ++i) {
    Raw again(server.port());
    ASSERT_TRUE(again.send(upgrade_request("/no")));
    ASSERT_TRUE(again.until_close()) << server.log();
    landed = wait_for(new_file_written, 1500ms);  // a flush comes within a second
  }
  EXPECT_TRUE(landed) << server.log();
}

// What a client sends right after an upgrade request is the new protocol
// only if the upstream says 101. Sent before, an upstream that refuses the
// upgrade reads it as a next request: one the network process never saw,
// past its routes (here a GET /admin). Such bytes wait for the 101, and
// are dropped with any other answer. Before, they went up with the head.
TEST(Upgrade, BytesSentAfterTheHeadReachTheUpstreamOnlyAfterItsSwitch) {
  std::mutex mu;
  std::string seen;  // every byte the upstream got after the request head
  WsUpstream up([&](UpConn& c) {
    std::string got = c.rest;
    send_all(c.fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nno\n");
    char buf[4096];
    for (ssize_t n; (n = ::recv(c.fd, buf, sizeof buf, 0)) > 0;) {
      got.append(buf, static_cast<size_t>(n));
    }
    std::lock_guard<std::mutex> lock(mu);
    seen = got;
  });
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Raw c(server.port());
  ASSERT_TRUE(c.send(upgrade_request() + "GET /admin HTTP/1.1\r\nHost: ws.test\r\n\r\n"));
  auto all = c.until_close();
  ASSERT_TRUE(all) << server.log();
  EXPECT_TRUE(all->starts_with("HTTP/1.1 200 OK\r\n")) << *all;
  EXPECT_TRUE(all->ends_with("\r\n\r\nno\n")) << *all;
  ASSERT_TRUE(up.wait_closed(1, 5s));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen, "");
}

// An upstream head with bare line ends (LF alone, or a CR without its LF)
// is malformed: 502 at once, carrying our Server and Date like any answer
// of ours. Before, a head ended by bare LFs was never found complete and
// the client waited for the 504 at response_timeout_ms.
TEST(Upgrade, AHeadWithBareLineEndsIs502AtOnce) {
  for (const char* head : {"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
                           "HTTP/1.1 200 O\rK\r\nContent-Length: 2\r\n\r\nok"}) {
    WsUpstream up(answers_and_stays(head));
    Server server(config({up.address()}, {{"timeout_ms", 10000}}));
    ASSERT_TRUE(server.ready()) << server.log();
    Raw c(server.port());
    const auto began = Clock::now();
    ASSERT_TRUE(c.send(upgrade_request()));
    auto all = c.until_close();
    ASSERT_TRUE(all) << server.log();
    EXPECT_TRUE(all->starts_with("HTTP/1.1 502 Bad Gateway\r\nServer: ringhttpd\r\nDate: "))
        << *all;
    EXPECT_LT(Clock::now() - began, 5s);
  }
}

// A head past 64 KiB is 502 however the reads fall, also when its end
// came in the read that took it past the bound.
TEST(Upgrade, AResponseHeadPast64KiBIs502) {
  WsUpstream up(
      answers_and_stays("HTTP/1.1 200 OK\r\nX-Big: " + std::string(70000, 'a') + "\r\n\r\n"));
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Raw c(server.port());
  ASSERT_TRUE(c.send(upgrade_request()));
  auto all = c.until_close();
  ASSERT_TRUE(all) << server.log();
  EXPECT_TRUE(all->starts_with("HTTP/1.1 502 Bad Gateway\r\n")) << all->substr(0, 200);
}

TEST(Upgrade, ARefusingUpstreamGets502) {
  int dead_port;
  {
    WsUpstream gone([](UpConn&) {});
    dead_port = gone.port();
  }
  Server server(config({"127.0.0.1:" + std::to_string(dead_port)}));
  ASSERT_TRUE(server.ready()) << server.log();
  Raw c(server.port());
  ASSERT_TRUE(c.send(upgrade_request()));
  auto all = c.until_close();
  ASSERT_TRUE(all) << server.log();
  EXPECT_TRUE(all->starts_with("HTTP/1.1 502 Bad Gateway\r\n")) << *all;
  EXPECT_NE(all->find("Connection: close\r\n"), std::string::npos) << *all;
}

TEST(Upgrade, ASilentUpstreamGets504) {
  WsUpstream up(answers_and_stays(""));
  Server server(config({up.address()}, {{"response_timeout_ms", 300}}));
  ASSERT_TRUE(server.ready()) << server.log();
  Raw c(server.port());
  const auto began = Clock::now();
  ASSERT_TRUE(c.send(upgrade_request()));
  auto all = c.until_close();
  ASSERT_TRUE(all) << server.log();
  EXPECT_TRUE(all->starts_with("HTTP/1.1 504 Gateway Timeout\r\n")) << *all;
  EXPECT_LT(Clock::now() - began, 3s);
}

// A connect that timed out sent nothing: the upgrade goes to the next
// upstream, as after a refused one; with none left, 504.
TEST(Upgrade, AConnectThatTimesOutGoesToTheNextUpstream) {
  StuckListener stuck;
  ASSERT_GT(stuck.port(), 0);
  stuck.fill();
  WsUpstream up(echo_101);
  {
    Server server(config({stuck.address(), up.address()}));
    ASSERT_TRUE(server.ready()) << server.log();
    auto c = open_tunnel(server.port());
    ASSERT_TRUE(c) << server.log();
    EXPECT_TRUE(server.wait_for_log("connect timed out", 1s)) << server.log();
  }
  Server server(config({stuck.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Raw c(server.port());
  ASSERT_TRUE(c.send(upgrade_request()));
  auto all = c.until_close();
  ASSERT_TRUE(all) << server.log();
  EXPECT_TRUE(all->starts_with("HTTP/1.1 504 Gateway Timeout\r\n")) << *all;
}

// The client's EOF reaches the upstream as EOF (shutdown, not close), and
// what the upstream sends after it still reaches the client.
TEST(Upgrade, AHalfCloseReachesTheUpstreamAndItsReplyStillArrives) {
  WsUpstream up(echo_101);
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  auto c = open_tunnel(server.port());
  ASSERT_TRUE(c) << server.log();
  ASSERT_TRUE(c->send("last words"));
  ::shutdown(c->fd(), SHUT_WR);
  auto rest = c->until_close();
  ASSERT_TRUE(rest) << server.log();
  EXPECT_EQ(*rest, "last words<eof>");
  EXPECT_TRUE(up.wait_closed(1, 5s));
}

TEST(Upgrade, AnIdleTunnelIsClosedBothWays) {
  WsUpstream up(echo_101);
  Server server(config({up.address()}, {{"tunnel_idle_timeout_ms", 300}}));
  ASSERT_TRUE(server.ready()) << server.log();
  auto c = open_tunnel(server.port());
  ASSERT_TRUE(c) << server.log();
  ASSERT_TRUE(c->send("ping"));
  ASSERT_EQ(c->take(4), "ping");
  const auto quiet = Clock::now();
  auto rest = c->until_close(5s);
  ASSERT_TRUE(rest) << "not closed when idle";
  EXPECT_EQ(*rest, "");
  EXPECT_GE(Clock::now() - quiet, 250ms);
  EXPECT_TRUE(up.wait_closed(1, 5s)) << "the upstream side stays open";
}

// 8 MiB each way through one tunnel, the client reading slowly at first:
// flow control holds the bytes back in the sockets, so the proxy process's
// memory does not grow with the transfer.
TEST(Upgrade, LargeTransfersWithASlowReaderKeepMemoryBounded) {
  WsUpstream up(echo_101);
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  const pid_t proxy = server.child("ringhttpd: service ws g1 #0");
  ASSERT_GT(proxy, 0);
  auto c = open_tunnel(server.port());
  ASSERT_TRUE(c) << server.log();
  const long before = rss_kb(proxy);
  constexpr size_t kBytes = 8 << 20;
  std::string data(kBytes, '\0');
  for (size_t i = 0; i < kBytes; ++i) data[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  std::atomic<bool> sent{false};
  std::thread writer([&] { sent = c->send(data); });
  // Slow at first: small reads, with pauses that let every buffer fill.
  std::string got;
  long peak = before;
  for (int i = 0; i < 20; ++i) {
    auto piece = c->take(4096, 10s);
    ASSERT_TRUE(piece);
    got += *piece;
    std::this_thread::sleep_for(20ms);  // the slow reader (pacing, not a wait for a condition)
    peak = std::max(peak, rss_kb(proxy));
  }
  while (got.size() < kBytes) {
    auto piece = c->take(std::min<size_t>(1 << 20, kBytes - got.size()), 20s);
    ASSERT_TRUE(piece) << got.size();
    got += *piece;
    peak = std::max(peak, rss_kb(proxy));
  }
  writer.join();
  EXPECT_TRUE(sent);
  EXPECT_TRUE(got == data) << "the bytes came back changed";
  EXPECT_LT(peak - before, 4096) << "kB grown in the proxy process";
}

// The value of the first sample of `family` in the exposition, or "".
std::string sample(const std::string& metrics, const std::string& family) {
  const size_t at = metrics.find("\n" + family + "{");
  if (at == std::string::npos) return "";
  const size_t eol = metrics.find('\n', at + 1);
  const std::string line = metrics.substr(at + 1, eol - at - 1);
  return line.substr(line.rfind(' ') + 1);
}

// The proxy process's count of tunnels, as the metrics show it (its loop
// publishes it each iteration: awaited, not assumed).
bool tunnels_shown(int port, const std::string& count) {
  const auto end = Clock::now() + 5s;
  while (Clock::now() < end) {
    auto r = http_get(port, "/metrics");
    if (r && sample(r->body, "ringhttpd_tunnels_open") == count) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

TEST(Upgrade, TwoHundredTunnelsAtOnceThroughOneProxyProcess) {
  WsUpstream up(echo_101);
  json cfg = json::parse(config({up.address()}, {}, 1));
  cfg["routes"] = {{{"path", "/metrics"}, {"metrics", true}}, {{"path", "/"}, {"service", "ws"}}};
  Server server(cfg.dump());
  ASSERT_TRUE(server.ready()) << server.log();
  std::vector<std::unique_ptr<Raw>> tunnels;
  for (int i = 0; i < 200; ++i) {
    tunnels.push_back(open_tunnel(server.port(), "hello " + std::to_string(i) + ";"));
    ASSERT_TRUE(tunnels.back()) << i << server.log();
  }
  EXPECT_EQ(up.connections(), 200);
  EXPECT_EQ(up.closed(), 0);
  for (int i = 0; i < 200; ++i) {
    const std::string hello = "hello " + std::to_string(i) + ";";
    ASSERT_EQ(tunnels[i]->take(hello.size()), hello) << i;
  }
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 200; ++i) ASSERT_TRUE(tunnels[i]->send("r" + std::to_string(round)));
    for (int i = 0; i < 200; ++i) ASSERT_EQ(tunnels[i]->take(2), "r" + std::to_string(round));
  }
  EXPECT_TRUE(tunnels_shown(server.port(), "200")) << "ringhttpd_tunnels_open";
  tunnels.clear();
  EXPECT_TRUE(up.wait_closed(200, 10s)) << up.closed();
  EXPECT_TRUE(tunnels_shown(server.port(), "0")) << "ringhttpd_tunnels_open";
}

// The value of the sample `series` (name and labels) in /metrics, or -1.
long metric_value(int port, const std::string& series) {
  auto r = http_get(port, "/metrics");
  const std::string line = "\n" + series + " ";
  const size_t at = r ? r->body.find(line) : std::string::npos;
  return at == std::string::npos ? -1 : std::atol(r->body.c_str() + at + line.size());
}

// The tunnels proxy process `index` holds, as the metrics show them, or -1.
long tunnels_of(int port, int index) {
  return metric_value(port, "ringhttpd_tunnels_open{role=\"service\",service=\"ws\",index=\"" +
                                std::to_string(index) + "\"}");
}

// Awaits proxy process `index` showing `want` tunnels (its loop publishes
// the count each iteration).
bool tunnels_of_become(int port, int index, int want) {
  const auto end = Clock::now() + 5s;
  while (Clock::now() < end) {
    if (tunnels_of(port, index) == want) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

long refused_takeovers(int port) { return metric_value(port, "ringhttpd_takeovers_refused_total"); }

json with_metrics_route(const std::string& cfg) {
  json c = json::parse(cfg);
  c["routes"] = {{{"path", "/metrics"}, {"metrics", true}}, {{"path", "/"}, {"service", "ws"}}};
  return c;
}

// Tunnels last, so the supervisor gives the next one to the process holding
// the fewest: after a proxy process dies with its tunnels, its replacement
// takes the new ones until it holds as many as its sibling. (In turn, the
// sibling would have taken half of them.)
TEST(Upgrade, ANewTunnelGoesToTheProxyProcessHoldingTheFewest) {
  WsUpstream up(echo_101);
  Server server(with_metrics_route(config({up.address()}, {}, 2)).dump());
  ASSERT_TRUE(server.ready()) << server.log();
  std::vector<std::unique_ptr<Raw>> first;
  for (int i = 0; i < 6; ++i) {
    first.push_back(open_tunnel(server.port()));
    ASSERT_TRUE(first.back()) << i << server.log();
  }
  ASSERT_TRUE(tunnels_of_become(server.port(), 0, 3)) << tunnels_of(server.port(), 0);
  ASSERT_TRUE(tunnels_of_become(server.port(), 1, 3)) << tunnels_of(server.port(), 1);
  const pid_t second = server.child("ringhttpd: service ws g1 #1");
  ASSERT_GT(second, 0);
  ::kill(second, SIGKILL);
  ASSERT_TRUE(server.wait_for_log("replaced; serving", 10s)) << server.log();
  ASSERT_TRUE(tunnels_of_become(server.port(), 1, 0)) << tunnels_of(server.port(), 1);
  std::vector<std::unique_ptr<Raw>> next;
  for (int i = 0; i < 4; ++i) {
    next.push_back(open_tunnel(server.port()));
    ASSERT_TRUE(next.back()) << i << server.log();
    ASSERT_TRUE(next.back()->send("n"));
    ASSERT_EQ(next.back()->take(1), "n");
  }
  // 3 to the replacement, then a tie: the fourth to either.
  const long on_first = tunnels_of(server.port(), 0);
  const long on_replacement = tunnels_of(server.port(), 1);
  EXPECT_GE(on_replacement, 3) << server.log();
  EXPECT_EQ(on_first + on_replacement, 7);
}

// The supervisor passes an upgraded connection on without waiting: when no
// process of the service can take it now (here its only one is stopped and
// its control queue full), it gives the connection back to the network
// process that sent it, and the client gets 503 with Retry-After from
// there, counted as a refused takeover and as a 5xx response of its route,
// with its access-log line. The ones queued before are taken once the
// process runs again.
TEST(Upgrade, AnUpgradeNoProcessCanTakeGets503AndALogLine) {
  WsUpstream up(echo_101);
  json cfg = with_metrics_route(config({up.address()}));
  cfg["log"] = {{"access", "access.log"}, {"format", "json"}};
  Server server(cfg.dump());
  const std::string path = server.workdir().path() + "/access.log";
  ASSERT_TRUE(server.ready()) << server.log();
  const pid_t proxy = server.child("ringhttpd: service ws g1 #0");
  ASSERT_GT(proxy, 0);
  ASSERT_EQ(::kill(proxy, SIGSTOP), 0);
  // The queue is bounded in bytes (the socket's send buffer, about 200 KiB
  // by default): 8 KiB heads fill it within a few dozen. Sent in rounds
  // until one is refused, however large this machine's buffers are.
  std::string padded = upgrade_request();
  padded.insert(padded.size() - 2, "X-Pad: " + std::string(8000, 'p') + "\r\n");
  std::vector<std::unique_ptr<Raw>> cs;
  bool refused = false;
  for (int round = 0; round < 40 && !refused; ++round) {
    for (int i = 0; i < 20; ++i) {
      cs.push_back(std::make_unique<Raw>(server.port()));
      ASSERT_TRUE(cs.back()->send(padded)) << cs.size();
    }
    for (const auto end = Clock::now() + 2s; !refused && Clock::now() < end;) {
      refused = refused_takeovers(server.port()) > 0;
      if (!refused) std::this_thread::sleep_for(10ms);
    }
  }
  ::kill(proxy, SIGCONT);
  ASSERT_TRUE(refused) << server.log();
  int switched = 0, unavailable = 0;
  for (auto& c : cs) {
    auto head = c->head(10s);
    ASSERT_TRUE(head) << server.log();
    if (head->starts_with("HTTP/1.1 101 ")) ++switched;
    if (head->starts_with("HTTP/1.1 503 ")) {
      ++unavailable;
      EXPECT_NE(head->find("Retry-After: 1\r\n"), std::string::npos) << *head;
      EXPECT_TRUE(c->until_close(5s)) << "closed after the 503";
    }
  }
  EXPECT_GT(unavailable, 0);
  EXPECT_GT(switched, 0) << "the queued ones are taken after SIGCONT";
  EXPECT_EQ(switched + unavailable, static_cast<int>(cs.size()));
  EXPECT_EQ(refused_takeovers(server.port()), unavailable);
  EXPECT_EQ(
      metric_value(server.port(), R"(ringhttpd_route_responses_total{route="/",class="5xx"})"),
      unavailable);
  EXPECT_TRUE(server.wait_for_log("could take a connection; network g1 #0 answers 503", 1s))
      << server.log();
  // One line per 503 (the tunnels taken get theirs when they end).
  std::vector<json> lines_503;
  const bool logged = wait_for(
      [&] {
        lines_503.clear();
        std::ifstream in(path);
        for (std::string l; std::getline(in, l);) {
          json line = json::parse(l, nullptr, false);
          if (!line.is_discarded() && line["status"] == 503) lines_503.push_back(std::move(line));
        }
        return static_cast<int>(lines_503.size()) >= unavailable;
      },
      10s);
  ASSERT_TRUE(logged) << lines_503.size() << " of " << unavailable << "\n" << server.log();
  ASSERT_EQ(static_cast<int>(lines_503.size()), unavailable);
  EXPECT_EQ(lines_503[0]["bytes"], 20) << lines_503[0].dump();
  EXPECT_EQ(lines_503[0]["method"], "GET") << lines_503[0].dump();
  EXPECT_EQ(lines_503[0]["target"], "/ws") << lines_503[0].dump();
  EXPECT_EQ(lines_503[0]["remote"], "127.0.0.1") << lines_503[0].dump();
}

// A tunnel belongs to the process that holds it: its death closes both
// sides, and its replacement takes the next ones.
TEST(Upgrade, TunnelsCloseWithTheProcessThatHoldsThem) {
  WsUpstream up(echo_101);
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  auto c = open_tunnel(server.port());
  ASSERT_TRUE(c) << server.log();
  const pid_t proxy = server.child("ringhttpd: service ws g1 #0");
  ASSERT_GT(proxy, 0);
  ::kill(proxy, SIGKILL);
  auto rest = c->until_close(5s);
  ASSERT_TRUE(rest) << "the client side stays open";
  EXPECT_EQ(*rest, "");
  EXPECT_TRUE(up.wait_closed(1, 5s)) << "the upstream side stays open";
  ASSERT_TRUE(server.wait_for_log("replaced; serving", 10s)) << server.log();
  auto fresh = open_tunnel(server.port());
  ASSERT_TRUE(fresh) << server.log();
  ASSERT_TRUE(fresh->send("again"));
  EXPECT_EQ(fresh->take(5), "again");
}

// An upgrade completed on a connection the old generation still holds,
// for a service the new one no longer has: no process can take it, and
// the draining network process that sent it may exit at once, so the
// supervisor answers the 503 itself rather than giving the socket back.
TEST(Upgrade, AnUpgradeRefusedToADrainingProcessGets503FromTheSupervisor) {
  WsUpstream up(echo_101);
  Server server(config({up.address()}));
  ASSERT_TRUE(server.ready()) << server.log();
  Raw c(server.port());
  const std::string head = upgrade_request();
  const size_t half = head.size() / 2;
  ASSERT_TRUE(c.send(head.substr(0, half)));
  sockaddr_in me{};
  socklen_t len = sizeof me;
  ASSERT_EQ(::getsockname(c.fd(), reinterpret_cast<sockaddr*>(&me), &len), 0);
  ASSERT_TRUE(wait_server_read_all(server.port(), ntohs(me.sin_port), 5s));
  json renamed = json::parse(config({up.address()}));
  renamed["services"][0]["name"] = "ws2";
  renamed["routes"][0]["service"] = "ws2";
  server.rewrite_config(renamed.dump());
  ::kill(server.pid(), SIGHUP);
  ASSERT_TRUE(server.wait_for_log("generation 2 serving", 10s)) << server.log();
  ASSERT_TRUE(c.send(head.substr(half)));
  auto answer = c.head(5s);
  ASSERT_TRUE(answer) << server.log();
  EXPECT_TRUE(answer->starts_with("HTTP/1.1 503 ")) << *answer;
  EXPECT_NE(answer->find("Retry-After: 1\r\n"), std::string::npos) << *answer;
  EXPECT_TRUE(c.until_close(5s)) << "closed after the 503";
  EXPECT_TRUE(server.wait_for_log("could take a connection; answered 503", 5s)) << server.log();
}

// Tunnels belong to the service process that holds them: after a reload
// the old generation's proxy keeps this one (until it ends, or its drain
// deadline), while new tunnels go to the new generation.
TEST(Upgrade, ATunnelLivesOnAcrossAReload) {
  WsUpstream up(echo_101);
  Server server(config({up.address()}, {{"tunnel_idle_timeout_ms", 60000}}));
  ASSERT_TRUE(server.ready()) << server.log();
  auto c = open_tunnel(server.port());
  ASSERT_TRUE(c) << server.log();
  ::kill(server.pid(), SIGHUP);
  ASSERT_TRUE(server.wait_for_log("generation 2 serving", 10s)) << server.log();
  ASSERT_TRUE(server.wait_for_log("taken-over connections end", 10s)) << server.log();
  for (int i = 0; i < 20; ++i) {
    const std::string m = "after reload " + std::to_string(i);
    ASSERT_TRUE(c->send(m));
    ASSERT_EQ(c->take(m.size()), m) << server.log();
  }
  EXPECT_GT(server.child("ringhttpd: service ws g1 #0"), 0) << "the old proxy holds it";
  auto fresh = open_tunnel(server.port());
  ASSERT_TRUE(fresh) << server.log();
  ASSERT_TRUE(fresh->send("new"));
  EXPECT_EQ(fresh->take(3), "new");
  // The tunnel ends: then the old generation ends too.
  ::shutdown(c->fd(), SHUT_WR);
  auto rest = c->until_close();
  ASSERT_TRUE(rest);
  EXPECT_EQ(*rest, "<eof>");
  EXPECT_TRUE(server.wait_for_log("generation 1 ended", 10s)) << server.log();
}

// A graceful stop does not cut a tunnel before the drain deadline, and
// does not wait past it either.
TEST(Upgrade, AGracefulStopEndsATunnelAtTheDrainDeadline) {
  WsUpstream up(echo_101);
  json cfg = json::parse(config({up.address()}, {{"tunnel_idle_timeout_ms", 60000}}));
  cfg["network"]["drain_timeout_ms"] = 1500;
  Server server(cfg.dump());
  ASSERT_TRUE(server.ready()) << server.log();
  auto c = open_tunnel(server.port());
  ASSERT_TRUE(c) << server.log();
  const auto began = Clock::now();
  ::kill(server.pid(), SIGTERM);
  ASSERT_TRUE(server.wait_for_log("taken-over connections end", 10s)) << server.log();
  ASSERT_TRUE(c->send("still here"));
  EXPECT_EQ(c->take(10), "still here");
  EXPECT_EQ(server.stop(0, 10s), 0) << server.log();
  const auto took = Clock::now() - began;
  EXPECT_GE(took, 1000ms);
  EXPECT_LT(took, 5000ms);
  EXPECT_TRUE(c->until_close(2s));
}

}  // namespace
}  // namespace ringhttpd::testing
