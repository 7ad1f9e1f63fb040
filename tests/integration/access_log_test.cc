// The access log against the real binary: one line per response in the file
// log.access names (combined and JSON), written within about a second, and
// a new file after logrotate renames the old one and sends SIGUSR1; a line
// too for a response the connection ended before it was written.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/integration/server_harness.h"

namespace ringhttpd::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string config(const std::string& path, const std::string& format) {
  return json{
      {"listeners", {{{"address", "127.0.0.1"}, {"port", 0}}}},
      {"network", {{"processes", 2}}},
      {"services", {{{"name", "app"}, {"processes", 1}}}},
      {"routes",
       {{{"path", "/healthz"}, {"respond", {{"status", 200}, {"body", "ok\n"}}}},
        {{"path", "/echo"}, {"service", "app"}}}},
      {"log", {{"access", path}, {"format", format}}},
  }
      .dump();
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Waits until the file has at least `n` lines (written within about 1 s).
std::vector<std::string> wait_lines(const std::string& path, size_t n) {
  const auto deadline = Clock::now() + 10s;
  for (;;) {
    auto lines = lines_of(path);
    if (lines.size() >= n || Clock::now() > deadline) return lines;
    std::this_thread::sleep_for(20ms);
  }
}

struct TempDir {
  TempDir() {
    char t[] = "/tmp/ringhttpd-access-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
  std::string path;
};

TEST(AccessLogFile, OneCombinedLinePerResponse) {
  TempDir dir;
  const std::string path = dir.path + "/access.log";
  Server server(config(path, "combined"));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(
      c.send("GET /healthz HTTP/1.1\r\nHost: t\r\nUser-Agent: test-agent\r\n\r\n"
             "GET /echo?x=1 HTTP/1.1\r\nHost: t\r\nReferer: http://r/\r\n\r\n"
             "HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
             "GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(c.read_response());
  ASSERT_TRUE(c.read_response());
  ASSERT_TRUE(c.read_response(10s, true));
  ASSERT_TRUE(c.read_response());
  Client bad(server.port());
  ASSERT_TRUE(bad.send("GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n"));
  ASSERT_TRUE(bad.read_response());
  const auto lines = wait_lines(path, 5);
  ASSERT_EQ(lines.size(), 5u) << server.log();
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  EXPECT_NE(all.find("\"GET /healthz HTTP/1.1\" 200 3 \"-\" \"test-agent\""), std::string::npos)
      << all;
  EXPECT_NE(all.find("\"GET /echo?x=1 HTTP/1.1\" 200 "), std::string::npos) << all;
  EXPECT_NE(all.find("\"http://r/\""), std::string::npos) << all;
  EXPECT_NE(all.find("\"HEAD /healthz HTTP/1.1\" 200 0 "), std::string::npos) << all;
  EXPECT_NE(all.find("\"GET /nothing HTTP/1.1\" 404 "), std::string::npos) << all;
  EXPECT_NE(all.find("\"-\" 400 "), std::string::npos) << all;
  EXPECT_EQ(lines[0].rfind("127.0.0.1 - - [", 0), 0u) << lines[0];
}

TEST(AccessLogFile, JsonLinesAndANewFileAfterRotation) {
  TempDir dir;
  const std::string path = dir.path + "/access.log";
  Server server(config(path, "json"));
  ASSERT_TRUE(server.ready()) << server.log();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(http_get(server.port(), "/echo"));
  auto lines = wait_lines(path, 3);
  ASSERT_EQ(lines.size(), 3u);
  for (const auto& l : lines) {
    const json j = json::parse(l);
    EXPECT_EQ(j["status"], 200);
    EXPECT_EQ(j["target"], "/echo");
    // Microseconds: a trip through a service process is never 0.000 ms.
    EXPECT_GT(j["duration_ms"].get<double>(), 0.0) << l;
  }
  ASSERT_EQ(::rename(path.c_str(), (path + ".1").c_str()), 0);
  ::kill(server.pid(), SIGUSR1);
  ASSERT_TRUE(server.wait_for_log("reopening log files", 5s));
  // Every network process reopens on its next loop iteration; requests
  // until a line lands in the new file.
  const auto deadline = Clock::now() + 10s;
  while (lines_of(path).empty() && Clock::now() < deadline) {
    ASSERT_TRUE(http_get(server.port(), "/healthz"));
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_FALSE(lines_of(path).empty()) << "nothing written to the new file";
  // The old file keeps its three lines, and may end with /healthz lines a
  // network process wrote before it took the reopen (one loop iteration).
  const auto old_lines = lines_of(path + ".1");
  ASSERT_GE(old_lines.size(), 3u);
  for (size_t i = 0; i < old_lines.size(); ++i) {
    EXPECT_EQ(json::parse(old_lines[i])["target"], i < 3 ? "/echo" : "/healthz") << i;
  }
}

// A full disk (/dev/full fails every write with ENOSPC) loses log lines,
// never requests; the loss is in the error log and in the metrics.
TEST(AccessLogFile, AFullDiskLosesLinesNotRequests) {
  Server server(config("/dev/full", "combined"));
  ASSERT_TRUE(server.ready()) << server.log();
  for (int i = 0; i < 20; ++i) {
    const auto r = http_get(server.port(), i % 2 ? "/echo" : "/healthz");
    ASSERT_TRUE(r) << server.log();
    EXPECT_EQ(r->status, 200);
  }
  // Buffered lines are written within about a second.
  ASSERT_TRUE(
      server.wait_for_log("lines lost (write: No space left on device); the requests "
                          "were answered",
                          10s))
      << server.log();
  EXPECT_NE(server.log().find("log.access: /dev/full: "), std::string::npos) << server.log();
  const auto r = http_get(server.port(), "/healthz");
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
}

// A network process that replaces a dead one while the log's directory is
// gone (moved away) serves without the log rather than failing its start
// over and over; once the directory is back, its lines reach the file.
TEST(AccessLogFile, AReplacementServesWhileTheLogCannotBeOpened) {
  TempDir dir;
  const std::string logs = dir.path + "/logs";
  ASSERT_EQ(::mkdir(logs.c_str(), 0755), 0);
  auto cfg = json::parse(config(logs + "/access.log", "combined"));
  cfg["network"]["processes"] = 1;
  Server server(cfg.dump());
  ASSERT_TRUE(server.ready()) << server.log();
  ASSERT_EQ(::rename(logs.c_str(), (logs + ".old").c_str()), 0);
  const pid_t network = server.child("ringhttpd: network g1 #0");
  ASSERT_GT(network, 0);
  ASSERT_EQ(::kill(network, SIGKILL), 0);
  ASSERT_TRUE(server.wait_for_log("serving without it until it opens", 10s)) << server.log();
  auto r = http_get(server.port(), "/healthz");
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(::rename((logs + ".old").c_str(), logs.c_str()), 0);
  Client c(server.port());
  ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: t\r\nUser-Agent: back-again\r\n\r\n"));
  ASSERT_TRUE(c.read_response());
  const auto deadline = Clock::now() + 10s;
  bool found = false;
  while (!found && Clock::now() < deadline) {
    for (const std::string& line : wait_lines(logs + "/access.log", 1)) {
      found = found || line.find("back-again") != std::string::npos;
    }
    if (!found) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(found) << server.log();
}

// A service route of the test binary's handler `type` (`lifecycle`: GET
// /hold?until=F holds a request until file F exists; `stream`: GET
// /bytes?n=N), the access log in JSON.
std::string test_handler_config(const std::string& path, const std::string& type) {
  return json{
      {"listeners", {{{"address", "127.0.0.1"}, {"port", 0}}}},
      {"network", {{"processes", 1}, {"drain_timeout_ms", 300}}},
      {"services", {{{"name", "app"}, {"type", type}, {"processes", 1}}}},
      {"routes", {{{"path", "/"}, {"service", "app"}}}},
      {"log", {{"access", path}, {"format", "json"}}},
      {"admin", {{"socket", ""}}},
  }
      .dump();
}

// A client that resets its connection while its request waits for a
// service is gone: the request is cancelled at once and logged as 499
// (nginx's "client closed request"). Before, nothing was logged.
TEST(AccessLogFile, ARequestWhoseClientResetsIsLogged499) {
  TempDir dir;
  const std::string path = dir.path + "/access.log";
  Server server(test_handler_config(path, "lifecycle"), Binary::with_test_handlers);
  ASSERT_TRUE(server.ready()) << server.log();
  const std::string never = dir.path + "/never";
  const std::string target = "/hold?until=" + never;
  {
    Client c(server.port());
    ASSERT_TRUE(c.send("GET " + target + " HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(server.wait_for_log("holds " + never, 10s)) << server.log();
    const linger reset{1, 0};
    ASSERT_EQ(::setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
  }  // closed: RST
  const auto lines = wait_lines(path, 1);
  ASSERT_EQ(lines.size(), 1u) << server.log();
  const json j = json::parse(lines[0]);
  EXPECT_EQ(j["status"], 499) << lines[0];
  EXPECT_EQ(j["target"], target);
  EXPECT_EQ(j["bytes"], 0);
}

// A request still arriving when its connection ends was owed an answer
// too: a line. Its client resets it while its body is awaited (a fast-path
// answer waits for the body's end; the 100 Continue says its head was
// read): 499, with its request line. A head cut short at the stop's
// deadline: 444, "-". A head too slow, answered 408: that line alone.
TEST(AccessLogFile, ARequestStillArrivingWhenItsConnectionEndsIsLogged) {
  TempDir dir;
  const std::string path = dir.path + "/access.log";
  json cfg = json::parse(config(path, "json"));
  cfg["network"]["request_timeout_ms"] = 2000;
  cfg["network"]["drain_timeout_ms"] = 300;
  Server server(cfg.dump());
  ASSERT_TRUE(server.ready()) << server.log();
  {
    Client c(server.port());
    ASSERT_TRUE(
        c.send("POST /healthz HTTP/1.1\r\nHost: t\r\nUser-Agent: ua\r\n"
               "Expect: 100-continue\r\nContent-Length: 100\r\n\r\n"));
    auto r = c.read_response(5s);
    ASSERT_TRUE(r) << server.log();
    ASSERT_EQ(r->status, 100);
    const linger reset{1, 0};
    ASSERT_EQ(::setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
  }  // closed: RST
  auto lines = wait_lines(path, 1);
  ASSERT_EQ(lines.size(), 1u) << server.log();
  json j = json::parse(lines[0]);
  EXPECT_EQ(j["status"], 499) << lines[0];
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["target"], "/healthz");
  EXPECT_EQ(j["user_agent"], "ua");
  EXPECT_EQ(j["bytes"], 0);

  Client slow(server.port());
  ASSERT_TRUE(slow.send("GET /healthz HTTP/1.1\r\nHost: t\r\n"));
  auto r = slow.read_response(5s);
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(slow.closed_by_peer(5s));

  Client cut(server.port());
  ASSERT_TRUE(cut.send("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Half: "));
  ASSERT_TRUE(wait_server_read_all(server.port(), cut.local_port(), 10s));
  EXPECT_NE(server.stop(SIGTERM), -1);
  lines = lines_of(path);  // the last flush is at the exit
  ASSERT_EQ(lines.size(), 3u) << server.log();
  EXPECT_EQ(json::parse(lines[1])["status"], 408) << lines[1];
  j = json::parse(lines[2]);
  EXPECT_EQ(j["status"], 444) << lines[2];
  EXPECT_EQ(j["method"], "") << lines[2];
  EXPECT_EQ(j["bytes"], 0);
}

// A download still going when the stop's deadline comes is cut, and its
// line says so: its status, and the body bytes that went out (fewer than
// the body). Before, the connection closed with no line at all. (The
// other ways a response is cut are decided by cut_outcome, unit-tested.)
TEST(AccessLogFile, AResponseCutAtTheStopDeadlineIsLoggedWithTheBytesSent) {
  TempDir dir;
  const std::string path = dir.path + "/access.log";
  Server server(test_handler_config(path, "stream"), Binary::with_test_handlers);
  ASSERT_TRUE(server.ready()) << server.log();
  constexpr uint64_t kBody = 64 << 20;
  Client c(server.port(), 16384);
  ASSERT_TRUE(c.send("GET /bytes?n=" + std::to_string(kBody) + " HTTP/1.1\r\nHost: t\r\n\r\n"));
  char some[4096];
  ASSERT_GT(::recv(c.fd(), some, sizeof some, 0), 0);  // it began; now nothing is read
  EXPECT_NE(server.stop(SIGTERM), -1);
  const auto lines = lines_of(path);  // the last flush is at the exit
  ASSERT_EQ(lines.size(), 1u) << server.log();
  const json j = json::parse(lines[0]);
  EXPECT_EQ(j["status"], 200) << lines[0];
  EXPECT_GT(j["bytes"].get<uint64_t>(), 0u) << lines[0];
  EXPECT_LT(j["bytes"].get<uint64_t>(), kBody) << lines[0];
}

// Whoever reads stderr may stop reading (a logger that stalls): then log
// lines are lost, never the event loops. With the access log on stderr and
// nobody reading it, every request is answered; the supervisor still
// handles a reload (which fails, and logs) and a stop; once stderr is read
// again, its next line says what it lost.
TEST(AccessLogStderr, AReaderThatStopsReadingCostsLinesNotRequests) {
  auto cfg = json::parse(config("stderr", "json"));
  cfg["network"]["processes"] = 1;
  cfg["routes"].push_back({{"path", "/metrics"}, {"metrics", true}});
  Launch launch;
  launch.stall_output = true;
  Server server(cfg.dump(), Binary::shipped, launch);
  ASSERT_TRUE(server.ready()) << server.log();
  const std::string agent(2000, 'a');  // 2 KB a line: the pipe (64 KiB) fills at once
  {
    Client c(server.port());
    for (int i = 0; i < 2000; ++i) {
      ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: t\r\nUser-Agent: " + agent + "\r\n\r\n"));
      auto r = c.read_response(5s);
      ASSERT_TRUE(r) << i;
      ASSERT_EQ(r->status, 200) << i;
    }
  }
  server.rewrite_config("{");
  ASSERT_EQ(::kill(server.pid(), SIGHUP), 0);
  const auto until = Clock::now() + 10s;
  bool failed = false;
  while (!failed && Clock::now() < until) {
    auto m = http_get(server.port(), "/metrics");
    ASSERT_TRUE(m);
    failed = m->body.find("ringhttpd_reloads_total{result=\"failed\"} 1") != std::string::npos;
  }
  EXPECT_TRUE(failed);
  server.resume_output();
  EXPECT_EQ(server.stop(SIGTERM, 10s), 0);
  EXPECT_TRUE(
      server.wait_for_log("earlier log lines of this process lost: stderr was not read", 5s))
      << server.log().substr(0, 2000);
}

TEST(AccessLogFile, AnUnwritablePathFailsTheStartNamingTheKey) {
  std::string out;
  TempFile file(config("/nonexistent-dir/access.log", "combined"));
  const int status = run_binary({"serve", "-c", file.path()}, out);
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("log.access"), std::string::npos) << out;
}

}  // namespace
}  // namespace ringhttpd::testing
