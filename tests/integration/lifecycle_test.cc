// The lifecycle against the real binary: children replaced after kill -9
// (under load, with nothing lost), a request on a dying service (502 or a
// retry), a hanging handler (504, then the process is replaced), reload by
// SIGHUP with connections handed to the new generation, failed reloads that
// leave the old generation serving, coalesced SIGHUP storms, and SIGTERM
// under load losing no request. Loads are bounded in connections and time.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "proto/ring_codec.h"
#include "shm/segment.h"
#include "tests/integration/server_harness.h"

namespace ringhttpd::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

struct Shape {
  int network = 2;
  int service = 2;
  std::string type = "echo";
  int timeout_ms = 5000;
  int kill_after_ms = 0;
  int drain_ms = 10000;
  int max_connections = 10000;
  int keepalive_ms = 0;          // 0: the default
  std::vector<int> extra_ports;  // more listeners on 127.0.0.1
  bool reuseport = false;        // the first listener: one socket per network process
};

// One network and one service process, the service of handler `type`.
Shape one_of_each(const std::string& type) {
  Shape s;
  s.type = type;
  s.network = 1;
  s.service = 1;
  return s;
}

std::string config(const Shape& s) {
  json listeners =
      json::array({{{"address", "127.0.0.1"}, {"port", 0}, {"reuseport", s.reuseport}}});
  for (int p : s.extra_ports) listeners.push_back({{"address", "127.0.0.1"}, {"port", p}});
  json service = {
      {"name", "app"}, {"type", s.type}, {"processes", s.service}, {"timeout_ms", s.timeout_ms}};
  if (s.kill_after_ms > 0) service["kill_after_ms"] = s.kill_after_ms;
  json network = {{"processes", s.network},
                  {"drain_timeout_ms", s.drain_ms},
                  {"max_connections", s.max_connections}};
  if (s.keepalive_ms > 0) network["keepalive_timeout_ms"] = s.keepalive_ms;
  return json{
      {"listeners", listeners},
      {"network", network},
      {"services", json::array({service})},
      {"routes",
       {{{"path", "/healthz"}, {"respond", {{"status", 200}, {"body", "ok\n"}}}},
        {{"path", "/"}, {"service", "app"}}}},
  }
      .dump();
}

const std::string kGetEcho = "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n";
const std::string kGetHealth = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";

// The echo JSON's "network" or "service" object.
json served_by(const Client::Response& r, const char* which) {
  const json j = json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains(which) ? j[which] : json();
}

// Keep-alive connections, each sending requests back to back (echo and the
// fast path in turn) until stopped. A connection ends only when the server
// says "Connection: close" (counted), or fails (counted).
class Load {
 public:
  Load(int port, int connections)
      : echoes_(connections),
        generation_(connections),
        exchanges_(static_cast<size_t>(connections)),
        ended_by_server_(static_cast<size_t>(connections)),
        running_(connections) {
    for (int i = 0; i < connections; ++i) {
      threads_.emplace_back([this, port, i] { run(port, i); });
    }
  }
  ~Load() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  // Waits until at least `n` more responses have arrived.
  bool wait_responses(int n, std::chrono::milliseconds timeout) {
    const int until = ok_ + n;
    const auto deadline = Clock::now() + timeout;
    while (ok_ < until && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
    return ok_ >= until;
  }
  // Waits until every connection got `more` echo answers more than now.
  bool wait_every_connection_echoed(std::chrono::milliseconds timeout, int more = 1) {
    std::vector<int> before(echoes_.size());
    for (size_t i = 0; i < echoes_.size(); ++i) before[i] = echoes_[i];
    const auto deadline = Clock::now() + timeout;
    for (size_t i = 0; i < echoes_.size(); ++i) {
      while (echoes_[i] < before[i] + more) {
        if (Clock::now() > deadline) return false;
        std::this_thread::sleep_for(1ms);
      }
    }
    return true;
  }
  // Waits until every connection's thread has ended on its own (the server
  // closed it, or it failed).
  bool wait_ended(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (running_ > 0) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(1ms);
    }
    stop();
    return true;
  }
  // One request and its response on a connection, as the client saw them.
  struct Exchange {
    Clock::time_point sent;  // before the request's first byte was sent
    Clock::time_point read;  // once its response was read whole
    bool keep_alive;         // the response did not say "Connection: close"
  };
  // Connection i's exchanges; read only after its thread ended.
  const std::vector<Exchange>& exchanges(size_t i) const { return exchanges_[i]; }
  // Connection i ended with a response that said close, then the server
  // closed it; read only after its thread ended.
  bool ended_by_server(size_t i) const { return ended_by_server_[i] != 0; }
  // The generation of the network process that answered connection i last.
  int generation_of(size_t i) const { return generation_[i]; }
  size_t connections() const { return echoes_.size(); }
  int ok() const { return ok_; }
  int failed() const { return failed_; }
  int closed() const { return closed_; }
  std::string first_failure() {
    std::lock_guard<std::mutex> lock(mu_);
    return failure_;
  }

 private:
  void run(int port, int i) {
    struct Ended {
      std::atomic<int>& running;
      ~Ended() { --running; }
    } ended{running_};
    Client c(port);
    std::vector<Exchange>& exchanges = exchanges_[static_cast<size_t>(i)];
    for (uint64_t n = 0; !stop_; ++n) {
      const bool echo = (n + static_cast<uint64_t>(i)) % 2 == 0;
      const auto sent = Clock::now();
      if (!c.send(echo ? kGetEcho : kGetHealth)) return fail("send failed");
      auto r = c.read_response(10s);
      if (!r) return fail("no response (connection closed or timed out)");
      exchanges.push_back({sent, Clock::now(), r->headers["connection"] != "close"});
      if (r->status != 200) return fail("status " + std::to_string(r->status));
      if (echo) {
        const json network = served_by(*r, "network");
        if (network.is_object())
          generation_[static_cast<size_t>(i)] = network["generation"].get<int>();
        ++echoes_[static_cast<size_t>(i)];
      }
      ++ok_;
      if (r->headers["connection"] == "close") {
        ++closed_;
        if (c.closed_by_peer(10s)) ended_by_server_[static_cast<size_t>(i)] = 1;
        return;
      }
    }
  }
  void fail(const std::string& why) {
    ++failed_;
    std::lock_guard<std::mutex> lock(mu_);
    if (failure_.empty()) failure_ = why;
  }

  std::vector<std::atomic<int>> echoes_;          // per connection: echo answers so far
  std::vector<std::atomic<int>> generation_;      // per connection: the last one's generation
  std::vector<std::vector<Exchange>> exchanges_;  // per connection, its thread's only
  std::vector<uint8_t> ended_by_server_;          // likewise
  std::atomic<int> running_;                      // threads not yet ended
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0}, failed_{0}, closed_{0};
  std::mutex mu_;
  std::string failure_;
};

// Waits until the child titled `title` has a pid other than `old`.
pid_t wait_replaced(const Server& server, const std::string& title, pid_t old,
                    std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const pid_t now = server.child(title);
    if (now > 0 && now != old) return now;
    if (Clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(1ms);
  }
}

// SIGSTOPs the process titled `prefix` + "0" and returns its pid and that of
// its sibling (`prefix` + "1"); -1s when either is missing.
std::pair<pid_t, pid_t> stop_first_of_two(const Server& server, const std::string& prefix) {
  const pid_t first = server.child(prefix + "0");
  const pid_t second = server.child(prefix + "1");
  if (first <= 0 || second <= 0 || ::kill(first, SIGSTOP) != 0) return {-1, -1};
  return {first, second};
}

// Number of times `text` occurs in the server's log.
size_t count_in_log(const Server& server, const std::string& text) {
  const std::string log = server.log();
  size_t n = 0;
  for (size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++n;
  return n;
}

bool wait_log_count(const Server& server, const std::string& text, size_t n,
                    std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (count_in_log(server, text) < n) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// The server's deadlines are whole milliseconds of a clock read at the top
// of its loop: a deadline can pass up to a millisecond before the test's
// clock says so. Ordering checks allow that much.
constexpr auto kClockSlack = 2ms;

// Every /dev/shm segment of the instance whose supervisor had pid
// `supervisor` (Server::segments() goes by the running supervisor's pid,
// which Server::stop() forgets).
std::vector<std::string> segments_of(pid_t supervisor) {
  std::vector<std::string> out;
  std::string prefix = "ringhttpd.";
  prefix.append(std::to_string(supervisor)).append(".g");
  std::error_code ignored;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ignored)) {
    if (e.path().filename().string().starts_with(prefix)) out.push_back(e.path().string());
  }
  return out;
}

// True while `pid` exists and is not a zombie (a killed child not yet reaped
// is gone for the purpose of these tests).
bool alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  const char state = stat[close + 2];
  return state != 'Z' && state != 'X';
}

// The admin socket's status (`ringhttpd ctl status --json`), or nullopt.
std::optional<json> admin_status(const Server& server) {
  std::string out;
  if (run_binary({"ctl", "--socket", server.workdir().admin_socket(), "status", "--json"}, out) !=
      0) {
    return std::nullopt;
  }
  json j = json::parse(out, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

// The status row of service process #index of generation `generation`.
json service_row(const json& status, int generation, int index) {
  for (const json& p : status["processes"]) {
    if (p["role"] == "service" && p["generation"] == generation && p["index"] == index) return p;
  }
  return json();
}

// Whether connecting to 127.0.0.1:port is refused: no process holds a
// listening socket there (the connection, if made, is closed at once).
bool refused(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int r = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  const int err = errno;
  ::close(fd);
  return r != 0 && err == ECONNREFUSED;
}

// The first moment connecting to 127.0.0.1:port is refused, or nullopt.
std::optional<Clock::time_point> wait_refused(int port, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (refused(port)) return Clock::now();
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(1ms);
  }
}

// A port on 127.0.0.1 that was free a moment ago.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// The pid in the first "lifecycle: pid N <what>" line of the log, or -1.
pid_t logged_pid(const Server& server, const std::string& what) {
  const std::string log = server.log();
  for (size_t at = log.find("lifecycle: pid "); at != std::string::npos;
       at = log.find("lifecycle: pid ", at + 1)) {
    const size_t digits = at + std::string("lifecycle: pid ").size();
    const size_t end = log.find(' ', digits);
    if (end != std::string::npos && log.compare(end + 1, what.size(), what) == 0) {
      return std::atoi(log.substr(digits, end - digits).c_str());
    }
  }
  return -1;
}

std::string get(const std::string& target) {
  std::string r = "GET ";
  r.append(target).append(" HTTP/1.1\r\nHost: t\r\n\r\n");
  return r;
}

// Sends on `c` a request the lifecycle handler holds until the file `never`
// exists, and waits until it holds it.
bool hold_until(Server& server, Client& c, const std::string& never) {
  return c.send(get("/hold?until=" + never)) && server.wait_for_log("holds " + never, 10s);
}

// ---- self-healing --------------------------------------------------------

// A service process blocked in its handler never runs its loop, so it could
// not read a SIGTERM: the supervisor's death kills it (PR_SET_PDEATHSIG is
// SIGKILL for service processes). Before, it lived on as an orphan.
TEST(Lifecycle, SigkillOfTheSupervisorEndsAServiceBlockedInItsHandler) {
  const Shape shape = one_of_each("lifecycle");
  Server server(config(shape), Binary::with_test_handlers);
  ASSERT_TRUE(server.ready()) << server.log();
  std::vector<pid_t> kids;
  for (const auto& [pid, title] : server.children()) kids.push_back(pid);
  ASSERT_EQ(kids.size(), 2u);
  Client c(server.port());
  ASSERT_TRUE(c.send(get("/block")));
  ASSERT_TRUE(server.wait_for_log("blocks in handle()", 10s)) << server.log();
  const std::string segment = server.segment_path();
  server.stop(SIGKILL);
  const bool gone = wait_gone(kids, 10s);
  EXPECT_TRUE(gone) << "a blocked service process outlived the supervisor";
  if (!gone) {
    for (pid_t k : kids) ::kill(k, SIGKILL);  // ours, still there: not left behind
  }
  EXPECT_FALSE(std::filesystem::exists(segment));
}

TEST(Lifecycle, KilledServiceProcessesAreReplacedUnderLoadWithoutAFailedRequest) {
  Server server(config(Shape{}));
  ASSERT_TRUE(server.ready()) << server.log();
  Load load(server.port(), 32);
  ASSERT_TRUE(load.wait_responses(200, 10s));
  for (int kill = 0; kill < 5; ++kill) {
    const std::string title = "ringhttpd: service app g1 #" + std::to_string(kill % 2);
    const pid_t victim = server.child(title);
    ASSERT_GT(victim, 0);
    ::kill(victim, SIGKILL);
    ASSERT_GT(wait_replaced(server, title, victim, 5s), 0) << server.log();
    // Serving, not only started: killing the sibling before would leave
    // no service process ready, and its requests would get 503.
    ASSERT_TRUE(wait_log_count(server, "replaced; serving", static_cast<size_t>(kill) + 1, 5s))
        << server.log();
    ASSERT_TRUE(load.wait_responses(100, 10s))
        << "kill " << kill << ": " << load.first_failure() << "\n"
        << server.log();
  }
  load.stop();
  EXPECT_EQ(load.failed(), 0) << load.first_failure() << "\n" << server.log();
  EXPECT_EQ(load.closed(), 0);
  EXPECT_EQ(count_in_log(server, "replacing it"), 5u) << server.log();
}

// The network watchdog: a network process whose loop stops (SIGSTOP here,
// as an endless loop would) is killed once its heartbeat is older than
// network.watchdog_ms, and replaced; the other network process, idle or
// not, is left alone, and the server goes on answering.
TEST(Lifecycle, ANetworkProcessWhoseLoopStopsIsKilledAndReplaced) {
  json cfg = json::parse(config(Shape{}));
  cfg["network"]["watchdog_ms"] = 3000;
  Server server(cfg.dump());
  ASSERT_TRUE(server.ready()) << server.log();
  const std::string title = "ringhttpd: network g1 #0";
  const auto [stuck, sibling] = stop_first_of_two(server, "ringhttpd: network g1 #");
  ASSERT_GT(stuck, 0) << server.log();
  const auto stopped = Clock::now();
  const pid_t replacement = wait_replaced(server, title, stuck, 15s);
  ASSERT_GT(replacement, 0) << server.log();
  // Not before its heartbeat was 3 s old: the last one may precede the stop
  // by up to the 1 s an idle loop sleeps.
  EXPECT_GE(Clock::now() - stopped, 2s);
  EXPECT_TRUE(server.wait_for_log("its loop has not run for", 5s)) << server.log();
  EXPECT_TRUE(server.wait_for_log("(network.watchdog_ms 3000); killed, to be replaced", 5s));
  EXPECT_TRUE(wait_gone({stuck}, 5s));
  EXPECT_EQ(server.child("ringhttpd: network g1 #1"), sibling);
  EXPECT_EQ(count_in_log(server, "its loop has not run for"), 1u) << server.log();
  for (int i = 0; i < 4; ++i) {
    auto r = http_get(server.port(), "/healthz");
    ASSERT_TRUE(r) << server.log();
    EXPECT_EQ(r->status, 200);
  }
}

// Five kills, each of the network process that holds half of 32 keep-alive
// connections: each time exactly its connections end, the other process's
// connections are answered by that same process, and a replacement takes
// the place (it gets the connections opened again: its sibling is full).
TEST(Lifecycle, KilledNetworkProcessesLoseOnlyTheirOwnConnections) {
  Shape shape;
  shape.max_connections = 16;  // 32 connections: each network process holds 16
  Server server(config(shape));
  ASSERT_TRUE(server.ready()) << server.log();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 32; ++i) clients.push_back(std::make_unique<Client>(server.port()));
  // Who serves each connection now, asked over it.
  const auto owners = [&] {
    std::vector<pid_t> owner;
    for (auto& c : clients) {
      EXPECT_TRUE(c->send(kGetEcho));
      auto r = c->read_response();
      EXPECT_TRUE(r) << server.log();
      if (!r) return std::vector<pid_t>();
      EXPECT_EQ(r->status, 200);
      owner.push_back(served_by(*r, "network")["pid"].get<pid_t>());
    }
    return owner;
  };
  std::vector<long long> replaced_ms;
  for (int kill = 0; kill < 5; ++kill) {
    const std::string title = "ringhttpd: network g1 #" + std::to_string(kill % 2);
    const std::string other_title = "ringhttpd: network g1 #" + std::to_string(1 - kill % 2);
    const pid_t victim = server.child(title);
    const pid_t other = server.child(other_title);
    ASSERT_GT(victim, 0);
    ASSERT_GT(other, 0);
    const std::vector<pid_t> owner = owners();
    ASSERT_EQ(owner.size(), clients.size()) << "kill " << kill;
    ASSERT_EQ(std::count(owner.begin(), owner.end(), victim), 16) << "kill " << kill;
    ASSERT_EQ(std::count(owner.begin(), owner.end(), other), 16) << "kill " << kill;
    ::kill(victim, SIGKILL);
    const auto killed_at = Clock::now();
    ASSERT_GT(wait_replaced(server, title, victim, 5s), 0) << server.log();
    replaced_ms.push_back(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed_at).count());
    for (size_t i = 0; i < clients.size(); ++i) {
      if (owner[i] == victim) {
        EXPECT_TRUE(clients[i]->closed_by_peer(5s)) << "kill " << kill << ", connection " << i;
        continue;
      }
      ASSERT_TRUE(clients[i]->send(kGetEcho));
      auto r = clients[i]->read_response();
      ASSERT_TRUE(r) << "kill " << kill << ": a connection of the other network process was lost";
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(served_by(*r, "network")["pid"], other) << "kill " << kill;
    }
    EXPECT_EQ(server.child(other_title), other) << "kill " << kill;
    // Connections opened again once the replacement serves and its full
    // sibling knows it: before that, the sibling would take them, to refuse
    // them with 503. The replacement's slot reads ready before the
    // supervisor logs "serving", and the sibling looks again at every turn
    // of its loop, so one answer from the sibling after the line is enough.
    ASSERT_TRUE(wait_log_count(server, "replaced; serving", static_cast<size_t>(kill) + 1, 5s))
        << server.log();
    const size_t any_of_other =
        static_cast<size_t>(std::find(owner.begin(), owner.end(), other) - owner.begin());
    ASSERT_TRUE(clients[any_of_other]->send(kGetEcho));
    ASSERT_TRUE(clients[any_of_other]->read_response()) << server.log();
    for (size_t i = 0; i < clients.size(); ++i) {
      if (owner[i] == victim) clients[i] = std::make_unique<Client>(server.port());
    }
  }
  ASSERT_EQ(owners().size(), clients.size());  // the last replacement serves its 16 too
  EXPECT_EQ(count_in_log(server, "replacing it"), 5u) << server.log();
  std::sort(replaced_ms.begin(), replaced_ms.end());
  std::printf("network process replaced (title seen) over 5 kills: p50 %lld ms, max %lld ms\n",
              replaced_ms[replaced_ms.size() / 2], replaced_ms.back());
}

// A full network process takes new connections only to refuse them (503),
// when no ready sibling has room. The supervisor tells it of a sibling's
// death and of its replacement's readiness as they happen, so it stops
// refusing as soon as the replacement serves (not at the next turn of its
// loop: up to 250 ms when idle), and says so in the log when full.
TEST(Lifecycle, AFullNetworkProcessLeavesNewConnectionsToAReplacementAtOnce) {
  Shape shape;
  shape.max_connections = 4;  // 8 connections: each network process holds 4
  Server server(config(shape));
  ASSERT_TRUE(server.ready()) << server.log();
  const std::string title = "ringhttpd: network g1 #0";
  const pid_t victim = server.child(title);
  const pid_t sibling = server.child("ringhttpd: network g1 #1");
  ASSERT_GT(victim, 0);
  ASSERT_GT(sibling, 0);
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<Client*> of_sibling;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<Client>(server.port()));
    ASSERT_TRUE(clients.back()->send(kGetEcho));
    auto r = clients.back()->read_response();
    ASSERT_TRUE(r) << server.log();
    ASSERT_EQ(r->status, 200);
    if (served_by(*r, "network")["pid"] == sibling) of_sibling.push_back(clients.back().get());
  }
  ASSERT_EQ(of_sibling.size(), 4u);
  ::kill(victim, SIGKILL);
  // A turn of the sibling's loop while (most likely) no replacement is
  // ready: before the supervisor told it, this is where it began taking new
  // connections to refuse them, and it went on until a later turn.
  ASSERT_TRUE(of_sibling.front()->send(kGetEcho));
  ASSERT_TRUE(of_sibling.front()->read_response()) << server.log();
  ASSERT_GT(wait_replaced(server, title, victim, 5s), 0) << server.log();
  // One line from the full sibling per event: the death (refusing, or
  // already leaving them to the replacement if it was ready by then), then
  // the replacement's readiness.
  const std::string said = "at network.max_connections (4): new connections ";
  ASSERT_TRUE(wait_log_count(server, said, 2, 5s)) << server.log();
  const std::string log = server.log();
  EXPECT_EQ(log.substr(log.rfind(said) + said.size(), 7), "go to r") << log;
  const pid_t replacement = server.child(title);
  for (int i = 0; i < 4; ++i) {
    Client c(server.port());
    ASSERT_TRUE(c.send(kGetEcho));
    auto r = c.read_response();
    ASSERT_TRUE(r) << server.log();
    EXPECT_EQ(r->status, 200) << "new connection " << i;
    EXPECT_EQ(served_by(*r, "network")["pid"], replacement) << "new connection " << i;
  }
  EXPECT_EQ(count_in_log(server, said), 2u) << server.log();
}

TEST(Lifecycle, APostTakenByAServiceThatDiesGets502OnAConnectionThatStaysOpen) {
  Shape shape;
  shape.type = "crash";
  Server server(config(shape), Binary::with_test_handlers);
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send("POST /crash HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"));
  const auto sent = Clock::now();
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502);
  EXPECT_LT(Clock::now() - sent, 2s);
  EXPECT_NE(r->headers["connection"], "close");
  ASSERT_TRUE(wait_log_count(server, "replacing it", 1, 5s));
  ASSERT_TRUE(c.send("GET /fast HTTP/1.1\r\nHost: t\r\n\r\n"));
  r = c.read_response(5s);
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
}

TEST(Lifecycle, AGetTakenByAServiceThatDiesIsRetriedOnceOnASibling) {
  Shape shape;
  shape.type = "crash";
  Server server(config(shape), Binary::with_test_handlers);
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send("GET /crash HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  // The retry reaches the sibling, which crashes too: then 502, not a third try.
  EXPECT_EQ(r->status, 502);
  ASSERT_TRUE(wait_log_count(server, "replacing it", 2, 5s)) << server.log();
  EXPECT_EQ(count_in_log(server, "killed by signal"), 2u);
}

TEST(Lifecycle, WithNoLiveSiblingARequestOnADeadServiceGets503) {
  Shape shape;
  shape.type = "crash";
  shape.service = 1;
  Server server(config(shape), Binary::with_test_handlers);
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send("GET /crash HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);  // safe to retry, but no sibling to retry on
  EXPECT_EQ(r->headers["retry-after"], "1");
  ASSERT_TRUE(wait_log_count(server, "replaced; serving", 1, 5s)) << server.log();
  ASSERT_TRUE(c.send("GET /fine HTTP/1.1\r\nHost: t\r\n\r\n"));
  r = c.read_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(Lifecycle, AHandlerThatNeverAnswersGets504AndItsProcessIsReplaced) {
  Shape shape;
  shape.type = "hang";
  shape.service = 1;
  shape.network = 1;
  shape.timeout_ms = 300;
  shape.kill_after_ms = 600;
  Server server(config(shape), Binary::with_test_handlers);
  ASSERT_TRUE(server.ready()) << server.log();
  const std::string title = "ringhttpd: service app g1 #0";
  const pid_t hung = server.child(title);
  Client c(server.port());
  ASSERT_TRUE(c.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 504);
  auto other = http_get(server.port(), "/fast");  // the process still answers others
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 200);
  const pid_t replacement = wait_replaced(server, title, hung, 5s);
  ASSERT_GT(replacement, 0) << server.log();
  EXPECT_TRUE(server.wait_for_log("past kill_after_ms", 10s));
  // Forked is not ready: until then a request finds no service (503).
  ASSERT_TRUE(wait_log_count(server, "replaced; serving", 1, 5s)) << server.log();
  auto after = http_get(server.port(), "/fast");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(after->body, "pid " + std::to_string(replacement) + "\n");
}

// Requests waiting in the request ring of a service process that never took
// them (it is stopped) move to its live sibling when it dies, whatever their
// method: they never started. Each gets its own answer, with its own body,
// and no connection is closed.
TEST(Lifecycle, RequestsADeadServiceNeverTookMoveToItsSiblingWhateverTheirMethod) {
  Shape shape;
  shape.network = 1;
  Server server(config(shape));
  ASSERT_TRUE(server.ready()) << server.log();
  const std::string title = "ringhttpd: service app g1 #0";
  const auto [stopped, sibling] = stop_first_of_two(server, "ringhttpd: service app g1 #");
  ASSERT_GT(stopped, 0) << server.log();
  struct Sent {
    std::unique_ptr<Client> client;
    std::string method, body;
  };
  const char* const methods[] = {"POST", "PUT", "DELETE", "PATCH"};
  std::vector<Sent> waiting;  // not answered yet: on the stopped process (or slow)
  // Batches on fresh connections, sent back to back: the network process
  // reads several at once. Dispatch prefers a process that is awake (its
  // loop ran lately) while its queue is at most kAwakeMargin (8) longer than
  // the shortest, and the stopped process never looks awake: a batch of 16
  // overflows the sibling's margin, so part of it lands on the stopped
  // process unless the sibling drains meanwhile. Until a batch does, which
  // the scoreboard tells.
  uint64_t on_stopped = 0;
  for (int batch = 0; batch < 20 && on_stopped == 0; ++batch) {
    std::vector<Sent> sent;
    for (int k = 0; k < 16; ++k) {
      Sent s{std::make_unique<Client>(server.port()), methods[(batch + k) % 4],
             "batch " + std::to_string(batch) + " request " + std::to_string(k)};
      std::string request = s.method;
      request.append(" /moved HTTP/1.1\r\nHost: t\r\nContent-Length: ")
          .append(std::to_string(s.body.size()))
          .append("\r\n\r\n")
          .append(s.body);
      ASSERT_TRUE(s.client->send(request));
      sent.push_back(std::move(s));
    }
    const auto answered_by = Clock::now() + 500ms;  // by the sibling, unless slow
    for (Sent& s : sent) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(answered_by - Clock::now());
      auto r = s.client->read_response(std::max(left, std::chrono::milliseconds(1)));
      if (!r) {
        waiting.push_back(std::move(s));
        continue;
      }
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(served_by(*r, "service")["pid"], sibling);
    }
    const std::optional<json> status = admin_status(server);
    ASSERT_TRUE(status) << server.log();
    on_stopped = service_row(*status, 1, 0)["inflight"].get<uint64_t>();
  }
  ASSERT_GT(on_stopped, 0u) << "no request reached the stopped process";
  ASSERT_GE(waiting.size(), on_stopped);
  ASSERT_EQ(::kill(stopped, SIGKILL), 0);
  const pid_t replacement = wait_replaced(server, title, stopped, 10s);
  ASSERT_GT(replacement, 0) << server.log();
  for (Sent& s : waiting) {
    auto r = s.client->read_response(5s);
    ASSERT_TRUE(r) << s.method << " " << s.body << "\n" << server.log();
    EXPECT_EQ(r->status, 200) << s.method << " " << s.body;
    EXPECT_NE(r->headers["connection"], "close");
    const json served = served_by(*r, "service");
    EXPECT_TRUE(served["pid"] == sibling || served["pid"] == replacement) << r->body;
    const json echo = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(echo.is_object()) << r->body;
    EXPECT_EQ(echo["method"], s.method);
    EXPECT_EQ(echo["body"], s.body);
    // The connection goes on.
    ASSERT_TRUE(s.client->send(kGetHealth));
    auto next = s.client->read_response(5s);
    ASSERT_TRUE(next);
    EXPECT_EQ(next->status, 200);
  }
  EXPECT_EQ(count_in_log(server, "killed by signal"), 1u) << server.log();
  std::printf("%zu requests were waiting (%llu on the stopped process); all answered\n",
              waiting.size(), static_cast<unsigned long long>(on_stopped));
}

// A handler stuck inside handle() (it never returns, so its process reads
// nothing more): the request gets 504 at timeout_ms; the process is killed
// no earlier than kill_after_ms after the request, and replaced; its sibling
// lives on, and a client of another path is answered throughout.
TEST(Lifecycle, AHandlerBlockedInsideHandleGets504AndOnlyItsProcessIsReplaced) {
  Shape shape;
  shape.type = "lifecycle";
  shape.network = 1;
  shape.timeout_ms = 300;
  shape.kill_after_ms = 1500;
  Server server(config(shape), Binary::with_test_handlers);
  ASSERT_TRUE(server.ready()) << server.log();
  const pid_t first[2] = {server.child("ringhttpd: service app g1 #0"),
                          server.child("ringhttpd: service app g1 #1")};
  ASSERT_GT(first[0], 0);
  ASSERT_GT(first[1], 0);
  // The other client: one keep-alive connection asking without pause. Each
  // request is answered within a bound, on the same connection; 200s are
  // counted, and 504s apart.
  std::atomic<bool> done{false};
  std::atomic<int> answers{0}, timeouts{0};
  std::atomic<bool> other_failed{false};
  std::string other_failure;  // read after the join
  std::thread other([&] {
    Client c(server.port());
    while (!done) {
      if (!c.send(get("/other"))) other_failure = "send failed";
      auto r = other_failure.empty() ? c.read_response(5s) : std::nullopt;
      if (other_failure.empty() && !r) other_failure = "no answer within 5 s";
      if (r && r->status != 200 && r->status != 504) {
        other_failure = "status " + std::to_string(r->status);
      }
      if (!other_failure.empty()) {
        other_failed = true;
        return;
      }
      ++(r->status == 200 ? answers : timeouts);
    }
  });
  const auto wait_answers = [&](int more) {
    const int until = answers + more;
    const auto deadline = Clock::now() + 10s;
    while (answers < until && Clock::now() < deadline && !other_failed) {
      std::this_thread::sleep_for(1ms);
    }
    return answers >= until;
  };
  EXPECT_TRUE(wait_answers(20));
  Client c(server.port());
  const auto sent = Clock::now();
  ASSERT_TRUE(c.send(get("/block")));
  auto r = c.read_response(5s);
  const auto answered = Clock::now();
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 504);
  // (The server counts whole milliseconds: 1 ms early is the same moment.)
  EXPECT_GE(answered - sent, 300ms - kClockSlack) << "504 before timeout_ms";
  ASSERT_TRUE(server.wait_for_log("blocks in handle()", 5s)) << server.log();
  const pid_t blocked = logged_pid(server, "blocks in handle()");
  ASSERT_TRUE(blocked == first[0] || blocked == first[1]) << blocked;
  const int index = blocked == first[0] ? 0 : 1;
  const std::string title = "ringhttpd: service app g1 #" + std::to_string(index);
  const std::string sibling_title = "ringhttpd: service app g1 #" + std::to_string(1 - index);
  // The first moment it is seen gone is after it was killed.
  while (alive(blocked)) {
    ASSERT_LT(Clock::now() - sent, 15s) << "not killed\n" << server.log();
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_GE(Clock::now() - sent, 1500ms - kClockSlack) << "killed before kill_after_ms";
  const pid_t replacement = wait_replaced(server, title, blocked, 10s);
  ASSERT_GT(replacement, 0) << server.log();
  EXPECT_TRUE(server.wait_for_log("past kill_after_ms", 5s)) << server.log();
  // After the next 200, every request answered 504 has been counted; later
  // ones were sent after the replacement.
  EXPECT_TRUE(wait_answers(1));
  const int timeouts_before_replaced = timeouts;
  EXPECT_TRUE(wait_answers(20));
  done = true;
  other.join();
  EXPECT_EQ(other_failure, "") << server.log();
  // A process stuck in handle() counts as awake until its heartbeat is
  // 10 ms old (dispatch prefers awake processes), so a request of the other
  // client sent in those first milliseconds can still land behind the stuck
  // one, and gets 504 (it is never taken, yet it is not moved to the sibling
  // at timeout_ms). At most that one: by then the stuck process looks asleep
  // and has the longer queue. None after the replacement.
  EXPECT_LE(timeouts.load(), 1);
  EXPECT_EQ(timeouts.load(), timeouts_before_replaced);
  std::printf("the other client: %d answers, %d of its requests got 504\n", answers.load(),
              timeouts.load());
  EXPECT_EQ(server.child(sibling_title), first[1 - index]) << "the sibling was replaced too";
  EXPECT_EQ(count_in_log(server, "replacing it"), 1u) << server.log();
  // The connection that got the 504 goes on.
  ASSERT_TRUE(c.send(get("/after")));
  r = c.read_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// A service whose process keeps dying (it exits on /exit): the first death
// is replaced at once, then each one after a back-off that doubles from
// 100 ms; one log line per step, and the status shows the streak and the
// wait while the replacement is pending.
TEST(Lifecycle, ACrashLoopIsLoggedOncePerBackOffStepAndShownInStatus) {
  const Shape shape = one_of_each("lifecycle");
  Server server(config(shape), Binary::with_test_handlers);
  ASSERT_TRUE(server.ready()) << server.log();
  const std::string title = "ringhttpd: service app g1 #0";
  Client c(server.port());
  for (int death = 1; death <= 5; ++death) {
    const pid_t before = server.child(title);
    ASSERT_GT(before, 0) << death;
    ASSERT_TRUE(c.send(get("/exit")));
    auto r = c.read_response(5s);
    ASSERT_TRUE(r) << death << "\n" << server.log();
    EXPECT_EQ(r->status, 503) << death;  // safe to retry, but no sibling to retry on
    if (death == 5) break;
    // Serving again (100, 200, 400 ms after deaths 2-4) before the next one.
    ASSERT_TRUE(wait_log_count(server, "replaced; serving", static_cast<size_t>(death), 10s))
        << server.log();
  }
  ASSERT_TRUE(server.wait_for_log("crash loop (5 failures in a row): replacing it in 800 ms", 5s))
      << server.log();
  // The fifth replacement waits 800 ms: the status shows it pending.
  const std::optional<json> status = admin_status(server);
  ASSERT_TRUE(status) << server.log();
  const json row = service_row(*status, 1, 0);
  ASSERT_TRUE(row.is_object()) << status->dump();
  EXPECT_GE(row["streak"].get<int>(), 2) << row;
  ASSERT_TRUE(row["restart_in_ms"].is_number()) << row;
  EXPECT_GT(row["restart_in_ms"].get<int64_t>(), 0) << row;
  EXPECT_EQ(row["restarts"], 5) << row;
  // One line per step of the back-off.
  EXPECT_EQ(count_in_log(server, "exited with status 3; replacing it\n"), 1u) << server.log();
  // (The words before the streak may vary: "died again", "crash loop".)
  int delay = 100;
  for (int streak = 2; streak <= 5; ++streak, delay *= 2) {
    std::string step = " (";
    step.append(std::to_string(streak))
        .append(" failures in a row): replacing it in ")
        .append(std::to_string(delay))
        .append(" ms\n");
    EXPECT_EQ(count_in_log(server, step), 1u) << server.log();
  }
  EXPECT_EQ(count_in_log(server, "exited with status 3; "), 5u) << server.log();
  EXPECT_EQ(count_in_log(server, " failures in a row): replacing it in "), 4u) << server.log();
  // And it serves again once the back-off has passed.
  ASSERT_TRUE(wait_log_count(server, "replaced; serving", 5, 10s)) << server.log();
  ASSERT_TRUE(c.send(get("/fine")));
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(Lifecycle, AHeaderThatWouldSplitTheResponseGets502) {
  Shape shape;
  shape.type = "crash";
  Server server(config(shape), Binary::with_test_handlers);
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  for (const char* path : {"/inject", "/badname"}) {
    ASSERT_TRUE(c.send(std::string("GET ") + path + " HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 502) << path;
    EXPECT_EQ(r->headers.count("x-injected"), 0u);
  }
  ASSERT_TRUE(c.send("GET /fine HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// Plays a service that lies in its records: with the real service process
// stopped, the test reads the request's id from the request ring and writes
// the response records itself. Each lie ends that request with 502, the
// connection stays usable, and the network process lives.
TEST(Lifecycle, AResponseThatLiesAboutItsLengthOrOrderGets502) {
  Shape shape;
  shape.network = 1;
  shape.service = 1;
  Server server(config(shape));
  ASSERT_TRUE(server.ready()) << server.log();
  const pid_t service = server.child("ringhttpd: service app g1 #0");
  const pid_t network = server.child("ringhttpd: network g1 #0");
  std::string error;
  auto segment =
      shm::Segment::open(server.segment_path().substr(std::string("/dev/shm/").size()), error);
  ASSERT_TRUE(segment) << error;
  ASSERT_EQ(::kill(service, SIGSTOP), 0);
  struct Lie {
    const char* what;
    uint64_t declared;     // the head's body length
    std::string first;     // body bytes in the head record
    bool body_record;      // then a body record...
    std::string more;      // ...with these bytes
    bool no_head = false;  // only a body record, no head before it
  };
  const Lie lies[] = {
      {"less body than declared", 10, "short", false, ""},
      {"more body than declared", 2, "ab", true, "cd"},
      {"a body before its head", 0, "", true, "xyz", true},
  };
  Client c(server.port());
  for (const Lie& lie : lies) {
    ASSERT_TRUE(c.send(kGetEcho));
    // The request record, waiting for the stopped service.
    shm::Ring requests = segment->ring(0, 0, shm::Direction::request);
    shm::RecordView rec;
    const auto deadline = Clock::now() + 5s;
    bool found = false;
    uint64_t id = 0;
    while (Clock::now() < deadline && !found) {
      shm::Ring reader = requests.reader_after_consumer();
      while (reader.peek(rec)) {
        if (rec.type == proto::kRequestHead) id = rec.id, found = true;
        reader.pop();  // only this copy's position moves; the shared tail is
                       // the stopped service's, and stays
      }
      if (!found) std::this_thread::sleep_for(1ms);
    }
    ASSERT_TRUE(found) << lie.what;
    shm::Ring responses = segment->ring(0, 0, shm::Direction::response);
    std::string head;
    ASSERT_TRUE(proto::encode_response_head(200, {}, lie.declared, head));
    head += lie.first;
    if (!lie.no_head) {
      ASSERT_TRUE(responses.try_push(proto::kResponseHead, lie.body_record ? 0 : proto::kRecordEnd,
                                     id, head));
    }
    if (lie.body_record) {
      ASSERT_TRUE(responses.try_push(proto::kResponseBody, proto::kRecordEnd, id, lie.more));
    }
    auto r = c.read_response(5s);
    ASSERT_TRUE(r) << lie.what << "\n" << server.log();
    EXPECT_EQ(r->status, 502) << lie.what;
  }
  EXPECT_EQ(server.child("ringhttpd: network g1 #0"), network) << "the reader must survive";
  EXPECT_TRUE(server.wait_for_log("bad response", 10s)) << server.log();
  // The stopped service's view of its response ring is now stale (the test
  // wrote behind its back): replace it rather than let it write over ours.
  ::kill(service, SIGKILL);
  ASSERT_GT(wait_replaced(server, "ringhttpd: service app g1 #0", service, 5s), 0) << server.log();
  // Forked is not ready: until then a request finds no service (503).
  ASSERT_TRUE(wait_log_count(server, "replaced; serving", 1, 5s)) << server.log();
  ASSERT_TRUE(c.send(kGetEcho));
  auto r = c.read_response(5s);
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
}

TEST(Lifecycle, AServiceThatCorruptsItsRingIsReplacedAndTheReaderLivesOn) {
  Shape shape;
  shape.network = 1;
  Server server(config(shape));
  ASSERT_TRUE(server.ready()) << server.log();
  const std::string title = "ringhttpd: service app g1 #0";
  const pid_t writer = server.child(title);
  const pid_t reader = server.child("ringhttpd: network g1 #0");
  std::string error;
  auto segment =
      shm::Segment::open(server.segment_path().substr(std::string("/dev/shm/").size()), error);
  ASSERT_TRUE(segment) << error;
  // Play the buggy service: publish a head that is not on a record boundary.
  shm::RingHeader* h = segment->ring(0, 0, shm::Direction::response).header_for_tests();
  std::atomic_ref<uint64_t>(h->head).fetch_add(8);
  int ok = 0;
  for (int i = 0; i < 40 && server.child(title) == writer; ++i) {
    auto r = http_get(server.port(), "/echo");
    ASSERT_TRUE(r);
    ok += r->status == 200;
  }
  ASSERT_GT(wait_replaced(server, title, writer, 5s), 0) << server.log();
  EXPECT_EQ(server.child("ringhttpd: network g1 #0"), reader) << "the reader must survive";
  EXPECT_TRUE(server.wait_for_log("wrote a ring", 10s)) << server.log();
  for (int i = 0; i < 10; ++i) {
    auto r = http_get(server.port(), "/echo");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
}

// Plays a child that rewrites the segment's layout: the header's counts and
// offsets and the ring table (the reviewer's values, which made the
// supervisor fault in `ctl status`, abort in `ctl metrics` and fault when
// it replaced a process). The supervisor and every new child work from the
// layout the supervisor created, so all of it goes on as before.
TEST(Lifecycle, AChildThatRewritesTheSegmentLayoutCannotTakeDownTheSupervisor) {
  Shape shape;
  shape.network = 1;
  shape.service = 1;
  Server server(config(shape));
  ASSERT_TRUE(server.ready()) << server.log();
  std::string error;
  auto segment =
      shm::Segment::open(server.segment_path().substr(std::string("/dev/shm/").size()), error);
  ASSERT_TRUE(segment) << error;
  shm::SegmentHeader& h = segment->header_for_writer();
  auto* table =
      reinterpret_cast<shm::RingEntry*>(reinterpret_cast<std::byte*>(&h) + h.rings_offset);
  table[0].offset = 0x100000000000ull;
  h.n_network = h.n_service = h.n_routes = 0xffffffffu;
  h.slots_offset = h.rings_offset = h.routes_offset = 1ull << 44;

  const std::optional<json> status = admin_status(server);
  ASSERT_TRUE(status) << server.log();
  EXPECT_EQ((*status)["processes"].size(), 2u) << *status;
  std::string metrics;
  EXPECT_EQ(run_binary({"ctl", "--socket", server.workdir().admin_socket(), "metrics"}, metrics), 0)
      << metrics << server.log();
  EXPECT_NE(metrics.find("ringhttpd_process_up{role=\"service\",service=\"app\",index=\"0\"} 1"),
            std::string::npos)
      << metrics;
  // A death of each role: the supervisor writes the slot, resets the rings
  // and forks the replacement, which checks and uses its rings.
  for (const std::string title : {"ringhttpd: service app g1 #0", "ringhttpd: network g1 #0"}) {
    const pid_t old = server.child(title);
    ASSERT_GT(old, 0) << title;
    ASSERT_EQ(::kill(old, SIGKILL), 0);
    ASSERT_GT(wait_replaced(server, title, old, 10s), 0) << title << "\n" << server.log();
  }
  ASSERT_TRUE(wait_log_count(server, "replaced; serving", 2, 10s)) << server.log();
  const auto deadline = Clock::now() + 5s;
  int status_code = 0;
  while (status_code != 200 && Clock::now() < deadline) {
    auto r = http_get(server.port(), "/echo");
    if (r) status_code = r->status;
    if (status_code != 200) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(status_code, 200) << server.log();
  EXPECT_EQ(::kill(server.pid(), 0), 0) << "the supervisor must live";
  EXPECT_TRUE(admin_status(server)) << server.log();
}

// ---- reload ----------------------------------------------------------------

TEST(Reload, SighupStartsANewGenerationAndTheSameConnectionMovesToIt) {
  Server server(config(Shape{}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send(kGetEcho));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(served_by(*r, "network")["generation"], 1);
  const std::string g1_segment = server.segment_path();
  ::kill(server.pid(), SIGHUP);
  ASSERT_TRUE(server.wait_for_log("generation 2 serving", 10s)) << server.log();
  ASSERT_TRUE(server.wait_for_log("generation 1 ended", 10s)) << server.log();
  ASSERT_TRUE(c.send(kGetEcho));
  r = c.read_response();
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(served_by(*r, "network")["generation"], 2);
  EXPECT_EQ(served_by(*r, "service")["generation"], 2);
  EXPECT_EQ(server.segments().size(), 1u);
  for (const auto& [pid, title] : server.children()) {
    EXPECT_NE(title.find(" g2 "), std::string::npos) << title;
  }
}

// An idle connection's keep-alive timeout runs on across handoffs: reloads
// more often than keepalive_timeout_ms do not keep it open. Before, each
// adopt restarted the timer, so such a connection was never closed.
TEST(Reload, AnIdleConnectionTimesOutAcrossReloads) {
  Shape shape;
  shape.keepalive_ms = 2000;
  Server server(config(shape));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send(kGetHealth));
  ASSERT_TRUE(c.read_response());
  // Reloads one after the other (each waits for the last to serve) until
  // the connection is closed.
  std::atomic<bool> stop{false};
  std::atomic<int> reloads{0};
  std::thread reloader([&] {
    for (int g = 2; !stop; ++g) {
      ::kill(server.pid(), SIGHUP);
      if (!server.wait_for_log("generation " + std::to_string(g) + " serving", 10s)) return;
      ++reloads;
    }
  });
  const bool closed = c.closed_by_peer(8s);
  stop = true;
  reloader.join();
  EXPECT_TRUE(closed) << "an idle connection outlived 8 s of reloads with a 2 s keep-alive";
  EXPECT_GE(reloads.load(), 1) << server.log();
}

TEST(Reload, AnInvalidConfigKeepsTheOldGenerationServing) {
  Server server(config(Shape{}));
  ASSERT_TRUE(server.ready()) << server.log();
  json bad = json::parse(config(Shape{}));
  bad["routes"][1]["service"] = "ap";
  server.rewrite_config(bad.dump());
  ::kill(server.pid(), SIGHUP);
  ASSERT_TRUE(server.wait_for_log("keeps serving", 10s)) << server.log();
  EXPECT_NE(server.log().find("routes[1].service: no service named \"ap\""), std::string::npos)
      << server.log();
  auto r = http_get(server.port(), "/echo");
  ASSERT_TRUE(r);
  EXPECT_EQ(served_by(*r, "network")["generation"], 1);
  server.rewrite_config(config(Shape{}));
  ::kill(server.pid(), SIGHUP);
  ASSERT_TRUE(server.wait_for_log("generation 2 serving", 10s)) << server.log();
}

TEST(Reload, AListenerThatCannotBeBoundFailsTheReloadCleanly) {
  // A port held by this test: binding it again fails with EADDRINUSE.
  const int held = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(held, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(held, 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(held, reinterpret_cast<sockaddr*>(&a), &len);
  Server server(config(Shape{}));
  ASSERT_TRUE(server.ready()) << server.log();
  Shape more;
  more.extra_ports = {ntohs(a.sin_port)};
  server.rewrite_config(config(more));
  ::kill(server.pid(), SIGHUP);
  ASSERT_TRUE(server.wait_for_log("keeps serving", 10s)) << server.log();
  EXPECT_TRUE(server.wait_for_log("listeners[1]: bind", 10s)) << server.log();
  EXPECT_EQ(server.segments().size(), 1u);
  auto r = http_get(server.port(), "/echo");
  ASSERT_TRUE(r);
  EXPECT_EQ(served_by(*r, "network")["generation"], 1);
  ::close(held);
}

TEST(Reload, UnderLoadNoRequestFailsAndTheConnectionsReachTheLastGeneration) {
  Server server(config(Shape{}));
  ASSERT_TRUE(server.ready()) << server.log();
  Load load(server.port(), 50);
  ASSERT_TRUE(load.wait_responses(200, 10s));
  std::vector<long long> latencies;
  for (int i = 0; i < 20; ++i) {
    Shape next;
    next.network = 1 + i % 2;
    next.service = 1 + (i / 2) % 2;
    server.rewrite_config(config(next));
    const auto at = Clock::now();
    ::kill(server.pid(), SIGHUP);
    ASSERT_TRUE(server.wait_for_log("generation " + std::to_string(i + 2) + " serving", 15s))
        << server.log();
    latencies.push_back(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - at).count());
    ASSERT_TRUE(load.wait_responses(100, 10s)) << server.log();
  }
  ASSERT_TRUE(server.wait_for_log("generation 20 ended", 20s)) << server.log();
  // The same connections (no client reconnects here: one connection per
  // thread for its whole life) are now answered by the last generation. Two
  // more echoes each: the first may have been written by generation 20
  // before it ended and read by a busy client thread only now.
  ASSERT_TRUE(load.wait_every_connection_echoed(10s, 2)) << server.log();
  for (size_t i = 0; i < load.connections(); ++i) {
    EXPECT_EQ(load.generation_of(i), 21) << "connection " << i;
  }
  load.stop();
  EXPECT_EQ(load.failed(), 0) << load.first_failure() << "\n" << server.log();
  EXPECT_EQ(load.closed(), 0);
  std::sort(latencies.begin(), latencies.end());
  std::printf("SIGHUP to 'serving' over 20 reloads: p50 %lld us, p99 %lld us, max %lld us\n",
              latencies[latencies.size() / 2], latencies[latencies.size() * 99 / 100],
              latencies.back());
}

TEST(Reload, AHandedOverConnectionKeepsItsPipelinedBytes) {
  Server server(config(Shape{}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send(kGetEcho));
  ASSERT_TRUE(c.read_response());
  ::kill(server.pid(), SIGHUP);
  ASSERT_TRUE(server.wait_for_log("generation 2 serving", 10s)) << server.log();
  // Three requests in one write, the last one split: whichever generation
  // reads them, each is answered once and in order.
  ASSERT_TRUE(c.send(kGetEcho + kGetHealth + "GET /echo HTTP/1.1\r\nHo"));
  ASSERT_TRUE(c.send("st: t\r\n\r\n"));
  for (int i = 0; i < 3; ++i) {
    auto r = c.read_response();
    ASSERT_TRUE(r) << i << "\n" << server.log();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body == "ok\n", i == 1);
  }
}

// A request read by the old generation during its drain, behind one still
// in service on the same connection: the old generation answers the first,
// then hands the connection over with the second's bytes (read, not yet
// parsed), and the new generation answers it. In order, on the same
// connection, which stays open.
TEST(Reload, BytesReadDuringTheDrainGoWithTheConnectionToTheNewGeneration) {
  Shape shape;
  shape.type = "lifecycle";
  Server server(config(shape), Binary::with_test_handlers);
  ASSERT_TRUE(server.ready()) << server.log();
  WorkDir dir;
  const std::string release = dir.path() + "/release";
  Client c(server.port());
  ASSERT_TRUE(c.send(get("/first")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  ASSERT_EQ(served_by(*r, "network")["generation"], 1);
  ASSERT_TRUE(c.send(get("/hold?until=" + release)));
  ASSERT_TRUE(server.wait_for_log("holds " + release, 10s)) << server.log();
  ::kill(server.pid(), SIGHUP);
  ASSERT_TRUE(server.wait_for_log("generation 2 serving", 10s)) << server.log();
  ASSERT_TRUE(c.send(get("/second")));
  // Generation 1 has read it (the socket holds nothing unread) and still owes
  // the held answer, so it keeps the connection.
  ASSERT_TRUE(wait_server_read_all(server.port(), c.local_port(), 10s));
  std::ofstream(release).put('\n');
  r = c.read_response(10s);
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->headers["connection"], "close");
  EXPECT_NE(r->body.find("\"path\":\"/hold\""), std::string::npos) << r->body;
  EXPECT_EQ(served_by(*r, "network")["generation"], 1) << r->body;
  EXPECT_EQ(served_by(*r, "service")["generation"], 1) << r->body;
  r = c.read_response(10s);
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->headers["connection"], "close");
  EXPECT_NE(r->body.find("\"path\":\"/second\""), std::string::npos) << r->body;
  EXPECT_EQ(served_by(*r, "network")["generation"], 2) << r->body;
  EXPECT_EQ(served_by(*r, "service")["generation"], 2) << r->body;
  ASSERT_TRUE(server.wait_for_log("generation 1 ended", 10s)) << server.log();
  ASSERT_TRUE(c.send(get("/third")));
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(served_by(*r, "network")["generation"], 2);
}

// Two requests pipelined before the SIGHUP, the first held in a service of
// generation 1: generation 1 has read and sent on both, answers both in
// order once the first is let go, and only then hands the connection over;
// the next request is the new generation's.
TEST(Reload, ABusyConnectionWithAPipelinedRequestMovesAfterItsLastAnswer) {
  Shape shape;
  shape.type = "lifecycle";
  Server server(config(shape), Binary::with_test_handlers);
  ASSERT_TRUE(server.ready()) << server.log();
  WorkDir dir;
  const std::string release = dir.path() + "/release";
  Client c(server.port());
  ASSERT_TRUE(c.send(get("/hold?until=" + release) + get("/second")));
  ASSERT_TRUE(server.wait_for_log("holds " + release, 10s)) << server.log();
  ASSERT_TRUE(wait_server_read_all(server.port(), c.local_port(), 10s));
  ::kill(server.pid(), SIGHUP);
  ASSERT_TRUE(server.wait_for_log("generation 2 serving", 10s)) << server.log();
  std::ofstream(release).put('\n');
  for (const char* path : {"/hold", "/second"}) {
    auto r = c.read_response(10s);
    ASSERT_TRUE(r) << path << "\n" << server.log();
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_NE(r->headers["connection"], "close") << path;
    EXPECT_NE(r->body.find(std::string("\"path\":\"") + path + "\""), std::string::npos) << r->body;
    EXPECT_EQ(served_by(*r, "service")["generation"], 1) << r->body;
  }
  ASSERT_TRUE(server.wait_for_log("generation 1 ended", 10s)) << server.log();
  ASSERT_TRUE(c.send(get("/third")));
  auto r = c.read_response();
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(served_by(*r, "network")["generation"], 2);
  EXPECT_EQ(served_by(*r, "service")["generation"], 2);
}

// A connection whose request is held by a service past drain_timeout_ms
// (500 ms): once the drain time is up it is closed (or answered with
// close), not before; generation 1 ends with nothing of it left, and
// generation 2 serves, the idle connection handed to it included.
TEST(Reload, AConnectionStuckPastTheDrainTimeoutIsClosedAndTheOldGenerationEnds) {
  Shape shape;
  shape.type = "lifecycle";
  shape.drain_ms = 500;
  shape.timeout_ms = 60000;  // no 504: only the drain ends it
  Server server(config(shape), Binary::with_test_handlers);
  ASSERT_TRUE(server.ready()) << server.log();
  WorkDir dir;
  const std::string never = dir.path() + "/never";
  Client stuck(server.port());
  ASSERT_TRUE(hold_until(server, stuck, never)) << server.log();
  Client idle(server.port());
  ASSERT_TRUE(idle.send(get("/idle")));
  auto r = idle.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(served_by(*r, "network")["generation"], 1);
  const auto hup = Clock::now();
  ::kill(server.pid(), SIGHUP);
  ASSERT_TRUE(server.wait_for_log("generation 2 serving", 10s)) << server.log();
  const std::optional<std::string> rest = stuck.read_until_close(10s);
  const auto ended = Clock::now();
  ASSERT_TRUE(rest) << "the stuck connection was neither closed nor answered\n" << server.log();
  if (!rest->empty()) {
    EXPECT_NE(rest->find("Connection: close"), std::string::npos) << *rest;
  }
  EXPECT_GE(ended - hup, 500ms - kClockSlack) << "ended before drain_timeout_ms";
  ASSERT_TRUE(server.wait_for_log("generation 1 ended", 10s)) << server.log();
  // Nothing of generation 1 left: every child is generation 2's.
  const auto deadline = Clock::now() + 10s;
  for (;;) {
    const auto children = server.children();
    const bool only_g2 = std::all_of(children.begin(), children.end(), [](const auto& kv) {
      return kv.second.find(" g2 ") != std::string::npos;
    });
    if (only_g2 && children.size() == 4) break;
    ASSERT_LT(Clock::now(), deadline) << children.size() << " children\n" << server.log();
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_EQ(server.segments().size(), 1u);
  ASSERT_TRUE(idle.send(get("/idle")));
  r = idle.read_response();
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(served_by(*r, "network")["generation"], 2);
  auto fresh = http_get(server.port(), "/fresh");
  ASSERT_TRUE(fresh);
  EXPECT_EQ(served_by(*fresh, "service")["generation"], 2);
  std::printf("stuck connection ended %lld ms after the SIGHUP (drain_timeout_ms 500)\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(ended - hup).count()));
}

// A reload that adds a listener and removes one: the new port serves, the
// removed one refuses connections once the old generation ended, and a
// connection on the unchanged listener goes on, now served by generation 2.
TEST(Reload, AddsAndRemovesListenersWhileAnUnchangedOneKeepsItsConnections) {
  const int removed = free_port();
  Shape before;
  before.extra_ports = {removed};
  Server server(config(before));
  ASSERT_TRUE(server.ready()) << server.log();
  Client kept(server.port());
  ASSERT_TRUE(kept.send(kGetEcho));
  auto r = kept.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(served_by(*r, "network")["generation"], 1);
  auto on_removed = http_get(removed, "/echo");
  ASSERT_TRUE(on_removed) << "the second listener does not serve";
  int added = free_port();
  while (added == removed) added = free_port();
  Shape after;
  after.extra_ports = {added};
  server.rewrite_config(config(after));
  ::kill(server.pid(), SIGHUP);
  ASSERT_TRUE(server.wait_for_log("generation 2 serving", 10s)) << server.log();
  ASSERT_TRUE(server.wait_for_log("generation 1 ended", 10s)) << server.log();
  ASSERT_TRUE(kept.send(kGetEcho));
  r = kept.read_response();
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(served_by(*r, "network")["generation"], 2);
  auto on_added = http_get(added, "/echo");
  ASSERT_TRUE(on_added) << server.log();
  EXPECT_EQ(served_by(*on_added, "network")["generation"], 2);
  auto on_unchanged = http_get(server.port(), "/echo");
  ASSERT_TRUE(on_unchanged);
  EXPECT_EQ(served_by(*on_unchanged, "network")["generation"], 2);
  EXPECT_TRUE(refused(removed)) << "the removed listener still accepts";
}

// The network processes (pids) that answered `n` requests, each on a new
// connection.
std::set<int> network_pids_of_new_connections(int port, int n) {
  std::set<int> pids;
  for (int i = 0; i < n; ++i) {
    auto r = http_get(port, "/echo");
    if (!r) return {};
    pids.insert(served_by(*r, "network")["pid"].get<int>());
  }
  return pids;
}

// With reuseport each network process has its own socket: the kernel spreads
// new connections over them. A reload to fewer or more processes closes no
// socket (a closed one would reset the connections in its queue), so a
// client opening a connection per request sees no failure across them.
TEST(Reload, AReuseportListenerSpreadsNewConnectionsAndLosesNoneAcrossReloads) {
  Shape shape;
  shape.reuseport = true;
  Server server(config(shape));
  ASSERT_TRUE(server.ready()) << server.log();
  EXPECT_NE(server.log().find(" (reuseport); generation 1"), std::string::npos) << server.log();
  EXPECT_EQ(network_pids_of_new_connections(server.port(), 40).size(), 2u);

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      while (!stop) {
        auto r = http_get(server.port(), "/healthz");
        ++(r && r->status == 200 ? ok : failed);
      }
    });
  }
  const int counts[] = {1, 3, 2};
  for (int i = 0; i < 3; ++i) {
    const int before = ok;
    shape.network = counts[i];
    server.rewrite_config(config(shape));
    ::kill(server.pid(), SIGHUP);
    ASSERT_TRUE(server.wait_for_log("generation " + std::to_string(i + 2) + " serving", 15s))
        << server.log();
    ASSERT_TRUE(server.wait_for_log("generation " + std::to_string(i + 1) + " ended", 15s))
        << server.log();
    const auto deadline = Clock::now() + 10s;
    while (ok < before + 200 && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  }
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed, 0) << server.log();
  EXPECT_GT(ok, 600);
  // Back at 2 processes, both take new connections again.
  EXPECT_EQ(network_pids_of_new_connections(server.port(), 40).size(), 2u);
}

// A network process at max_connections leaves a shared listener to its
// siblings, but no sibling can accept from its own reuseport socket: what
// waits there gets 503 at once, not a wait in the backlog.
TEST(Limits, AFullProcessAnswers503OnItsOwnReuseportSocket) {
  Shape shape;
  shape.reuseport = true;
  shape.max_connections = 1;
  Server server(config(shape));
  ASSERT_TRUE(server.ready()) << server.log();
  std::vector<std::unique_ptr<Client>> held;
  int served = 0, refused_503 = 0;
  for (int i = 0; i < 16; ++i) {
    held.push_back(std::make_unique<Client>(server.port()));
    ASSERT_TRUE(held.back()->send(kGetHealth));
    auto r = held.back()->read_response(5s);
    ASSERT_TRUE(r) << "connection " << i << " got no answer\n" << server.log();
    ++(r->status == 200 ? served : refused_503);
  }
  EXPECT_GE(served, 1);
  EXPECT_LE(served, 2);  // one per process
  EXPECT_EQ(served + refused_503, 16);
}

TEST(Reload, ANewGenerationThatDiesBeforeReadyIsRolledBack) {
  Server server(config(Shape{}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send(kGetEcho));
  ASSERT_TRUE(c.read_response());
  // Valid config, but its network processes cannot open the access log:
  // they exit during start, before ready.
  json bad = json::parse(config(Shape{}));
  bad["log"]["access"] = "/nonexistent-dir/access.log";
  server.rewrite_config(bad.dump());
  ::kill(server.pid(), SIGHUP);
  ASSERT_TRUE(server.wait_for_log("keeps serving", 10s)) << server.log();
  EXPECT_TRUE(server.wait_for_log("before it was ready", 10s)) << server.log();
  ASSERT_TRUE(server.wait_for_log("generation 2 ended", 10s)) << server.log();
  EXPECT_EQ(server.segments().size(), 1u);
  ASSERT_TRUE(c.send(kGetEcho));  // the same connection, untouched
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(served_by(*r, "network")["generation"], 1);
  for (const auto& [pid, title] : server.children()) {
    EXPECT_NE(title.find(" g1 "), std::string::npos) << title;
  }
}

TEST(Reload, AStormOfSighupsEndsInOneGenerationWithNothingLeftOver) {
  Server server(config(Shape{}));
  ASSERT_TRUE(server.ready()) << server.log();
  for (int i = 0; i < 100; ++i) {
    ::kill(server.pid(), SIGHUP);
    std::this_thread::sleep_for(10ms);  // spread over one second, as the issue asks
  }
  // Settled: one segment, and every child of one generation, which serves.
  // All seen in one look at the children, whose titles must all be set (a
  // process just forked, or exiting, shows no title), and the generation
  // must be the one answering: a coalesced reload may still start after a
  // moment that looks settled.
  const auto deadline = Clock::now() + 30s;
  std::string last;  // what was seen last, for the failure message
  for (;;) {
    const auto children = server.children();
    std::set<std::string> gens;
    bool titled = true;
    for (const auto& [pid, title] : children) {
      const size_t g = title.find(" g"), hash = title.find(" #");
      if (g == std::string::npos || hash == std::string::npos || hash < g) {
        titled = false;
        break;
      }
      gens.insert(title.substr(g + 1, hash - g - 1));
    }
    last = std::to_string(children.size()) + " children, " + std::to_string(gens.size()) +
           " generations, " + std::to_string(server.segments().size()) + " segments";
    if (titled && children.size() == 4 && gens.size() == 1 && server.segments().size() == 1) {
      auto r = http_get(server.port(), "/echo");
      ASSERT_TRUE(r);
      std::string served = "g";
      served.append(std::to_string(served_by(*r, "network")["generation"].get<int>()));
      if (served == *gens.begin()) break;
      last.append("; served by ").append(served).append(", children of ").append(*gens.begin());
    }
    ASSERT_LT(Clock::now(), deadline) << last << "\n" << server.log();
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(server.log().find("reload failed"), std::string::npos) << server.log();
}

// ---- start and scale ----

TEST(Scale, NetworkProcessesFillUpTogetherBeforeAnyoneIsRefused) {
  Shape shape;
  shape.max_connections = 100;
  Server server(config(shape));
  ASSERT_TRUE(server.ready()) << server.log();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 200; ++i) {
    clients.push_back(std::make_unique<Client>(server.port()));
    ASSERT_TRUE(clients.back()->send(kGetHealth));
    auto r = clients.back()->read_response();
    ASSERT_TRUE(r) << i;
    ASSERT_EQ(r->status, 200) << "connection " << i << " refused before both were full";
  }
  Client extra(server.port());
  ASSERT_TRUE(extra.send(kGetHealth));
  auto r = extra.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  // One closes: the next client is served again.
  clients.front().reset();
  const auto deadline = Clock::now() + 5s;
  for (;;) {
    Client again(server.port());
    ASSERT_TRUE(again.send(kGetHealth));
    auto a = again.read_response();
    ASSERT_TRUE(a);
    if (a->status == 200) break;
    ASSERT_LT(Clock::now(), deadline) << "no room after a connection closed";
  }
}

TEST(Scale, OneHundredTwentyEightPlusOneHundredTwentyEightStartAndServe) {
  Shape shape;
  shape.network = 128;
  shape.service = 128;
  json big = json::parse(config(shape));
  big["services"][0]["ring_bytes"] = 8192;  // the least max_header_bytes 1024 allows
  big["network"]["max_header_bytes"] = 1024;
  // 256 processes on 2 cores take about 9 s under ASan with the suite's
  // parallel load: the service processes are given the harness's 20 s, as
  // an operator would give a start this large. The network processes keep
  // their fixed 10 s from the first fork; they are forked first, so they
  // are the first ready. How long it took is printed, not asserted.
  big["services"][0]["start_timeout_ms"] = 20000;
  const auto began = Clock::now();
  Server server(big.dump());
  ASSERT_TRUE(server.ready()) << server.log();
  std::printf(
      "128+128 processes ready in %lld ms\n",
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - began).count()));
  EXPECT_EQ(server.children().size(), 256u);
  for (int i = 0; i < 20; ++i) {
    auto r = http_get(server.port(), "/echo");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
}

// Processes whose parent is this test process (orphans come back to it: it
// is a child subreaper) and whose command line names ringhttpd.
std::vector<pid_t> orphaned_servers() {
  std::vector<pid_t> out;
  const std::string me = std::to_string(::getpid());
  std::error_code ignored;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ignored)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line) || line.rfind(')') == std::string::npos) continue;
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    char state;
    std::string ppid;
    rest >> state >> ppid;
    if (ppid != me) continue;
    std::ifstream cmd(e.path() / "cmdline");
    std::string cmdline;
    std::getline(cmd, cmdline);
    if (cmdline.find("ringhttpd") != std::string::npos) out.push_back(std::stoi(name));
  }
  return out;
}

TEST(Scale, ASigtermDuringALargeStartEndsItAtOnce) {
  Shape shape;
  shape.network = 128;
  shape.service = 128;
  json big = json::parse(config(shape));
  big["services"][0]["ring_bytes"] = 8192;  // the least max_header_bytes 1024 allows
  big["network"]["max_header_bytes"] = 1024;
  big["admin"]["socket"] = "";  // started without the harness's working directory
  TempFile file(big.dump());
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);  // a child left behind comes back here
  int pipefd[2];
  ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], STDERR_FILENO);
    ::execl(RINGHTTPD_BINARY, RINGHTTPD_BINARY, "serve", "-c", file.path().c_str(), nullptr);
    ::_exit(127);
  }
  ::close(pipefd[1]);
  // Wait until it has begun forking (its first child exists), then stop it.
  const auto began = Clock::now();
  for (;;) {
    std::ifstream children("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) +
                           "/children");
    pid_t first = 0;
    if (children >> first && first > 0) break;
    if (Clock::now() - began > 10s) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      FAIL() << "no child within 10 s";
    }
    std::this_thread::sleep_for(1ms);
  }
  const auto signalled = Clock::now();
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  const auto took = Clock::now() - signalled;
  std::string log;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) log.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  EXPECT_LT(took, 3s) << log;
  EXPECT_EQ(log.find("ready: listening"), std::string::npos) << "the start was not cut short";
  EXPECT_TRUE(WIFEXITED(status)) << status;
  // Nothing left behind: no process (the supervisor waited for its
  // children), no segment.
  const std::vector<pid_t> left = orphaned_servers();
  EXPECT_TRUE(left.empty()) << left.size() << " processes left\n" << log;
  for (pid_t p : left) ::kill(p, SIGKILL);
  wait_gone(left, 10s);
  const std::vector<std::string> segments = segments_of(pid);
  EXPECT_TRUE(segments.empty()) << segments.front();
  for (const std::string& s : segments) ::unlink(s.c_str());
  std::printf(
      "128+128 start stopped by SIGTERM in %lld ms\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
}

// ---- stop -----------------------------------------------------------------

// SIGTERM under 64 keep-alive connections sending without pause, 10 times.
// The stop began in every network process by the time connecting is
// refused (each one closes its listener copy when the stop reaches it, the
// supervisor closes its own): a request sent after that is answered with
// "Connection: close", so each connection reads at most one keep-alive
// response after it (the one in flight then). Every connection ends after a
// response that says close, closed by the server, no request lost; the
// server exits within drain_timeout_ms (plus a margin), leaving nothing.
TEST(Stop, SigtermUnderLoadLosesNoRequestAndEveryLaterResponseSaysClose) {
  Shape shape;
  shape.drain_ms = 5000;
  for (int round = 0; round < 10; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    Server server(config(shape));
    ASSERT_TRUE(server.ready()) << server.log();
    const pid_t supervisor = server.pid();
    std::vector<pid_t> kids;
    for (const auto& [pid, title] : server.children()) kids.push_back(pid);
    Load load(server.port(), 64);
    ASSERT_TRUE(load.wait_responses(300, 10s));
    // Every connection must be established before the listeners close: a
    // thread that only connects after the stop began is refused, rightly.
    ASSERT_TRUE(load.wait_every_connection_echoed(10s));
    const auto killed_at = Clock::now();
    ::kill(supervisor, SIGTERM);
    const std::optional<Clock::time_point> refused_at = wait_refused(server.port(), 10s);
    ASSERT_TRUE(refused_at) << server.log();
    ASSERT_TRUE(load.wait_ended(std::chrono::milliseconds(shape.drain_ms) + 10s))
        << "connections still open\n"
        << server.log();
    const int status = server.stop(0, std::chrono::milliseconds(shape.drain_ms) + 5s);
    const auto exited_in = Clock::now() - killed_at;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    EXPECT_LT(exited_in, std::chrono::milliseconds(shape.drain_ms) + 5s);
    EXPECT_EQ(load.failed(), 0) << load.first_failure() << "\n" << server.log();
    size_t keep_alive_after_kill = 0;
    for (size_t i = 0; i < load.connections(); ++i) {
      int read_after = 0, sent_after = 0;
      for (const Load::Exchange& e : load.exchanges(i)) {
        if (!e.keep_alive) continue;
        keep_alive_after_kill += e.read > killed_at;
        read_after += e.read > *refused_at;
        sent_after += e.sent > *refused_at;
      }
      EXPECT_EQ(sent_after, 0) << "connection " << i
                               << ": keep-alive answer to a request sent after the stop began";
      EXPECT_LE(read_after, 1) << "connection " << i;
      EXPECT_TRUE(load.ended_by_server(i))
          << "connection " << i << " did not end with close, then closed by the server";
    }
    EXPECT_EQ(load.closed(), static_cast<int>(load.connections()));
    EXPECT_TRUE(wait_gone(kids, 10s));
    EXPECT_TRUE(segments_of(supervisor).empty());
    std::printf("round %d: %zu keep-alive answers read after the SIGTERM, stop seen in %lld ms\n",
                round, keep_alive_after_kill,
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(*refused_at - killed_at)
                        .count()));
    if (::testing::Test::HasFailure()) break;
  }
}

// SIGQUIT: a fast stop, even with a request held in a service and a long
// drain_timeout_ms: the server exits at once (a graceful stop would wait
// for the held request), and nothing is left: no child process, no
// segment, no admin socket file; the clients' connections are closed.
TEST(Stop, SigquitStopsAtOnceAndLeavesNothingBehind) {
  Shape shape;
  shape.type = "lifecycle";
  shape.drain_ms = 60000;
  shape.timeout_ms = 60000;
  Server server(config(shape), Binary::with_test_handlers);
  ASSERT_TRUE(server.ready()) << server.log();
  const pid_t supervisor = server.pid();
  std::vector<pid_t> kids;
  for (const auto& [pid, title] : server.children()) kids.push_back(pid);
  const std::string socket = server.workdir().admin_socket();
  ASSERT_TRUE(std::filesystem::exists(socket));
  ASSERT_FALSE(segments_of(supervisor).empty());
  WorkDir dir;
  const std::string never = dir.path() + "/never";
  Client held(server.port());
  ASSERT_TRUE(hold_until(server, held, never)) << server.log();
  Client idle(server.port());
  ASSERT_TRUE(idle.send(kGetHealth));
  ASSERT_TRUE(idle.read_response());
  const auto signalled = Clock::now();
  const int status = server.stop(SIGQUIT, 20s);
  const auto took = Clock::now() - signalled;
  ASSERT_NE(status, -1) << server.log();
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_LT(took, 10s) << "waited like a graceful stop";
  EXPECT_TRUE(wait_gone(kids, 5s));
  EXPECT_TRUE(segments_of(supervisor).empty());
  EXPECT_FALSE(std::filesystem::exists(socket));
  // The held request's connection closes. It may get an answer first (503:
  // no service process left to take it over) when its network process
  // learns of the service process's end before it ends itself.
  const std::optional<std::string> rest = held.read_until_close(5s);
  ASSERT_TRUE(rest.has_value());
  if (!rest->empty()) {
    EXPECT_TRUE(rest->starts_with("HTTP/1.1 503 ") || rest->starts_with("HTTP/1.1 502 ")) << *rest;
  }
  EXPECT_TRUE(idle.closed_by_peer(5s));
  std::printf(
      "SIGQUIT to exit: %lld ms\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
}

// A fast stop tells every process at once and kills what has not exited
// 1 s later: a stuck network process and a stuck service process are
// killed together. Before, the network processes were waited for first,
// then the service processes, 1 s each: 2 s.
TEST(Stop, AFastStopKillsStuckProcessesOfBothRolesAfterOneSecond) {
  Shape shape;
  shape.network = 2;
  shape.service = 2;
  Server server(config(shape));
  ASSERT_TRUE(server.ready()) << server.log();
  const auto [network, network_sibling] = stop_first_of_two(server, "ringhttpd: network g1 #");
  const auto [service, service_sibling] = stop_first_of_two(server, "ringhttpd: service app g1 #");
  ASSERT_GT(network, 0);
  ASSERT_GT(service, 0);
  const auto signalled = Clock::now();
  ASSERT_EQ(::kill(server.pid(), SIGINT), 0);
  // Until both stuck processes are gone (not the supervisor's own exit):
  // 1 s, then the kill; 2 s would be two waits in a row.
  EXPECT_TRUE(wait_gone({network, service}, 5s));
  const auto took = Clock::now() - signalled;
  EXPECT_LT(took, 1800ms) << server.log();
  ASSERT_NE(server.stop(SIGINT, 10s), -1) << server.log();
  EXPECT_TRUE(wait_gone({network_sibling, service_sibling}, 5s));
  EXPECT_EQ(count_in_log(server, "did not stop in time; killing it"), 2u) << server.log();
}

// A handler still holding a request when its process stops drops the
// responder as it is destroyed, and that answers 500 through the stream:
// the handler must go while the streams, lists and rings it reaches still
// exist (before, ~ServiceProcess destroyed them first: a use after free that
// ASan turns into an abort). Every service process exits with status 0.
TEST(Stop, AServiceHoldingARequestAtStopExitsCleanly) {
  Shape shape;
  shape.type = "lifecycle";
  shape.service = 1;
  shape.drain_ms = 300;  // the held request is given up at the drain timeout
  shape.timeout_ms = 60000;
  json cfg = json::parse(config(shape));
  cfg["log"] = {{"level", "debug"}};  // a stopping child's exit is logged at debug
  Server server(cfg.dump(), Binary::with_test_handlers);
  ASSERT_TRUE(server.ready()) << server.log();
  WorkDir dir;
  const std::string never = dir.path() + "/never";
  Client held(server.port());
  ASSERT_TRUE(hold_until(server, held, never)) << server.log();
  const int status = server.stop(SIGTERM, 20s);
  ASSERT_NE(status, -1) << server.log();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  const std::string log = server.log();
  EXPECT_NE(log.find("service app g1 #0"), std::string::npos) << log;
  EXPECT_NE(log.find("exited with status 0"), std::string::npos) << log;
  EXPECT_EQ(log.find("killed by signal"), std::string::npos) << log;
  EXPECT_EQ(log.find("exited with status 1"), std::string::npos) << log;
  EXPECT_TRUE(held.closed_by_peer(5s));
}

}  // namespace
}  // namespace ringhttpd::testing
