// systemd integration against the real binary: the sd_notify messages, in
// order, captured on a NOTIFY_SOCKET datagram socket the test binds; the
// watchdog pings; socket activation through systemd-socket-activate (matched
// by address, by FileDescriptorName, and a socket that matches nothing);
// `systemd-analyze verify` on etc/ringhttpd.service and etc/ringhttpd.socket;
// and, as root, the children's drop to nobody/nogroup.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "proto/unique_fd.h"
#include "tests/integration/server_harness.h"

namespace ringhttpd::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using proto::UniqueFd;

json base_config(const std::string& address = "127.0.0.1", int port = 0) {
  return json{
      {"listeners", json::array({{{"address", address}, {"port", port}}})},
      {"network", {{"processes", 1}}},
      {"services", json::array({{{"name", "app"}, {"type", "echo"}, {"processes", 1}}})},
      {"routes",
       {{{"path", "/healthz"}, {"respond", {{"status", 200}, {"body", "ok\n"}}}},
        {{"path", "/"}, {"service", "app"}}}},
  };
}

// A temporary directory, removed (with the files the test put in it) on
// destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ringhttpd-systemd-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    for (const std::string& f : files_) ::unlink(f.c_str());
    if (!path_.empty()) ::rmdir(path_.c_str());
  }
  std::string file(const std::string& name) {
    files_.push_back(path_ + "/" + name);
    return files_.back();
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

// The service manager's end of sd_notify: an AF_UNIX datagram socket.
class NotifySocket {
 public:
  NotifySocket() : path_(dir_.file("notify.sock")) {
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof addr.sun_path - 1);
    bound_ = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  bool bound() const { return bound_; }
  std::string env() const { return "NOTIFY_SOCKET=" + path_; }

  // The next message, or "" when none came within the timeout.
  std::string next(std::chrono::milliseconds timeout) {
    pollfd pfd{fd_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) return "";
    char buf[4096];
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

  // Messages up to and including the first that contains `field`
  // (WATCHDOG=1 pings and the periodic STATUS=-only lines are left out
  // unless asked for); empty on timeout.
  std::vector<std::string> until(const std::string& field, std::chrono::milliseconds timeout) {
    std::vector<std::string> got;
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      const std::string m = next(left);
      if (m.empty()) break;
      if (m == "WATCHDOG=1" && field != "WATCHDOG=1") continue;
      if (m.starts_with("STATUS=") && m.find('\n') == std::string::npos && field != "STATUS=") {
        continue;
      }
      got.push_back(m);
      if (has(m, field)) return got;
    }
    return {};
  }

  static bool has(const std::string& message, const std::string& field) {
    std::istringstream lines(message);
    for (std::string line; std::getline(lines, line);) {
      if (line == field || (field.back() == '=' && line.starts_with(field))) return true;
    }
    return false;
  }

 private:
  TempDir dir_;
  std::string path_;
  UniqueFd fd_;
  bool bound_ = false;
};

Launch with_env(std::vector<std::string> env) {
  Launch launch;
  launch.env = std::move(env);
  return launch;
}

// Under a wrapper command, not waiting for the ready line.
Launch wrapped(std::vector<std::string> wrapper) {
  Launch launch;
  launch.wrapper = std::move(wrapper);
  launch.wait_ready = false;
  return launch;
}

// A TCP port free right now (bound to port 0, read back, closed): for
// systemd-socket-activate, which needs a port number up front.
int free_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    return 0;
  }
  return ntohs(addr.sin_port);
}

// Runs a command (absolute path), captures stdout+stderr; returns the exit
// status, -1 if it could not run or did not end within 60 s.
int run_command(const std::vector<std::string>& args, std::string& output) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) < 0) return -1;
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], STDOUT_FILENO);
    ::dup2(pipefd[1], STDERR_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  UniqueFd read_end(pipefd[0]);
  const auto deadline = Clock::now() + 60s;
  char buf[4096];
  for (;;) {
    pollfd pfd{read_end.get(), POLLIN, 0};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) break;
    const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n <= 0) break;
    output.append(buf, static_cast<size_t>(n));
  }
  // waitpid has no timeout: poll the child's state until the deadline (as
  // the harness does).
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    ::usleep(5000);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "Uid:\t65534\t65534\t65534\t65534" -> the four ids as one string.
std::string status_field(pid_t pid, const std::string& field) {
  std::istringstream lines(read_text("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(field + ":")) {
      std::string ids = line.substr(field.size() + 1);
      std::replace(ids.begin(), ids.end(), '\t', ' ');
      const size_t first = ids.find_first_not_of(' ');
      if (first == std::string::npos) return "";
      return ids.substr(first, ids.find_last_not_of(' ') - first + 1);
    }
  }
  return "";
}

// ---- sd_notify ---------------------------------------------------------------

TEST(SystemdNotify, ReadyReloadingStoppingInOrder) {
  NotifySocket notify;
  ASSERT_TRUE(notify.bound());
  Server server(base_config().dump(), Binary::shipped, with_env({notify.env()}));
  ASSERT_TRUE(server.ready()) << server.log();

  // No EXTEND_TIMEOUT_USEC: no process is given more than the default 10 s.
  std::vector<std::string> m = notify.until("READY=1", 10s);
  ASSERT_EQ(m.size(), 1u) << "the first message is READY=1";
  EXPECT_TRUE(NotifySocket::has(m[0], "STATUS=")) << m[0];
  EXPECT_NE(m[0].find("generation 1 serving, 1 network and 1 service processes, 0 requests/s; last "
                      "reload: none"),
            std::string::npos)
      << m[0];

  // A reload that commits: RELOADING=1 with MONOTONIC_USEC, then READY=1.
  ::kill(server.pid(), SIGHUP);
  m = notify.until("RELOADING=1", 10s);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_TRUE(NotifySocket::has(m[0], "MONOTONIC_USEC=")) << m[0];
  const size_t at = m[0].find("MONOTONIC_USEC=") + 15;
  EXPECT_GT(std::strtoull(m[0].c_str() + at, nullptr, 10), 0u) << m[0];
  m = notify.until("READY=1", 20s);
  ASSERT_EQ(m.size(), 1u) << "READY=1 follows RELOADING=1\n" << server.log();
  EXPECT_NE(m[0].find("STATUS=generation 2 serving"), std::string::npos) << m[0];
  EXPECT_NE(m[0].find("last reload: ok"), std::string::npos) << m[0];

  // A reload that fails also ends with READY=1, and STATUS says why.
  server.rewrite_config(R"({"routes": [{"path": "/", "service": "ap"}]})");
  ::kill(server.pid(), SIGHUP);
  m = notify.until("RELOADING=1", 10s);
  ASSERT_EQ(m.size(), 1u);
  m = notify.until("READY=1", 20s);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_NE(m[0].find("STATUS=generation 2 serving"), std::string::npos) << m[0];
  EXPECT_NE(m[0].find("last reload: failed: "), std::string::npos) << m[0];
  EXPECT_NE(m[0].find("no service named"), std::string::npos) << m[0];

  ::kill(server.pid(), SIGTERM);
  m = notify.until("STOPPING=1", 10s);
  ASSERT_EQ(m.size(), 1u) << server.log();
  EXPECT_TRUE(NotifySocket::has(m[0], "STATUS=")) << m[0];
  const int status = server.stop(0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << server.log();
}

// A service given more time to start than systemd's TimeoutStartSec=
// (90 s by default) is not cut short: before a generation's first fork the
// supervisor moves systemd's timeout of the start (or the reload) to its
// longest start_timeout_ms, and 5 s to commit, from now.
TEST(SystemdNotify, AStartGivenMoreTimeExtendsSystemdsTimeout) {
  NotifySocket notify;
  ASSERT_TRUE(notify.bound());
  json config = base_config();
  config["services"].push_back(
      {{"name", "slow"}, {"type", "echo"}, {"processes", 1}, {"start_timeout_ms", 120000}});
  Server server(config.dump(), Binary::shipped, with_env({notify.env()}));
  ASSERT_TRUE(server.ready()) << server.log();
  std::vector<std::string> m = notify.until("READY=1", 10s);
  ASSERT_EQ(m.size(), 2u) << server.log();
  EXPECT_EQ(m[0], "EXTEND_TIMEOUT_USEC=125000000");
  // A reload: after RELOADING=1, the new generation's extension.
  ::kill(server.pid(), SIGHUP);
  m = notify.until("READY=1", 20s);
  ASSERT_EQ(m.size(), 3u) << server.log();
  EXPECT_TRUE(NotifySocket::has(m[0], "RELOADING=1")) << m[0];
  EXPECT_EQ(m[1], "EXTEND_TIMEOUT_USEC=125000000");
  EXPECT_NE(m[2].find("STATUS=generation 2 serving"), std::string::npos) << m[2];
}

TEST(SystemdNotify, WatchdogPingsWhileHealthy) {
  NotifySocket notify;
  ASSERT_TRUE(notify.bound());
  // 200 ms: pings every 100 ms; WATCHDOG_PID unset means "for whoever reads it".
  Server server(base_config().dump(), Binary::shipped,
                with_env({notify.env(), "WATCHDOG_USEC=200000"}));
  ASSERT_TRUE(server.ready()) << server.log();
  ASSERT_FALSE(notify.until("READY=1", 10s).empty());
  const auto start = Clock::now();
  for (int i = 0; i < 5; ++i) {
    ASSERT_FALSE(notify.until("WATCHDOG=1", 2s).empty()) << "ping " << i;
  }
  // Five pings at half of 200 ms take about 500 ms; far less would mean the
  // loop pings on every iteration, far more that it sleeps past them.
  const auto took = Clock::now() - start;
  EXPECT_GT(took, 300ms);
  EXPECT_LT(took, 3s);
  ::kill(server.pid(), SIGTERM);
  EXPECT_FALSE(notify.until("STOPPING=1", 10s).empty());
  server.stop(0);
}

TEST(SystemdNotify, NothingWithoutNotifySocket) {
  // The same binary with no NOTIFY_SOCKET starts and stops as always.
  Server server(base_config().dump());
  ASSERT_TRUE(server.ready()) << server.log();
  ASSERT_TRUE(http_get(server.port(), "/healthz").has_value());
  const int status = server.stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// ---- socket activation ---------------------------------------------------------

// Starts the server under systemd-socket-activate listening on `listen`
// (each "-l" argument), waits until it listens, then connects: the first
// connection makes systemd-socket-activate exec the server, which must take
// the socket and answer that very connection.
struct Activated {
  Activated(const json& config, const std::vector<std::string>& wrapper_args, int port)
      : server(config.dump(), Binary::shipped, wrapped(wrapper_args)) {
    if (!server.wait_for_log("Listening on 127.0.0.1:" + std::to_string(port), 10s)) return;
    client = std::make_unique<Client>(port);
  }
  Server server;
  std::unique_ptr<Client> client;
};

bool has_socket_activate() { return ::access("/usr/bin/systemd-socket-activate", X_OK) == 0; }

TEST(SystemdSocketActivation, ListenerTakenByAddressAndKeptAcrossReload) {
  if (!has_socket_activate()) GTEST_SKIP() << "/usr/bin/systemd-socket-activate not installed";
  const int port = free_port();
  const int unused = free_port();
  ASSERT_NE(port, 0);
  // A second passed socket that no listener is configured for.
  Activated a(base_config("127.0.0.1", port),
              {"/usr/bin/systemd-socket-activate", "-l", "127.0.0.1:" + std::to_string(port), "-l",
               "127.0.0.1:" + std::to_string(unused)},
              port);
  ASSERT_TRUE(a.client && a.client->connected()) << a.server.log();
  ASSERT_TRUE(a.client->send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = a.client->read_response(20s);
  ASSERT_TRUE(r.has_value()) << a.server.log();
  EXPECT_EQ(r->status, 200);
  ASSERT_TRUE(a.server.wait_ready(10s)) << a.server.log();
  EXPECT_EQ(a.server.port(), port);
  const std::string log = a.server.log();
  EXPECT_NE(log.find("listeners[0] 127.0.0.1:" + std::to_string(port) + ": taken from systemd"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("127.0.0.1:" + std::to_string(unused) +
                     ", name \"unknown\") matches no "
                     "configured listener; closed"),
            std::string::npos)
      << log;
  // The unmatched one is closed, not left listening.
  EXPECT_FALSE(Client(unused).connected());

  // A reload keeps systemd's socket (binding the port again would fail).
  ::kill(a.server.pid(), SIGHUP);
  ASSERT_TRUE(a.server.wait_for_log("reload: generation 2 serving", 20s)) << a.server.log();
  auto again = http_get(port, "/anything");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->status, 200);
  const int status = a.server.stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << a.server.log();
}

TEST(SystemdSocketActivation, ListenerTakenByFileDescriptorName) {
  if (!has_socket_activate()) GTEST_SKIP() << "/usr/bin/systemd-socket-activate not installed";
  const int port = free_port();
  ASSERT_NE(port, 0);
  // Configured as 0.0.0.0:port, passed bound to 127.0.0.1:port: only the
  // name ties them ("address:port" with ':' as '_').
  const std::string name = "0.0.0.0_" + std::to_string(port);
  Activated a(base_config("0.0.0.0", port),
              {"/usr/bin/systemd-socket-activate", "-l", "127.0.0.1:" + std::to_string(port),
               "--fdname=" + name},
              port);
  ASSERT_TRUE(a.client && a.client->connected()) << a.server.log();
  ASSERT_TRUE(a.client->send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = a.client->read_response(20s);
  ASSERT_TRUE(r.has_value()) << a.server.log();
  EXPECT_EQ(r->status, 200);
  ASSERT_TRUE(a.server.wait_ready(10s));
  EXPECT_NE(a.server.log().find("taken from systemd (socket activation, fd 3 (127.0.0.1:" +
                                std::to_string(port) + ", name \"" + name + "\"))"),
            std::string::npos)
      << a.server.log();
  a.server.stop(SIGTERM);
}

// ---- unit files ------------------------------------------------------------------

// systemd-analyze verify checks that ExecStart's binary exists, and the
// shipped unit names the installed path (/usr/local/bin/ringhttpd): so the
// units are verified as copies in a temporary directory whose Exec lines
// point at the binary just built. Everything else is verified as shipped.
TEST(SystemdUnits, VerifyPasses) {
  if (::access("/usr/bin/systemd-analyze", X_OK) != 0) {
    GTEST_SKIP() << "/usr/bin/systemd-analyze not installed";
  }
  TempDir dir;
  const std::string service = dir.file("ringhttpd.service");
  const std::string socket = dir.file("ringhttpd.socket");
  std::string text = read_text(std::string(RINGHTTPD_SOURCE_DIR) + "/etc/ringhttpd.service");
  ASSERT_NE(text.find("ExecStart=/usr/local/bin/ringhttpd serve"), std::string::npos);
  for (size_t at; (at = text.find("/usr/local/bin/ringhttpd")) != std::string::npos;) {
    text.replace(at, std::string("/usr/local/bin/ringhttpd").size(), RINGHTTPD_BINARY);
  }
  std::ofstream(service) << text;
  std::ofstream(socket) << read_text(std::string(RINGHTTPD_SOURCE_DIR) + "/etc/ringhttpd.socket");
  std::string output;
  const int status = run_command({"/usr/bin/systemd-analyze", "verify", socket, service}, output);
  EXPECT_EQ(status, 0) << output;
  // Warnings (an unknown key, an invalid value) do not fail verify: none allowed.
  EXPECT_EQ(output, "");
}

// ---- privileges -------------------------------------------------------------------

TEST(SystemdPrivileges, ChildrenRunAsNobody) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root: only root can start children as another user";
  }
  json config = base_config();
  config["user"] = "nobody";
  config["group"] = "nogroup";
  config["services"][0]["processes"] = 2;
  Server server(config.dump());
  ASSERT_TRUE(server.ready()) << server.log();
  const auto kids = server.children();
  ASSERT_EQ(kids.size(), 3u) << server.log();
  for (const auto& [pid, title] : kids) {
    EXPECT_EQ(status_field(pid, "Uid"), "65534 65534 65534 65534") << title;
    EXPECT_EQ(status_field(pid, "Gid"), "65534 65534 65534 65534") << title;
    EXPECT_EQ(status_field(pid, "Groups"), "65534") << title;
  }
  EXPECT_EQ(status_field(server.pid(), "Uid"), "0 0 0 0") << "the supervisor stays root";
  auto fast = http_get(server.port(), "/healthz");
  ASSERT_TRUE(fast.has_value());
  EXPECT_EQ(fast->status, 200);
  auto service = http_get(server.port(), "/echo");
  ASSERT_TRUE(service.has_value());
  EXPECT_EQ(service->status, 200);
  // The segment belongs to the user, so that the children can remove it
  // when the supervisor is killed.
  struct stat st {};
  ASSERT_EQ(::stat(server.segment_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  std::vector<pid_t> pids;
  for (const auto& [pid, title] : kids) pids.push_back(pid);
  const std::vector<std::string> segments = server.segments();
  ::kill(server.pid(), SIGKILL);
  EXPECT_TRUE(wait_gone(pids, 10s));
  for (const std::string& s : segments) EXPECT_NE(::access(s.c_str(), F_OK), 0) << s << " left";
}

TEST(SystemdPrivileges, UnknownUserIsAConfigError) {
  std::string output;
  TempFile file(R"({"user": "no-such-user-ringhttpd", "group": "no-such-group-ringhttpd"})");
  const int status = run_binary({"check", "-c", file.path()}, output);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1);
  EXPECT_NE(output.find(": user: no user named \"no-such-user-ringhttpd\""), std::string::npos)
      << output;
}

}  // namespace
}  // namespace ringhttpd::testing
