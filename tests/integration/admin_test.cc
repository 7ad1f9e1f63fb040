// The admin socket and `ringhttpd ctl` against the real binary: status rows
// from the scoreboard, the ctl table, synchronous reload (good and bad
// config), the protocol's bounds (malformed lines, a 10 MB line, 200 clients
// at once, a slow client, an idle one) with the supervisor still
// supervising, a reload while a client is stuck, who may connect
// (SO_PEERCRED, a forked child that becomes nobody), the socket file's mode,
// and its removal at stop. Every test has its own admin.socket in a WorkDir.
#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "proto/unique_fd.h"
#include "tests/integration/server_harness.h"

namespace ringhttpd::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using proto::UniqueFd;

std::string config(const std::string& socket, int services = 2, json admin_extra = json::object()) {
  json admin = {{"socket", socket}};
  admin.update(admin_extra);
  return json{{"listeners", {{{"address", "127.0.0.1"}, {"port", 0}}}},
              {"network", {{"processes", 2}}},
              {"services", {{{"name", "app"}, {"processes", services}}}},
              {"routes",
               {{{"path", "/healthz"}, {"respond", {{"status", 200}, {"body", "ok\n"}}}},
                {{"path", "/"}, {"service", "app"}}}},
              {"admin", admin}}
      .dump();
}

// A client of the admin socket with bounded reads.
class AdminClient {
 public:
  explicit AdminClient(const std::string& path) {
    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fd_.reset();
  }
  bool connected() const { return static_cast<bool>(fd_); }
  int fd() const { return fd_.get(); }
  bool send(const std::string& bytes) {
    return ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // One answer line (without "\n"); nullopt on timeout or close.
  std::optional<std::string> line(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (const size_t nl = buf_.find('\n'); nl != std::string::npos) {
        std::string l = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return l;
      }
      if (!fill(deadline)) return std::nullopt;
    }
  }
  std::optional<json> ask(const std::string& command, std::chrono::milliseconds timeout = 5s) {
    if (!send(json{{"command", command}}.dump() + "\n")) return std::nullopt;
    const auto l = line(timeout);
    if (!l) return std::nullopt;
    return json::parse(*l);
  }
  // Everything until the server closes; nullopt if it does not in time.
  std::optional<std::string> until_close(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (fill(deadline)) {
    }
    if (!eof_) return std::nullopt;
    return std::exchange(buf_, std::string());
  }

 private:
  bool fill(Clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd pfd{fd_.get(), POLLIN, 0};
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
    char b[65536];
    const ssize_t n = ::recv(fd_.get(), b, sizeof b, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buf_.append(b, static_cast<size_t>(n));
    return true;
  }
  UniqueFd fd_;
  std::string buf_;
  bool eof_ = false;
};

std::optional<json> status_of(const std::string& socket) {
  AdminClient c(socket);
  if (!c.connected()) return std::nullopt;
  return c.ask("status");
}

int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

// ---- status and ctl ------------------------------------------------------

TEST(AdminStatus, OneRowPerProcessFromTheScoreboard) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(http_get(server.port(), "/count"));
  // The service processes count a request once its answer is written; the
  // network process gives a response's ring space back at the end of the
  // loop iteration that wrote it to the client (it writes from the ring).
  std::optional<json> s;
  uint64_t served = 0, queued = 0;
  for (const auto deadline = Clock::now() + 5s;
       (served < 3 || queued > 0) && Clock::now() < deadline;) {
    s = status_of(sock);
    ASSERT_TRUE(s);
    served = queued = 0;
    for (const json& p : (*s)["processes"]) {
      if (p["role"] != "service") continue;
      served += p["requests"].get<uint64_t>();
      queued += p["ring_queued_bytes"]["request"].get<uint64_t>() +
                p["ring_queued_bytes"]["response"].get<uint64_t>();
    }
  }
  EXPECT_EQ(served, 3u);
  EXPECT_EQ((*s)["ok"], true);
  EXPECT_EQ((*s)["version"], "0.1.0");
  EXPECT_EQ((*s)["pid"], server.pid());
  EXPECT_EQ((*s)["generation"], 1);
  EXPECT_EQ((*s)["reload_in_progress"], false);
  EXPECT_TRUE((*s)["last_reload"].is_null());
  EXPECT_GE((*s)["uptime_ms"].get<int64_t>(), 0);
  EXPECT_EQ((*s)["listeners"], json::array({"127.0.0.1:" + std::to_string(server.port())}));
  const auto children = server.children();
  ASSERT_EQ((*s)["processes"].size(), 4u);
  int network = 0, service = 0;
  for (const json& p : (*s)["processes"]) {
    EXPECT_EQ(p["state"], "ready") << p;
    EXPECT_EQ(p["generation"], 1);
    EXPECT_EQ(p["restarts"], 0);
    EXPECT_TRUE(p["restart_in_ms"].is_null());
    EXPECT_EQ(p["incarnation"], 1) << p;
    // Every loop runs at least once a second.
    EXPECT_LE(p["heartbeat_age_ms"].get<int64_t>(), 2000) << p;
    EXPECT_EQ(children.count(p["pid"].get<pid_t>()), 1u) << p;
    if (p["role"] == "network") {
      EXPECT_EQ(p["index"], network++);
      EXPECT_TRUE(p["service"].is_null());
      EXPECT_TRUE(p["connections"].is_number());
    } else {
      EXPECT_EQ(p["index"], service++);
      EXPECT_EQ(p["service"], "app");
      EXPECT_EQ(p["inflight"], 0);
      // Every request was answered and read: the rings are empty.
      EXPECT_EQ(p["ring_queued_bytes"]["request"], 0) << p;
      EXPECT_EQ(p["ring_queued_bytes"]["response"], 0) << p;
    }
  }
  EXPECT_EQ(network, 2);
  EXPECT_EQ(service, 2);
}

TEST(AdminStatus, AKilledProcessShowsItsRestart) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();
  const pid_t victim = server.child("ringhttpd: service app g1 #0");
  ASSERT_GT(victim, 0);
  ::kill(victim, SIGKILL);
  ASSERT_TRUE(server.wait_for_log("replaced; serving", 10s)) << server.log();
  const std::optional<json> s = status_of(sock);
  ASSERT_TRUE(s);
  for (const json& p : (*s)["processes"]) {
    if (p["role"] == "service" && p["index"] == 0) {
      EXPECT_EQ(p["restarts"], 1) << p;
      EXPECT_EQ(p["incarnation"], 2) << p;
      EXPECT_NE(p["pid"], victim);
    }
  }
}

// The pid of a service process that `status` shows holding one request,
// polled for up to 10 s; 0 if none did.
pid_t service_holding_one(const std::string& sock) {
  for (auto end = Clock::now() + 10s; Clock::now() < end;) {
    if (const std::optional<json> s = status_of(sock)) {
      for (const json& p : (*s)["processes"]) {
        if (p["role"] == "service" && p["inflight"] == 1) return p["pid"].get<pid_t>();
      }
    }
    std::this_thread::sleep_for(10ms);  // polling the status until the condition holds
  }
  return 0;
}

// While generation 1 drains (an upload is still arriving on one of its
// connections), status shows both generations and each one's processes.
TEST(AdminStatus, BothGenerationsAppearDuringAReload) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();
  Client upload(server.port());
  ASSERT_TRUE(upload.send("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345"));
  // The head is routed at once: wait until a service process holds it.
  ASSERT_NE(service_holding_one(sock), 0) << server.log();
  ::kill(server.pid(), SIGHUP);
  ASSERT_TRUE(server.wait_for_log("reload: generation 2 serving", 15s)) << server.log();
  const std::optional<json> s = status_of(sock);
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)["generation"], 2);
  std::map<int, std::string> phases;
  for (const json& g : (*s)["generations"]) phases[g["generation"]] = g["phase"];
  EXPECT_EQ(phases, (std::map<int, std::string>{{1, "draining"}, {2, "serving"}})) << *s;
  // Generation 1's processes with nothing left to do may have exited
  // ("gone"); the network process holding the upload, and the service
  // process it waits for, drain.
  std::map<int, int> rows;
  std::map<std::string, int> draining;
  for (const json& p : (*s)["processes"]) {
    ++rows[p["generation"].get<int>()];
    if (p["generation"] == 2) {
      EXPECT_EQ(p["state"], "ready") << p;
      continue;
    }
    EXPECT_TRUE(p["state"] == "draining" || p["state"] == "gone") << p;
    if (p["state"] == "draining") ++draining[p["role"]];
    if (p["role"] == "service" && p["inflight"] == 1) {
      EXPECT_EQ(p["state"], "draining") << p;
    }
  }
  EXPECT_EQ(rows, (std::map<int, int>{{1, 4}, {2, 4}})) << *s;
  EXPECT_GE(draining["network"], 1) << *s;
  EXPECT_GE(draining["service"], 1) << *s;
  // The upload ends; generation 1 answers it and ends too.
  ASSERT_TRUE(upload.send("67890"));
  const auto r = upload.read_response();
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("1234567890"), std::string::npos) << r->body;
  ASSERT_TRUE(server.wait_for_log("generation 1 ended", 15s)) << server.log();
  const std::optional<json> after = status_of(sock);
  ASSERT_TRUE(after);
  EXPECT_EQ((*after)["generations"].size(), 1u) << *after;
}

// A service process that crashes in a draining generation is not
// replaced, but it was lost: its row counts it in `restarts`, and shows no
// requests in flight (what it held was retried or failed elsewhere; the
// count it left is stale).
TEST(AdminStatus, AProcessLostInADrainingGenerationIsCountedAndHoldsNothing) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();
  Client upload(server.port());
  ASSERT_TRUE(upload.send("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345"));
  const pid_t holder = service_holding_one(sock);
  ASSERT_NE(holder, 0) << server.log();
  ::kill(server.pid(), SIGHUP);
  ASSERT_TRUE(server.wait_for_log("reload: generation 2 serving", 15s)) << server.log();
  ASSERT_EQ(::kill(holder, SIGKILL), 0);
  const auto lost_row = [&]() -> std::optional<json> {
    const std::optional<json> s = status_of(sock);
    if (!s) return std::nullopt;
    for (const json& p : (*s)["processes"]) {
      if (p["generation"] == 1 && p["role"] == "service" && p["restarts"] == 1) return p;
    }
    return std::nullopt;
  };
  std::optional<json> row;
  for (auto end = Clock::now() + 10s; !(row = lost_row()) && Clock::now() < end;) {
    std::this_thread::sleep_for(10ms);  // polling until the death is reaped
  }
  ASSERT_TRUE(row) << server.log();
  EXPECT_EQ((*row)["state"], "gone") << *row;
  EXPECT_TRUE((*row)["inflight"].is_null()) << *row;
}

// 64 admin clients that never finish a line do not hold up the supervisor:
// a killed process is replaced as fast as ever.
TEST(AdminProtocol, StuckClientsDoNotDelayARespawn) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();
  std::vector<std::unique_ptr<AdminClient>> stuck;
  for (int i = 0; i < 64; ++i) {
    stuck.push_back(std::make_unique<AdminClient>(sock));
    ASSERT_TRUE(stuck.back()->connected());
    ASSERT_TRUE(stuck.back()->send("{\"comm"));
  }
  const pid_t victim = server.child("ringhttpd: service app g1 #1");
  ASSERT_GT(victim, 0);
  ::kill(victim, SIGKILL);
  ASSERT_TRUE(server.wait_for_log("replaced; serving", 5s)) << server.log();
  const auto r = http_get(server.port(), "/");
  ASSERT_TRUE(r) << server.log();
  EXPECT_EQ(r->status, 200);
}

// Under a tight open-file limit the admin clients get only what a respawn
// and a reload leave them: clients that hold their connections cannot take
// the descriptors a replacement's socketpair and a reload need.
TEST(AdminProtocol, UnderATightFileLimitClientsLeaveRoomForARespawnAndAReload) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  json cfg = json::parse(config(sock, 1));
  cfg["network"]["processes"] = 1;
  cfg["network"]["max_connections"] = 10;
  Launch tight;  // the plan for this config: 10 + 1 + 2 x 2 + 64 = 79
  tight.wrapper = {"/usr/bin/prlimit", "--nofile=80:80"};
  Server server(cfg.dump(), Binary::shipped, tight);
  ASSERT_TRUE(server.ready()) << server.log();
  std::vector<std::unique_ptr<AdminClient>> clients;
  int answered = 0, refused = 0;
  for (int i = 0; i < 64; ++i) {
    clients.push_back(std::make_unique<AdminClient>(sock));
    ASSERT_TRUE(clients.back()->connected()) << i;
    // A refused client may be closed (its reason written) before it asks:
    // the send then fails, and the reason is still there to read.
    clients.back()->send("{\"command\":\"status\"}\n");
    const auto l = clients.back()->line(5s);
    ASSERT_TRUE(l) << i << server.log();
    const json a = json::parse(*l);
    if (a["ok"] == true) {
      ++answered;
    } else {
      EXPECT_NE(a["error"].get<std::string>().find("open-file limit"), std::string::npos) << a;
      ++refused;
    }
  }
  EXPECT_GT(answered, 0);
  EXPECT_GT(refused, 0);
  const pid_t victim = server.child("ringhttpd: service app g1 #0");
  ASSERT_GT(victim, 0);
  ::kill(victim, SIGKILL);
  ASSERT_TRUE(server.wait_for_log("replaced; serving", 5s)) << server.log();
  ::kill(server.pid(), SIGHUP);
  EXPECT_TRUE(server.wait_for_log("reload: generation 2 serving", 10s)) << server.log();
  EXPECT_EQ(server.log().find("Too many open files"), std::string::npos) << server.log();
}

TEST(Ctl, StatusPrintsATable) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  const std::string text = config(sock);
  Server server(text);
  ASSERT_TRUE(server.ready()) << server.log();
  std::string out;
  ASSERT_EQ(exit_code(run_binary({"ctl", "--socket", sock, "status"}, out)), 0) << out;
  EXPECT_NE(out.find("generation 1 serving on 127.0.0.1:" + std::to_string(server.port())),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("last reload: none"), std::string::npos) << out;
  EXPECT_NE(out.find("ROLE     SERVICE  GEN  IDX  PID"), std::string::npos) << out;
  EXPECT_NE(out.find("UPTIME  REQUESTS  CONNS  INFLIGHT  RESTARTS"), std::string::npos) << out;
  size_t rows = 0;
  for (size_t at = 0; (at = out.find("  ready  ", at)) != std::string::npos; ++at) ++rows;
  EXPECT_EQ(rows, 4u) << out;
  std::cout << out;  // the table as printed, for the record

  // -c FILE finds the socket through admin.socket; --json is the raw answer.
  TempFile file(text);
  std::string raw;
  ASSERT_EQ(exit_code(run_binary({"ctl", "-c", file.path(), "status", "--json"}, raw)), 0) << raw;
  const json parsed = json::parse(raw);
  EXPECT_EQ(parsed["processes"].size(), 4u);
  std::string help;
  ASSERT_EQ(exit_code(run_binary({"ctl", "--socket", sock, "help"}, help)), 0) << help;
  EXPECT_NE(help.find("reload"), std::string::npos) << help;
}

TEST(Ctl, ReloadAnswersWhenTheNewGenerationServes) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();
  server.rewrite_config(config(sock, 3));
  std::string out;
  ASSERT_EQ(exit_code(run_binary({"ctl", "--socket", sock, "reload"}, out)), 0) << out;
  EXPECT_NE(out.find("reload ok: generation 2 serving"), std::string::npos) << out;
  // Answered after the commit: the status says so at once.
  const std::optional<json> s = status_of(sock);
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)["generation"], 2);
  EXPECT_EQ((*s)["last_reload"]["ok"], true);
  EXPECT_EQ((*s)["last_reload"]["generation"], 2);
  int services_g2 = 0;
  for (const json& p : (*s)["processes"]) {
    if (p["generation"] == 2 && p["role"] == "service") ++services_g2;
  }
  EXPECT_EQ(services_g2, 3);
  // `config` is the serving generation's.
  AdminClient c(sock);
  const std::optional<json> cfg = c.ask("config");
  ASSERT_TRUE(cfg);
  EXPECT_EQ((*cfg)["generation"], 2);
  EXPECT_EQ((*cfg)["config"]["services"][0]["processes"], 3);
  EXPECT_EQ((*cfg)["config"]["admin"]["socket"], sock);
  EXPECT_TRUE(http_get(server.port(), "/healthz"));
}

// admin.* keys take effect at the next start, not at a reload: `config`
// shows the socket in use, not the one the new file names.
TEST(Ctl, ConfigShowsTheAdminSocketInEffectAfterAReloadThatChangedIt) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();
  server.rewrite_config(config(dir.path() + "/run/other.sock", 3));
  std::string out;
  ASSERT_EQ(exit_code(run_binary({"ctl", "--socket", sock, "reload"}, out)), 0) << out;
  AdminClient c(sock);
  const std::optional<json> cfg = c.ask("config");
  ASSERT_TRUE(cfg);
  EXPECT_EQ((*cfg)["config"]["services"][0]["processes"], 3);
  EXPECT_EQ((*cfg)["config"]["admin"]["socket"], sock);
}

TEST(Ctl, AFailedReloadExitsNonZeroWithTheKeyPath) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();
  json bad = json::parse(config(sock));
  bad["routes"][1]["service"] = "ap";
  bad["network"]["processes"] = -1;
  server.rewrite_config(bad.dump());
  std::string out;
  EXPECT_EQ(exit_code(run_binary({"ctl", "--socket", sock, "reload"}, out)), 1) << out;
  EXPECT_NE(out.find("ringhttpd ctl: reload failed: "), std::string::npos) << out;
  // Every error, in the one line (not only the first).
  EXPECT_NE(out.find("network.processes: must be an integer"), std::string::npos) << out;
  EXPECT_NE(out.find("routes[1].service: no service named \"ap\""), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  const std::optional<json> s = status_of(sock);
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)["generation"], 1);
  EXPECT_EQ((*s)["last_reload"]["ok"], false);
  EXPECT_NE((*s)["last_reload"]["error"].get<std::string>().find("routes[1].service"),
            std::string::npos);
  const auto r = http_get(server.port(), "/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// A usage error is one line and exit status 2, for ctl as for the others
// (CLI11 alone exits 105-109 with two lines).
TEST(Ctl, AUsageErrorIsOneLineAndExitStatus2) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"ctl", "bogus"}, {"serve", "--bogus"}, {}}) {
    std::string out;
    EXPECT_EQ(exit_code(run_binary(args, out)), 2) << out;
    EXPECT_EQ(out.rfind("ringhttpd: ", 0), 0u) << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  }
  std::string out;
  EXPECT_EQ(exit_code(run_binary({"--version"}, out)), 0) << out;
  EXPECT_EQ(exit_code(run_binary({"ctl", "--help"}, out)), 0) << out;
}

TEST(Ctl, TwoReloadRequestsAtOnceAreBothAnswered) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();
  AdminClient a(sock), b(sock);
  ASSERT_TRUE(a.send("{\"command\":\"reload\"}\n"));
  ASSERT_TRUE(b.send("{\"command\":\"reload\"}\n"));
  const auto ra = a.line(30s), rb = b.line(30s);
  ASSERT_TRUE(ra && rb);
  const json ja = json::parse(*ra), jb = json::parse(*rb);
  EXPECT_EQ(ja["ok"], true) << ja;
  EXPECT_EQ(jb["ok"], true) << jb;
  // Coalesced into one reload, or the second covered by the next one.
  EXPECT_GE(jb["generation"].get<int>(), 2);
  EXPECT_LE(jb["generation"].get<int>(), 3);
}

TEST(Ctl, NoServerIsOneLineAndExitOne) {
  WorkDir dir;
  const std::string missing = dir.path() + "/run/none.sock";
  std::string out;
  EXPECT_EQ(exit_code(run_binary({"ctl", "--socket", "", "status"}, out)), 1);
  EXPECT_EQ(out, "ringhttpd ctl: --socket: an empty path names no socket\n");
  out.clear();
  EXPECT_EQ(exit_code(run_binary({"ctl", "--socket", missing, "status"}, out)), 1);
  EXPECT_EQ(out, "ringhttpd ctl: cannot connect to " + missing +
                     ": No such file or directory (is the server running?)\n");
  // A socket file nobody listens on (a server killed with SIGKILL).
  const std::string stale = dir.path() + "/run/stale.sock";
  {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, stale.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }
  out.clear();
  EXPECT_EQ(exit_code(run_binary({"ctl", "--socket", stale, "reload"}, out)), 1);
  EXPECT_EQ(out, "ringhttpd ctl: cannot connect to " + stale +
                     ": Connection refused (is the server running?)\n");
  // -c with admin.socket "" says the socket is off.
  TempFile off(config(""));
  out.clear();
  EXPECT_EQ(exit_code(run_binary({"ctl", "-c", off.path(), "status"}, out)), 1);
  EXPECT_NE(out.find("admin.socket is \"\""), std::string::npos) << out;
}

// A unix socket listening at `path` (a fake server for ctl), or an empty
// descriptor.
UniqueFd listen_at(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd.get(), 4) != 0) {
    return UniqueFd();
  }
  return fd;
}

// A server (or anything listening at the path) that answers `config` with
// a value nested 100000 levels deep: ctl refuses it with one line and exit
// 1 instead of overflowing its stack.
TEST(Ctl, ADeeplyNestedAnswerIsRefusedNotACrash) {
  WorkDir dir;
  const std::string path = dir.path() + "/run/fake.sock";
  const UniqueFd listener = listen_at(path);
  ASSERT_TRUE(listener);
  std::thread fake([&listener] {
    pollfd pfd{listener.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 10000) <= 0) return;
    UniqueFd c(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    char request[1000];
    if (::recv(c.get(), request, sizeof request, 0) <= 0) return;
    const size_t depth = 100000;
    const std::string answer = R"({"ok":true,"generation":1,"config":)" + std::string(depth, '[') +
                               std::string(depth, ']') + "}\n";
    (void)!::send(c.get(), answer.data(), answer.size(), MSG_NOSIGNAL);
  });
  std::string out;
  const int status = run_binary({"ctl", "--socket", path, "config"}, out);
  fake.join();
  EXPECT_EQ(exit_code(status), 1) << out;
  EXPECT_NE(out.find("nests deeper than"), std::string::npos) << out;
}

// `ctl reload` asks for the serving config first, to know how long the
// reload may take; a server that does not tell (here: it closes the first
// connection unanswered, as one busy forking might make it wait) still
// gets the reload, with the least wait, and one line on failure only.
TEST(Ctl, AReloadIsSentEvenWhenTheConfigIsNotTold) {
  WorkDir dir;
  const std::string path = dir.path() + "/run/fake.sock";
  const UniqueFd listener = listen_at(path);
  ASSERT_TRUE(listener);
  std::vector<std::string> asked;
  std::thread fake([&listener, &asked] {
    for (int i = 0; i < 2; ++i) {
      pollfd pfd{listener.get(), POLLIN, 0};
      if (::poll(&pfd, 1, 10000) <= 0) return;
      UniqueFd c(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      char request[1000];
      const ssize_t n = ::recv(c.get(), request, sizeof request, 0);
      if (n <= 0) return;
      asked.emplace_back(request, static_cast<size_t>(n));
      if (i == 0) continue;  // closed without an answer
      const std::string answer = R"({"ok":true,"generation":2,"ms":7})"
                                 "\n";
      (void)!::send(c.get(), answer.data(), answer.size(), MSG_NOSIGNAL);
    }
  });
  std::string out;
  const int status = run_binary({"ctl", "--socket", path, "reload"}, out);
  fake.join();
  EXPECT_EQ(exit_code(status), 0) << out;
  EXPECT_EQ(out, "reload ok: generation 2 serving (7ms)\n");
  ASSERT_EQ(asked.size(), 2u) << out;
  EXPECT_EQ(json::parse(asked[0])["command"], "config");
  EXPECT_EQ(json::parse(asked[1])["command"], "reload");
}

// ---- the protocol's bounds ---------------------------------------------------

TEST(AdminProtocol, BadLinesGetAnErrorAndTheConnectionStays) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();
  AdminClient c(sock);
  ASSERT_TRUE(c.send(
      "status\n[1,2]\n{\"command\": 7}\n{\"command\":\"nope\"}\n\n{\"command\":\"help\"}\n"));
  const std::vector<std::string> expect = {"malformed JSON", "must be a JSON object",
                                           "missing \"command\"", "unknown command \"nope\""};
  for (const std::string& e : expect) {
    const auto l = c.line();
    ASSERT_TRUE(l) << e;
    const json j = json::parse(*l);
    EXPECT_EQ(j["ok"], false);
    EXPECT_NE(j["error"].get<std::string>().find(e), std::string::npos) << *l;
  }
  const auto help = c.line();
  ASSERT_TRUE(help);
  EXPECT_EQ(json::parse(*help)["ok"], true);
}

TEST(AdminProtocol, ATenMegabyteLineIsRefusedAndClosed) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();
  AdminClient c(sock);
  const std::string big(10 << 20, 'x');
  size_t sent = 0;
  // Sends until the server stops taking bytes (it closes after 64 KiB).
  while (sent < big.size()) {
    const ssize_t n =
        ::send(c.fd(), big.data() + sent, big.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN) break;  // EPIPE/ECONNRESET: closed
    pollfd pfd{c.fd(), POLLOUT, 0};
    if (::poll(&pfd, 1, 5000) <= 0) break;
  }
  EXPECT_LT(sent, big.size());
  const auto rest = c.until_close(5s);
  ASSERT_TRUE(rest);
  EXPECT_NE(rest->find("request line longer than 65536 bytes"), std::string::npos) << *rest;
  EXPECT_TRUE(status_of(sock));
}

TEST(AdminProtocol, TwoHundredClientsAtOnce) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();
  std::vector<std::unique_ptr<AdminClient>> clients;
  for (int i = 0; i < 200; ++i) {
    clients.push_back(std::make_unique<AdminClient>(sock));
    ASSERT_TRUE(clients.back()->connected()) << i;
    clients.back()->send("{\"command\":\"status\"}\n");
  }
  int answered = 0, turned_away = 0;
  for (auto& c : clients) {
    const auto l = c->line(10s);
    ASSERT_TRUE(l);
    const json j = json::parse(*l);
    if (j["ok"] == true) {
      ++answered;
    } else {
      EXPECT_NE(j["error"].get<std::string>().find("too many admin clients"), std::string::npos)
          << j;
      ++turned_away;
    }
  }
  // All held open: exactly the limit is served, the rest told why.
  EXPECT_EQ(answered, 64);
  EXPECT_EQ(turned_away, 136);
  clients.clear();
  // The supervisor kept supervising: a dead process is still replaced.
  const pid_t victim = server.child("ringhttpd: network g1 #1");
  ASSERT_GT(victim, 0);
  ::kill(victim, SIGKILL);
  EXPECT_TRUE(server.wait_for_log("replaced; serving", 10s)) << server.log();
  EXPECT_TRUE(status_of(sock));
}

TEST(AdminProtocol, ASlowClientDelaysNobody) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();
  AdminClient slow(sock);
  const std::string line = "{\"command\":\"help\"}\n";  // 19 bytes: 1.9 s at 100 ms a byte
  for (char ch : line) {
    ASSERT_TRUE(slow.send(std::string(1, ch)));
    const auto began = Clock::now();
    EXPECT_TRUE(status_of(sock));
    EXPECT_LT(Clock::now() - began, 500ms);
    std::this_thread::sleep_until(began + 100ms);  // the pace is the test's subject
  }
  const auto answer = slow.line();
  ASSERT_TRUE(answer);
  EXPECT_EQ(json::parse(*answer)["ok"], true);
}

TEST(AdminProtocol, AStuckClientDoesNotDelayASighupReload) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();
  AdminClient stuck(sock);
  ASSERT_TRUE(stuck.send("{\"comm"));
  AdminClient silent(sock);
  server.rewrite_config(config(sock, 3));
  ::kill(server.pid(), SIGHUP);
  ASSERT_TRUE(server.wait_for_log("reload: generation 2 serving", 15s)) << server.log();
  const std::optional<json> s = status_of(sock);
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)["generation"], 2);
  EXPECT_EQ((*s)["last_reload"]["ok"], true);
  // The stuck client is still served when it finishes its line.
  ASSERT_TRUE(stuck.send("and\":\"help\"}\n"));
  EXPECT_TRUE(stuck.line());
}

TEST(AdminProtocol, AnIdleClientIsClosedAfterTenSeconds) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();
  AdminClient idle(sock), blank(sock);
  ASSERT_TRUE(idle.send("{\"command\""));  // never completed
  const auto began = Clock::now();
  // Blank lines are no progress: one every 2 s does not keep a client.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(blank.send("\n"));
    std::this_thread::sleep_for(2s);
  }
  const auto rest = idle.until_close(13s);
  ASSERT_TRUE(rest);
  EXPECT_GE(Clock::now() - began, 9s);
  EXPECT_NE(rest->find("no complete request within 10 s"), std::string::npos) << *rest;
  const auto blank_rest = blank.until_close(3s);
  ASSERT_TRUE(blank_rest) << "a client sending blank lines stays";
  EXPECT_NE(blank_rest->find("no complete request within 10 s"), std::string::npos) << *blank_rest;
}

// ---- the socket file and who may connect ---------------------------------------

TEST(AdminSocket, Mode0600AndRemovedAtStop) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();
  struct stat st {};
  ASSERT_EQ(::lstat(sock.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(exit_code(server.stop(SIGTERM)), 0) << server.log();
  EXPECT_NE(::lstat(sock.c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
}

TEST(AdminSocket, TheDefaultPathAndAConfiguredMode) {
  // No admin.socket in the config: run/ringhttpd.sock in the working directory.
  json text = json::parse(config("x"));
  text.erase("admin");
  text["admin"] = {{"mode", "0640"}};
  Server server(text.dump());
  ASSERT_TRUE(server.ready()) << server.log();
  struct stat st {};
  ASSERT_EQ(::lstat(server.workdir().admin_socket().c_str(), &st), 0) << server.log();
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_TRUE(status_of(server.workdir().admin_socket()));
}

TEST(AdminSocket, StaleIsReplacedLiveIsRefusedMissingParentIsAnError) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }  // closed: the file stays, nobody listens
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();
  EXPECT_TRUE(server.wait_for_log("replaced the stale socket", 10s)) << server.log();
  EXPECT_TRUE(status_of(sock));

  TempFile second(config(sock));
  std::string out;
  EXPECT_EQ(exit_code(run_binary({"serve", "-c", second.path()}, out)), 1) << out;
  EXPECT_NE(out.find("another ringhttpd serves admin.socket " + sock), std::string::npos) << out;
  EXPECT_TRUE(status_of(sock));  // the first one's socket is untouched

  // A missing last directory is created, private (0700); a missing parent
  // of it is an error naming the key.
  TempFile nodir(config(dir.path() + "/nowhere/deeper/admin.sock"));
  out.clear();
  EXPECT_EQ(exit_code(run_binary({"serve", "-c", nodir.path()}, out)), 1) << out;
  EXPECT_NE(out.find("admin.socket: cannot create " + dir.path() + "/nowhere/deeper/admin.sock"),
            std::string::npos)
      << out;
  {
    Server created(config(dir.path() + "/fresh/admin.sock"));
    ASSERT_TRUE(created.ready()) << created.log();
    struct stat st {};
    ASSERT_EQ(::stat((dir.path() + "/fresh").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_TRUE(status_of(dir.path() + "/fresh/admin.sock"));
  }
}

TEST(AdminSocket, EmptyPathMeansNoSocket) {
  Server server(config(""));
  ASSERT_TRUE(server.ready()) << server.log();
  EXPECT_TRUE(server.wait_for_log("admin socket off", 10s)) << server.log();
}

// Forks a child that becomes uid 65534 (with `gid`), connects and asks for
// the status. Its exit status: 0 answered, 2 closed without an answer, 3 no
// connection, 4 could not change identity.
int as_nobody(const std::string& sock, gid_t gid) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(65534) != 0) ::_exit(4);
    AdminClient c(sock);
    if (!c.connected()) ::_exit(3);
    c.send("{\"command\":\"status\"}\n");
    const auto l = c.line(5s);
    ::_exit(l && l->find("\"processes\"") != std::string::npos ? 0 : 2);
  }
  int status = 0;
  for (const auto deadline = Clock::now() + 10s; Clock::now() < deadline;) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return exit_code(status);
    std::this_thread::sleep_for(5ms);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

// The socket open to everyone (mode 0666, directories searchable), so that
// only the credential check stands between another uid and the server.
std::string open_socket_config(const WorkDir& dir, json admin_extra = json::object()) {
  ::chmod(dir.path().c_str(), 0755);
  ::chmod((dir.path() + "/run").c_str(), 0755);
  admin_extra["mode"] = "0666";
  return config(dir.path() + "/run/admin.sock", 2, admin_extra);
}

TEST(AdminSocket, AnotherUidIsRefusedAndLogged) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to fork a child that becomes another uid";
  WorkDir dir;
  Server server(open_socket_config(dir));
  ASSERT_TRUE(server.ready()) << server.log();
  EXPECT_EQ(as_nobody(dir.path() + "/run/admin.sock", 65534), 2);
  EXPECT_TRUE(server.wait_for_log("admin: refused a connection from uid 65534 (pid ", 5s))
      << server.log();
}

TEST(AdminSocket, MembersOfAdminGroupMayConnect) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to fork a child that becomes another uid";
  const group* g = ::getgrnam("nogroup");
  if (g == nullptr) GTEST_SKIP() << "no group \"nogroup\" on this system";
  WorkDir dir;
  Server server(open_socket_config(dir, {{"group", "nogroup"}}));
  ASSERT_TRUE(server.ready()) << server.log();
  EXPECT_EQ(as_nobody(dir.path() + "/run/admin.sock", g->gr_gid), 0) << server.log();
  // Another gid is still refused.
  EXPECT_EQ(as_nobody(dir.path() + "/run/admin.sock", 65533), 2);
}

}  // namespace
}  // namespace ringhttpd::testing
