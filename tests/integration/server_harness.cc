// Implementation of the integration-test harness (see server_harness.h).
#include "tests/integration/server_harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

namespace ringhttpd::testing {
namespace {

pid_t spawn_binary(const std::vector<std::string>& args, int out_fd, Binary which,
                   const Launch& launch = {}) {
  std::vector<char*> argv;
  std::vector<std::string> copy = launch.wrapper;
  copy.push_back(which == Binary::shipped ? RINGHTTPD_BINARY : RINGHTTPD_TEST_BINARY);
  copy.insert(copy.end(), args.begin(), args.end());
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_copy = launch.env;
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  for (std::string& e : env_copy) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(out_fd, STDERR_FILENO);
    if (!launch.cwd.empty() && ::chdir(launch.cwd.c_str()) != 0) ::_exit(126);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

bool wait_pid(pid_t pid, int& status, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  // waitpid has no timeout; SIGCHLD cannot be waited on portably from a test
  // thread, so poll the child's state with a short interval until the deadline.
  while (Clock::now() < deadline) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return true;
    if (r < 0) return false;
    ::usleep(5000);
  }
  return false;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

pid_t parent_of(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 2));
  char state;
  pid_t ppid = -1;
  rest >> state >> ppid;
  return ppid;
}

}  // namespace

TempFile::TempFile(const std::string& contents) {
  char tmpl[] = "/tmp/ringhttpd-test-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  path_ = tmpl;
  if (fd >= 0) {
    ssize_t unused = ::write(fd, contents.data(), contents.size());
    (void)unused;
    ::close(fd);
  }
}

TempFile::~TempFile() { ::unlink(path_.c_str()); }

WorkDir::WorkDir() {
  char tmpl[] = "/tmp/ringhttpd-work-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return;
  path_ = tmpl;
  ::mkdir((path_ + "/run").c_str(), 0700);
}

WorkDir::~WorkDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

// Written to a new file renamed over the old one, so a reader never sees
// half of it.
void TempFile::write(const std::string& contents) {
  const std::string tmp = path_ + ".new";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  ssize_t unused = ::write(fd, contents.data(), contents.size());
  (void)unused;
  ::close(fd);
  ::rename(tmp.c_str(), path_.c_str());
}

int run_binary(const std::vector<std::string>& args, std::string& output, Binary binary,
               const Launch& launch) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) < 0) return -1;
  const WorkDir workdir;
  Launch with_cwd = launch;
  if (with_cwd.cwd.empty()) with_cwd.cwd = workdir.path();
  const pid_t pid = spawn_binary(args, pipefd[1], binary, with_cwd);
  ::close(pipefd[1]);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) output.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  if (!wait_pid(pid, status, std::chrono::seconds(30))) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -1;
  }
  return status;
}

Server::Server(const std::string& config_json, Binary binary, const Launch& launch)
    : config_(config_json), stall_after_ready_(launch.stall_output) {
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) < 0) return;
  Launch with_cwd = launch;
  if (with_cwd.cwd.empty()) with_cwd.cwd = workdir_.path();
  pid_ = spawn_binary({"serve", "-c", config_.path()}, pipefd[1], binary, with_cwd);
  ::close(pipefd[1]);
  reader_ = std::thread([this, fd = pipefd[0]] { drain_output(fd); });
  if (launch.wait_ready) wait_ready();
}

bool Server::wait_ready(std::chrono::milliseconds timeout) {
  if (!wait_for_log("ready: listening on ", timeout)) return false;
  const std::string text = log();
  const size_t at = text.find("ready: listening on ");
  const size_t colon = text.find_first_of(";,\n", at);
  const std::string address = text.substr(at, colon - at);
  port_ = std::atoi(address.substr(address.rfind(':') + 1).c_str());
  return port_ != 0;
}

Server::~Server() {
  if (pid_ > 0) {
    const auto kids = children();
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
    std::vector<pid_t> pids;
    for (const auto& [p, title] : kids) {
      ::kill(p, SIGKILL);
      pids.push_back(p);
    }
    wait_gone(pids, std::chrono::seconds(10));
    for (const std::string& seg : segments()) ::unlink(seg.c_str());
  }
  resume_output();
  if (reader_.joinable()) reader_.join();
}

void Server::drain_output(int fd) {
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) {
    std::unique_lock<std::mutex> lock(mu_);
    log_.append(buf, static_cast<size_t>(n));
    cv_.notify_all();
    if (stall_after_ready_ && log_.find("ready: listening on ") != std::string::npos) {
      cv_.wait(lock, [this] { return !stall_after_ready_; });
    }
  }
  ::close(fd);
}

void Server::resume_output() {
  std::lock_guard<std::mutex> lock(mu_);
  stall_after_ready_ = false;
  cv_.notify_all();
}

std::string Server::log() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

bool Server::wait_for_log(const std::string& text, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return log_.find(text) != std::string::npos; });
}

std::map<pid_t, std::string> Server::children() const {
  std::map<pid_t, std::string> out;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return out;
  while (dirent* e = ::readdir(dir)) {
    const pid_t p = std::atoi(e->d_name);
    if (p <= 0 || parent_of(p) != pid_) continue;
    std::string cmdline = read_file("/proc/" + std::to_string(p) + "/cmdline");
    out[p] = cmdline.substr(0, cmdline.find('\0'));
  }
  ::closedir(dir);
  return out;
}

pid_t Server::child(const std::string& title) const {
  for (const auto& [pid, t] : children()) {
    if (t == title) return pid;
  }
  return -1;
}

int Server::stop(int sig, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  if (sig != 0) ::kill(pid_, sig);
  int status = 0;
  if (!wait_pid(pid_, status, timeout)) return -1;
  pid_ = -1;
  return status;
}

std::string Server::segment_path() const {
  return "/dev/shm/ringhttpd." + std::to_string(pid_) + ".g1";
}

std::vector<std::string> Server::segments() const {
  std::vector<std::string> out;
  const std::string prefix = "ringhttpd." + std::to_string(pid_) + ".g";
  if (DIR* dir = ::opendir("/dev/shm")) {
    while (dirent* e = ::readdir(dir)) {
      if (std::string(e->d_name).rfind(prefix, 0) == 0)
        out.push_back("/dev/shm/" + std::string(e->d_name));
    }
    ::closedir(dir);
  }
  return out;
}

void Server::rewrite_config(const std::string& config_json) { config_.write(config_json); }

bool wait_gone(const std::vector<pid_t>& pids, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (pid_t p : pids) {
    for (;;) {
      int status;
      // Our own children (subreaper) are reaped here; others just vanish.
      const pid_t r = ::waitpid(p, &status, WNOHANG);
      if (r == p || (r < 0 && ::kill(p, 0) < 0 && errno == ESRCH)) break;
      if (Clock::now() > deadline) return false;
      ::usleep(5000);
    }
  }
  return true;
}

Client::Client(int port, int rcvbuf) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

int Client::local_port() const {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (fd_ < 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  return ntohs(addr.sin_port);
}

bool Client::send(const std::string& bytes) {
  size_t at = 0;
  while (at < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return false;
    at += static_cast<size_t>(n);
  }
  return true;
}

bool Client::send_nonblocking(const std::string& bytes, std::chrono::milliseconds stall) {
  size_t at = 0;
  while (at < bytes.size()) {
    const ssize_t n =
        ::send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      at += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
    pollfd pfd{fd_, POLLOUT, 0};
    if (::poll(&pfd, 1, static_cast<int>(stall.count())) <= 0) return false;
  }
  return true;
}

bool Client::fill(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return false;
  pollfd pfd{fd_, POLLIN, 0};
  if (::poll(&pfd, 1, static_cast<int>(left)) <= 0) return false;
  char buf[65536];
  const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  buffer_.append(buf, static_cast<size_t>(n));
  return true;
}

std::optional<Client::Response> Client::read_response(std::chrono::milliseconds timeout,
                                                      bool head_request) {
  const auto deadline = Clock::now() + timeout;
  size_t head_end;
  while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(deadline)) return std::nullopt;
  }
  Response r;
  std::istringstream head(buffer_.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  if (line.size() < 12) return std::nullopt;
  r.status = std::atoi(line.substr(9, 3).c_str());
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
  }
  const size_t length =
      r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
  const bool has_body = !head_request && r.status >= 200 && r.status != 204 && r.status != 304;
  const size_t want = head_end + 4 + (has_body ? length : 0);
  while (buffer_.size() < want) {
    if (!fill(deadline)) return std::nullopt;
  }
  r.body = buffer_.substr(head_end + 4, want - head_end - 4);
  buffer_.erase(0, want);
  return r;
}

std::optional<std::string> Client::read_until_close(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (fill(deadline)) {
  }
  if (!eof_) return std::nullopt;
  return std::exchange(buffer_, std::string());
}

void Client::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

bool Client::closed_by_peer(std::chrono::milliseconds timeout) {
  pollfd pfd{fd_, POLLIN, 0};
  if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char buf[256];
  return ::recv(fd_, buf, sizeof buf, 0) <= 0;
}

std::optional<Client::Response> http_get(int port, const std::string& target) {
  Client c(port);
  if (!c.connected()) return std::nullopt;
  if (!c.send("GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n")) return std::nullopt;
  return c.read_response();
}

LoopbackListener::LoopbackListener(std::function<void(int fd)> serve) : serve_(std::move(serve)) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(fd_, 4096);
  socklen_t len = sizeof a;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

LoopbackListener::~LoopbackListener() {
  stop_ = true;
  ::shutdown(fd_, SHUT_RDWR);
  acceptor_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int c : open_) ::shutdown(c, SHUT_RDWR);
  }
  for (auto& t : workers_) t.join();
  ::close(fd_);
}

void LoopbackListener::accept_loop() {
  while (!stop_) {
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    ++connections_;
    std::lock_guard<std::mutex> lock(mu_);
    open_.push_back(c);
    workers_.emplace_back([this, c] { run(c); });
  }
}

void LoopbackListener::run(int fd) {
  serve_(fd);
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::erase(open_, fd);
    ::close(fd);
  }
  ++closed_;
}

bool wait_server_read_all(int server_port, int client_port, std::chrono::milliseconds timeout) {
  char local[16], remote[16];
  std::snprintf(local, sizeof local, "0100007F:%04X", server_port);
  std::snprintf(remote, sizeof remote, "0100007F:%04X", client_port);
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::ifstream in("/proc/net/tcp");
    std::string line;
    std::getline(in, line);  // the column names
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, l, r, state, queues;
      fields >> slot >> l >> r >> state >> queues;
      if (l != local || r != remote) continue;
      if (std::stoul(queues.substr(queues.find(':') + 1), nullptr, 16) == 0) return true;
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

StuckListener::StuckListener() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(fd_, 0) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return;
  }
  port_ = ntohs(addr.sin_port);
}

StuckListener::~StuckListener() {
  unfill();
  close();
}

void StuckListener::unfill() {
  for (int f : fillers_) ::close(f);
  fillers_.clear();
}

void StuckListener::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void StuckListener::fill() {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  for (int i = 0; i < 3; ++i) {
    const int f = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (f < 0) return;
    fillers_.push_back(f);
    ::connect(f, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  }
}

}  // namespace ringhttpd::testing
