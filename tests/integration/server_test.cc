// The real binary end to end: fast path, service path through the rings,
// keep-alive, pipelining, a 1 MiB body, `check`, and clean stop / SIGKILL
// leaving no process and no segment behind.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>

#include "tests/integration/server_harness.h"

namespace ringhttpd::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string make_config(int network = 2, int service = 2, uint64_t ring_bytes = 1048576,
                        uint64_t max_body = 1048576) {
  const json config = {
      {"listeners", {{{"address", "127.0.0.1"}, {"port", 0}}}},
      {"network", {{"processes", network}, {"max_body_bytes", max_body}}},
      {"services",
       {{{"name", "app"}, {"type", "echo"}, {"processes", service}, {"ring_bytes", ring_bytes}}}},
      {"routes",
       {{{"path", "/healthz"}, {"respond", {{"status", 200}, {"body", "ok\n"}}}},
        {{"path", "/echo"}, {"service", "app"}}}},
      {"log", {{"level", "info"}}},
  };
  return config.dump();
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string request(const std::string& method, const std::string& target,
                    const std::string& body = "", const std::string& extra = "") {
  std::string r = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra;
  if (!body.empty() || method == "POST")
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

TEST(Server, FastPathAnswersFromTheNetworkProcess) {
  Server server(make_config());
  ASSERT_TRUE(server.ready()) << server.log();
  auto r = http_get(server.port(), "/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
  EXPECT_EQ(r->headers["content-type"], "text/plain");
  auto missing = http_get(server.port(), "/nowhere");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(Server, ServicePathEchoesTheRequestThroughTheRings) {
  Server server(make_config());
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send(request("GET", "/echo/a?x=1&y=2", "", "X-Test: yes\r\n")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->headers["content-type"], "application/json");
  const json doc = json::parse(r->body);
  EXPECT_EQ(doc["method"], "GET");
  EXPECT_EQ(doc["path"], "/echo/a");
  EXPECT_EQ(doc["query"], "x=1&y=2");
  EXPECT_EQ(doc["headers"]["X-Test"], "yes");
  EXPECT_EQ(doc["body_length"], 0);
  const auto kids = server.children();
  const pid_t network_pid = doc["network"]["pid"].get<pid_t>();
  const pid_t service_pid = doc["service"]["pid"].get<pid_t>();
  ASSERT_TRUE(kids.count(network_pid)) << doc.dump();
  ASSERT_TRUE(kids.count(service_pid)) << doc.dump();
  EXPECT_TRUE(kids.at(network_pid).starts_with("ringhttpd: network g1 #"));
  EXPECT_TRUE(kids.at(service_pid).starts_with("ringhttpd: service app g1 #"));
  EXPECT_EQ(doc["network"]["generation"], 1);
  EXPECT_EQ(doc["service"]["generation"], 1);
}

// nginx's binary upgrade signals are not ours: SIGUSR2's default would end
// the server; both are refused with a line, and nothing else changes.
TEST(Server, SignalsOfNginxsBinaryUpgradeAreIgnoredWithALine) {
  Server server(make_config(1, 1));
  ASSERT_TRUE(server.ready()) << server.log();
  for (int sig : {SIGUSR2, SIGWINCH}) {
    ASSERT_EQ(::kill(server.pid(), sig), 0);
    EXPECT_TRUE(server.wait_for_log(
        std::string(sig == SIGUSR2 ? "SIGUSR2" : "SIGWINCH") + ": not used by ringhttpd", 5s))
        << server.log();
  }
  auto r = http_get(server.port(), "/healthz");
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(server.stop(SIGTERM), 0);
}

TEST(Server, ProcessTitlesShowRoleGenerationAndIndex) {
  Server server(make_config(2, 2));
  ASSERT_TRUE(server.ready()) << server.log();
  std::multiset<std::string> titles;
  for (const auto& [pid, title] : server.children()) titles.insert(title);
  const std::multiset<std::string> expected = {
      "ringhttpd: network g1 #0", "ringhttpd: network g1 #1", "ringhttpd: service app g1 #0",
      "ringhttpd: service app g1 #1"};
  EXPECT_EQ(titles, expected);
}

// network.scheduling and services[].scheduling: both kinds of process run
// SCHED_BATCH by default (a wake-up does not preempt the process running on
// that CPU), SCHED_OTHER when "normal"; each key governs its own kind only.
TEST(Server, ProcessesRunTheConfiguredSchedulingPolicy) {
  for (const std::string network : {"batch", "normal"}) {
    for (const std::string service : {"batch", "normal"}) {
      json config = json::parse(make_config(2, 2));
      if (network == "normal") config["network"]["scheduling"] = "normal";
      if (service == "normal") config["services"][0]["scheduling"] = "normal";
      Server server(config.dump());
      ASSERT_TRUE(server.ready()) << server.log();
      int seen[2] = {0, 0};
      for (const auto& [pid, title] : server.children()) {
        const bool is_service = title.starts_with("ringhttpd: service");
        ++seen[is_service ? 1 : 0];
        const std::string& policy = is_service ? service : network;
        EXPECT_EQ(::sched_getscheduler(pid), policy == "batch" ? SCHED_BATCH : SCHED_OTHER)
            << title << " with network " << network << ", services " << service;
      }
      EXPECT_EQ(seen[0], 2);
      EXPECT_EQ(seen[1], 2);
    }
  }
}

TEST(Server, KeepAliveServesManyRequestsOnOneConnection) {
  Server server(make_config());
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(c.send(request("GET", i % 2 ? "/healthz" : "/echo/" + std::to_string(i))));
    auto r = c.read_response();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->headers["connection"], "keep-alive");
  }
}

TEST(Server, PipelinedRequestsAreAnsweredInOrder) {
  Server server(make_config());
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  std::string batch;
  for (int i = 0; i < 30; ++i) {
    batch += i % 3 == 0 ? request("GET", "/healthz") : request("GET", "/echo/" + std::to_string(i));
  }
  ASSERT_TRUE(c.send(batch));
  for (int i = 0; i < 30; ++i) {
    auto r = c.read_response();
    ASSERT_TRUE(r) << i;
    ASSERT_EQ(r->status, 200);
    if (i % 3 == 0) {
      EXPECT_EQ(r->body, "ok\n");
    } else {
      EXPECT_EQ(json::parse(r->body)["path"], "/echo/" + std::to_string(i));
    }
  }
}

TEST(Server, OneMebibyteBodyTravelsThroughSmallRings) {
  // 128 KiB rings (the least the default max_header_bytes allows): the body
  // crosses in many records, the producer waits for space, and the response
  // comes back in many records too.
  Server server(make_config(1, 1, 131072));
  ASSERT_TRUE(server.ready()) << server.log();
  std::string body(1 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + (i * 7) % 26);
  Client c(server.port());
  ASSERT_TRUE(c.send(request("POST", "/echo/upload", body)));
  auto r = c.read_response(30s);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body.substr(0, 200);
  const json doc = json::parse(r->body);
  EXPECT_EQ(doc["body_length"], body.size());
  EXPECT_TRUE(doc["body"] == body);
}

TEST(Server, BodyOverTheLimitIs413) {
  Server server(make_config(1, 1, 131072, 1000));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send(request("POST", "/echo", std::string(1001, 'x'))));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(c.closed_by_peer());
}

TEST(Server, MalformedRequestGets400AndClose) {
  Server server(make_config());
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->headers["connection"], "close");
  EXPECT_TRUE(c.closed_by_peer());
}

TEST(Server, CurlGetsBothPaths) {
  Server server(make_config());
  ASSERT_TRUE(server.ready()) << server.log();
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  std::string out;
  FILE* p =
      ::popen(("curl -sS -m 10 " + base + "/healthz " + base + "/echo/curl?q=1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ASSERT_EQ(::pclose(p), 0);
  ASSERT_TRUE(out.starts_with("ok\n")) << out;
  const json doc = json::parse(out.substr(3));
  EXPECT_EQ(doc["path"], "/echo/curl");
  EXPECT_EQ(doc["query"], "q=1");
}

TEST(Server, SigtermStopsEverythingAndRemovesTheSegment) {
  Server server(make_config());
  ASSERT_TRUE(server.ready()) << server.log();
  const std::string segment = server.segment_path();
  EXPECT_TRUE(exists(segment));
  std::vector<pid_t> kids;
  for (const auto& [pid, title] : server.children()) kids.push_back(pid);
  ASSERT_EQ(kids.size(), 4u);
  const int status = server.stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(wait_gone(kids, 10s));
  EXPECT_FALSE(exists(segment));
  EXPECT_TRUE(server.wait_for_log("stopped", 10s)) << server.log();
}

TEST(Server, SigintStopsEverythingToo) {
  Server server(make_config());
  ASSERT_TRUE(server.ready()) << server.log();
  const std::string segment = server.segment_path();
  std::vector<pid_t> kids;
  for (const auto& [pid, title] : server.children()) kids.push_back(pid);
  const int status = server.stop(SIGINT);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(wait_gone(kids, 10s));
  EXPECT_FALSE(exists(segment));
}

TEST(Server, SigkillOfTheSupervisorLeavesNoProcessOrSegment) {
  Server server(make_config());
  ASSERT_TRUE(server.ready()) << server.log();
  const std::string segment = server.segment_path();
  std::vector<pid_t> kids;
  for (const auto& [pid, title] : server.children()) kids.push_back(pid);
  ASSERT_EQ(kids.size(), 4u);
  const int status = server.stop(SIGKILL);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_TRUE(wait_gone(kids, 10s)) << "orphaned workers survived the supervisor";
  EXPECT_FALSE(exists(segment));
}

TEST(Server, StaleSegmentOfADeadInstanceIsRemovedOnStart) {
  // A pid that is certainly not running: a child that has been reaped.
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  int status;
  ::waitpid(dead, &status, 0);
  const std::string stale = "/dev/shm/ringhttpd." + std::to_string(dead) + ".g1";
  FILE* f = ::fopen(stale.c_str(), "w");
  ASSERT_NE(f, nullptr);
  ::fclose(f);
  Server server(make_config(1, 1));
  ASSERT_TRUE(server.ready()) << server.log();
  EXPECT_FALSE(exists(stale));
  ::unlink(stale.c_str());
}

// The ready line is the readiness signal outside systemd: logged at any
// log.level, and so is a reload's "serving" line.
TEST(Server, ReadyAndReloadLinesAreLoggedAtEveryLevel) {
  for (const char* level : {"warn", "error"}) {
    json config = json::parse(make_config(1, 1));
    config["log"]["level"] = level;
    Server server(config.dump());
    ASSERT_TRUE(server.ready()) << level << server.log();
    EXPECT_TRUE(server.wait_for_log("notice: ready: listening on 127.0.0.1:", 10s)) << server.log();
    ::kill(server.pid(), SIGHUP);
    EXPECT_TRUE(server.wait_for_log("notice: reload: generation 2 serving after ", 10s))
        << level << server.log();
    EXPECT_EQ(server.log().find(" info: "), std::string::npos) << server.log();
  }
}

// Every config check accepts either starts or is refused by check with the
// reason: with the same open-file limits (prlimit), check passes exactly
// when serve starts. A limit the server cannot raise for max_connections is
// refused by both, naming the key. (Whether it can be raised depends on
// CAP_SYS_RESOURCE and fs.nr_open here: the test asserts they agree.)
TEST(Check, AnOpenFileLimitTheStartCannotMeetIsRefusedByCheckToo) {
  const std::string config = R"({"listeners": [{"address": "127.0.0.1", "port": 0}],
    "network": {"processes": 1, "max_connections": 1000000},
    "services": [{"name": "app", "processes": 1}],
    "routes": [{"path": "/", "service": "app"}], "admin": {"socket": ""}})";
  Launch limited;
  limited.wrapper = {"/usr/bin/prlimit", "--nofile=256:256"};
  TempFile file(config);
  std::string out;
  const int status = run_binary({"check", "-c", file.path()}, out, Binary::shipped, limited);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  if (WEXITSTATUS(status) == 0) {  // the limit can be raised here: serve starts
    Server server(config, Binary::shipped, limited);
    EXPECT_TRUE(server.ready()) << server.log();
  } else {  // serve refuses at once, with the same words
    EXPECT_NE(out.find("network.max_connections: 1000000 needs"), std::string::npos) << out;
    std::string served;
    const int serve_status =
        run_binary({"serve", "-c", file.path()}, served, Binary::shipped, limited);
    ASSERT_TRUE(WIFEXITED(serve_status)) << served;
    EXPECT_EQ(WEXITSTATUS(serve_status), 1) << served;
    EXPECT_NE(served.find("network.max_connections: 1000000 needs"), std::string::npos) << served;
  }
  // Within the limit, both go ahead.
  const std::string small = R"({"listeners": [{"address": "127.0.0.1", "port": 0}],
    "network": {"processes": 1, "max_connections": 100}, "admin": {"socket": ""}})";
  TempFile small_file(small);
  std::string ok;
  EXPECT_EQ(run_binary({"check", "-c", small_file.path()}, ok, Binary::shipped, limited), 0) << ok;
}

TEST(Check, GoodFileExitsZero) {
  std::string out;
  const int status = run_binary({"check", "-c", RINGHTTPD_SOURCE_DIR "/etc/ringhttpd.json"}, out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  EXPECT_NE(out.find("ok"), std::string::npos);
}

TEST(Check, BadFileExitsOneNamingEachKey) {
  TempFile bad(R"({"network": {"processes": -1},
                   "services": [{"name": "app"}],
                   "routes": [{"path": "/"}, {"path": "/x", "service": "ap"}],
                   "bogus": 1})");
  std::string out;
  const int status = run_binary({"check", "-c", bad.path()}, out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << out;
  EXPECT_NE(out.find("network.processes"), std::string::npos) << out;
  EXPECT_NE(out.find("routes[1].service: no service named \"ap\""), std::string::npos) << out;
  EXPECT_NE(out.find("bogus"), std::string::npos) << out;
}

TEST(Serve, InvalidConfigDoesNotStart) {
  TempFile bad(R"({"listeners": [{"address": "nowhere", "port": 0}]})");
  std::string out;
  const int status = run_binary({"serve", "-c", bad.path()}, out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << out;
  EXPECT_NE(out.find("listeners[0].address"), std::string::npos) << out;
}

// An explicit empty path is a mistake (an unset variable), not a request for
// the embedded default.
TEST(Cli, EmptyConfigPathIsAnError) {
  const std::vector<std::vector<std::string>> commands = {{"check", "-c", ""},
                                                          {"check", "--config", ""},
                                                          {"serve", "-c", ""},
                                                          {"serve", "--config", ""}};
  for (const auto& args : commands) {
    std::string out;
    const int status = run_binary(args, out);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << args[0] << " " << args[1] << out;
    EXPECT_NE(out.find("-c: empty path"), std::string::npos) << out;
    EXPECT_EQ(out.find("ok"), std::string::npos) << out;
    EXPECT_EQ(out.find("ready"), std::string::npos) << out;
  }
  // Without -c the embedded default is still what is checked.
  std::string out;
  EXPECT_EQ(run_binary({"check"}, out), 0) << out;
  EXPECT_NE(out.find("(embedded default): ok"), std::string::npos) << out;
}

TEST(Check, NulByteEndsNothing) {
  TempFile nul(std::string("{}\0garbage", 10));
  std::string out;
  const int status = run_binary({"check", "-c", nul.path()}, out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << out;
  EXPECT_NE(out.find(nul.path() + ": config: parse error at byte 3: NUL byte"), std::string::npos)
      << out;
}

// Each line of the report is one problem, prefixed with the file: a key or a
// value cannot add a line or put a control byte on the terminal.
TEST(Check, ReportQuotesConfigInputEscaped) {
  TempFile bad(R"({"x\nforged: ok": 1, "log": {"level": "\u001b[2Jloud\r"},
                   "routes": [{"host": "a\r\nb", "respond": {}}]})");
  std::string out;
  const int status = run_binary({"check", "-c", bad.path()}, out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << out;
  const std::string p = bad.path() + ": ";
  EXPECT_EQ(out, p + "x\\nforged: ok: unknown key\n" + p +
                     "routes[0].host: must be a host name, an IPv4 address or an IPv6 address in "
                     "brackets like \"[::1]\" (got \"a\\r\\nb\")\n" +
                     p +
                     "log.level: must be one of \"debug\", \"info\", \"warn\", \"error\" (got "
                     "\"\\x1b[2Jloud\\r\")\n");
}

TEST(Check, WrongNumbersNameTheirKey) {
  TempFile bad(R"({"network": {"max_connections": 1e500}})");
  std::string out;
  int status = run_binary({"check", "-c", bad.path()}, out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << out;
  EXPECT_EQ(out, bad.path() + ": network.max_connections: number out of range\n");
  bad.write(R"({"listeners": [{"port": -0}], "admin": {"socket": "a\u0000b"}})");
  out.clear();
  status = run_binary({"check", "-c", bad.path()}, out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << out;
  EXPECT_NE(out.find("listeners[0].port: must be an integer between 0 and 65535"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("admin.socket: must not contain a NUL byte"), std::string::npos) << out;
  EXPECT_EQ(out.find("json.exception"), std::string::npos) << out;
}

// A FIFO would block the open until a writer came: refused at once, like a
// directory or a device.
TEST(Check, RefusesWhatIsNotARegularFile) {
  char dir[] = "/tmp/ringhttpd-test-dir-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string fifo = std::string(dir) + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {fifo, "not a regular file (a FIFO)"},
      {dir, "not a regular file (a directory)"},
      {"/dev/null", "not a regular file (a device)"},
  };
  for (const auto& [path, why] : cases) {
    for (const char* command : {"check", "serve"}) {
      std::string out;
      const auto began = Clock::now();
      const int status = run_binary({command, "-c", path}, out);
      EXPECT_LT(Clock::now() - began, 5s) << command << " " << path;
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << command << " " << out;
      EXPECT_NE(out.find(path + ": config: cannot read " + path + ": " + why), std::string::npos)
          << command << " " << out;
    }
  }
  ::unlink(fifo.c_str());
  ::rmdir(dir);
}

TEST(Cli, VersionAndHelp) {
  std::string out;
  EXPECT_EQ(run_binary({"--version"}, out), 0);
  EXPECT_NE(out.find("ringhttpd "), std::string::npos);
  out.clear();
  EXPECT_EQ(run_binary({"--help"}, out), 0);
  EXPECT_NE(out.find("Examples:"), std::string::npos) << out;
}

}  // namespace
}  // namespace ringhttpd::testing
