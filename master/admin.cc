// The admin socket's listener and clients (see admin.h; the wire format is
// in admin_protocol.h).
#include "master/admin.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "worker/event_loop.h"
#include "worker/log.h"

namespace ringhttpd::master {
namespace {

using nlohmann::json;

constexpr size_t kReadChunk = 16384;
constexpr size_t kReadPerEvent = 65536;  // fairness: one client cannot monopolise a loop turn
constexpr size_t kAcceptPerEvent = 128;
constexpr int64_t kAcceptPauseMs = 100;

std::string errno_text() { return std::strerror(errno); }

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // The config loader bounds the length (sun_path minus its NUL).
  std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof addr.sun_path - 1));
  return addr;
}

// One line, sent without waiting, to a client about to be closed (refused,
// one too many): if its buffer is full it simply does not get the line.
void send_parting_line(int fd, const json& answer) {
  const std::string line = admin_line(answer);
  ssize_t unused = ::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)unused;
}

// Whether some process listens at `path`: a non-blocking probe, so a live
// server with a full backlog (EAGAIN) counts as live instead of blocking us.
enum class Probe { live, stale, error };
Probe probe(const std::string& path, std::string& error) {
  proto::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return error = worker::errno_message("socket"), Probe::error;
  const sockaddr_un addr = unix_address(path);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 ||
      errno == EAGAIN || errno == EINPROGRESS) {
    return Probe::live;
  }
  if (errno == ECONNREFUSED) return Probe::stale;
  error = "connect(" + escape_text(path) + "): " + errno_text();
  return Probe::error;
}

}  // namespace

struct AdminServer::Client {
  proto::UniqueFd fd;
  pid_t pid = 0;
  uid_t uid = 0;
  LineBuffer in;
  std::string out;
  size_t out_at = 0;                       // out[0, out_at) is written
  int64_t progress_ms = 0;                 // connected, a complete line read, or bytes written
  std::optional<uint64_t> waiting_reload;  // the reload whose end answers it
  bool eof = false;                        // the client will send nothing more
  bool close_when_written = false;
  bool closed = false;  // dropped at the end of handle()

  bool writing() const { return out_at < out.size(); }
  bool busy() const { return waiting_reload.has_value() || writing(); }
};

std::unique_ptr<AdminServer> AdminServer::open(const AdminConfig& config, AdminHooks hooks,
                                               std::string& error) {
  const std::string& path = config.socket;
  const std::string shown = escape_text(path);
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty() || base == "." || base == "..") {
    error = "admin.socket: " + shown + " names a directory, not a socket file";
    return nullptr;
  }
  // Where the socket lives (and who may traverse to it) is the operator's
  // decision, e.g. systemd's RuntimeDirectory. Only a missing last directory
  // (the default "run/" under the working directory) is created, private to
  // this user (0700), so `ringhttpd serve` works from a fresh checkout.
  proto::UniqueFd dir_fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd && errno == ENOENT && ::mkdir(dir.c_str(), 0700) == 0) {
    dir_fd = proto::UniqueFd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  }
  if (!dir_fd) {
    error = "admin.socket: cannot create " + shown + ": directory " + escape_text(dir) + ": " +
            errno_text() +
            (errno == ENOENT ? " (create it, or set admin.socket; \"\" disables it)" : "");
    return nullptr;
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      error = "admin.socket: " + shown + " exists and is not a socket; not replacing it";
      return nullptr;
    }
    std::string probe_error;
    switch (probe(path, probe_error)) {
      case Probe::live:
        error = "admin.socket: another ringhttpd serves admin.socket " + shown;
        return nullptr;
      case Probe::error:
        error = "admin.socket: " + probe_error;
        return nullptr;
      case Probe::stale:
        // Left by an instance that died without removing it (SIGKILL).
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
          error = "admin.socket: cannot remove the stale socket " + shown + ": " + errno_text();
          return nullptr;
        }
        worker::log_warn("admin: replaced the stale socket " + shown + " of a dead instance");
        break;
    }
  }
  proto::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return error = "admin.socket: " + worker::errno_message("socket"), nullptr;
  const sockaddr_un addr = unix_address(path);
  // The file is created with the configured mode at once (no window in
  // which it has the umask's looser one); the supervisor is single-threaded
  // here, so changing the process umask for the one call is safe.
  const mode_t old_mask = ::umask(static_cast<mode_t>(~config.mode & 0777));
  const int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int bind_errno = errno;
  ::umask(old_mask);
  if (bound != 0) {
    error = bind_errno == EADDRINUSE
                ? "admin.socket: another ringhttpd serves admin.socket " + shown
                : "admin.socket: bind(" + shown + "): " + std::strerror(bind_errno);
    return nullptr;
  }
  std::unique_ptr<AdminServer> server;
  if (::chmod(path.c_str(), config.mode) != 0 || ::listen(fd.get(), SOMAXCONN) != 0 ||
      ::lstat(path.c_str(), &st) != 0) {
    error = "admin.socket: " + shown + ": " + errno_text();
    ::unlink(path.c_str());
    return nullptr;
  }
  server.reset(
      new AdminServer(path, std::move(fd), std::move(dir_fd), st.st_ino, config, std::move(hooks)));
  return server;
}

AdminServer::AdminServer(std::string path, proto::UniqueFd listener, proto::UniqueFd dir,
                         ino_t inode, AdminConfig config, AdminHooks hooks)
    : path_(std::move(path)),
      listener_(std::move(listener)),
      dir_(std::move(dir)),
      inode_(inode),
      config_(std::move(config)),
      hooks_(std::move(hooks)) {}

AdminServer::~AdminServer() { shutdown("the server is stopping"); }

void AdminServer::add_pollfds(std::vector<pollfd>& fds) const {
  const bool paused = worker::monotonic_ms() < accept_paused_until_;
  fds.push_back(pollfd{listener_.get(), static_cast<short>(listener_ && !paused ? POLLIN : 0), 0});
  for (const auto& c : clients_) {
    short events = 0;
    if (!c->busy() && !c->eof && !c->close_when_written) events |= POLLIN;
    if (c->writing()) events |= POLLOUT;
    fds.push_back(pollfd{c->fd.get(), events, 0});
  }
}

void AdminServer::handle(std::span<const pollfd> fds, int64_t now_ms) {
  if (fds.empty() || !listener_) return;
  for (size_t i = 1; i < fds.size() && i - 1 < clients_.size(); ++i) {
    Client& c = *clients_[i - 1];
    const short ev = fds[i].revents;
    if (ev == 0 || c.closed || c.fd.get() != fds[i].fd) continue;
    if (ev & (POLLERR | POLLNVAL)) {
      c.closed = true;
      continue;
    }
    if (ev & POLLOUT) flush(c, now_ms);
    if (ev & POLLIN) read_from(c, now_ms);
    // POLLHUP without POLLIN: both directions are gone; nobody can read an answer.
    if ((ev & POLLHUP) && !(ev & POLLIN)) c.closed = true;
  }
  if (fds[0].revents & POLLIN) accept_all(now_ms);
  for (auto& c : clients_) {
    // Lines buffered while the client was busy (it pipelined them) have no
    // readiness event of their own: serve them now that it is free.
    if (!c->closed && !c->busy()) serve_lines(*c, now_ms);
    // A client waiting for a reload is not idle: the reload bounds the wait.
    if (c->closed || c->waiting_reload || now_ms - c->progress_ms < kAdminIdleMs) continue;
    if (!c->writing()) {
      send_parting_line(c->fd.get(),
                        admin_error("no complete request within " +
                                    std::to_string(kAdminIdleMs / 1000) + " s; closing"));
    }
    c->closed = true;
  }
  std::erase_if(clients_, [](const std::unique_ptr<Client>& c) { return c->closed; });
}

void AdminServer::accept_all(int64_t now_ms) {
  for (size_t n = 0; n < kAcceptPerEvent; ++n) {
    proto::UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // Out of descriptors or memory: the listener stays readable, so stop
      // polling it a moment instead of spinning.
      worker::log_error("admin: " + worker::errno_message("accept4"));
      accept_paused_until_ = now_ms + kAcceptPauseMs;
      return;
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      worker::log_error("admin: " + worker::errno_message("getsockopt(SO_PEERCRED)"));
      continue;
    }
    if (!allowed(fd.get(), cred.uid, cred.gid)) {
      std::string who = ::geteuid() == 0 ? "root" : "root or uid " + std::to_string(::geteuid());
      if (!config_.group.empty()) who += " or group " + escape_text(config_.group);
      worker::log_warn("admin: refused a connection from uid " + std::to_string(cred.uid) +
                       " (pid " + std::to_string(cred.pid) + "): only " + who + " may connect");
      send_parting_line(fd.get(), admin_error("permission denied: only " + who + " may connect"));
      continue;
    }
    // Clients closed in this turn (not yet dropped) do not count.
    const auto live = std::count_if(clients_.begin(), clients_.end(),
                                    [](const std::unique_ptr<Client>& x) { return !x->closed; });
    if (static_cast<size_t>(live) >= kMaxAdminClients) {
      send_parting_line(fd.get(),
                        admin_error("too many admin clients (at most " +
                                    std::to_string(kMaxAdminClients) + " at once); try again"));
      continue;
    }
    if (hooks_.room_for_client && !hooks_.room_for_client()) {
      send_parting_line(fd.get(), admin_error("too many admin clients for the server's open-file "
                                              "limit (RLIMIT_NOFILE: the rest is kept for "
                                              "respawns and reloads); try again"));
      continue;
    }
    auto c = std::make_unique<Client>();
    c->fd = std::move(fd);
    c->pid = cred.pid;
    c->uid = cred.uid;
    c->progress_ms = now_ms;
    clients_.push_back(std::move(c));
  }
}

bool AdminServer::allowed(int fd, uid_t uid, gid_t gid) const {
  if (uid == 0 || uid == ::geteuid()) return true;
  if (config_.group.empty()) return false;
  const auto group = static_cast<gid_t>(config_.group_gid);
  if (gid == group) return true;
  // Supplementary groups as the peer had them when it connected.
  std::vector<gid_t> groups(64);
  socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) != 0) {
    if (errno != ERANGE) return false;
    groups.resize(len / sizeof(gid_t) + 1);
    len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) != 0) return false;
  }
  groups.resize(len / sizeof(gid_t));
  return std::find(groups.begin(), groups.end(), group) != groups.end();
}

void AdminServer::read_from(Client& c, int64_t now_ms) {
  char buf[kReadChunk];
  for (size_t total = 0; total < kReadPerEvent && !c.in.overflowed();) {
    const ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      c.in.append(std::string_view(buf, static_cast<size_t>(n)));
      total += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      c.eof = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      c.closed = true;
    }
    break;
  }
  if (!c.closed) serve_lines(c, now_ms);
}

// Answers buffered lines one at a time until one leaves the client busy
// (an answer not fully written, or a reload to wait for).
void AdminServer::serve_lines(Client& c, int64_t now_ms) {
  while (!c.closed && !c.busy() && !c.close_when_written) {
    std::optional<std::string> line = c.in.next_line();
    if (!line && c.in.overflowed()) {
      answer(c, admin_error("request line longer than " + std::to_string(kMaxAdminLine) +
                            " bytes; closing"));
      c.close_when_written = true;
      flush(c, now_ms);
      return;
    }
    if (!line && c.eof) {
      std::string rest = c.in.take_rest();  // a last line without "\n"
      if (rest.empty()) {
        c.closed = true;
        return;
      }
      line = std::move(rest);
    }
    if (!line) return;
    // A blank line is no progress: a client sending one now and then would
    // otherwise hold its place (of a bounded few) for ever.
    if (line->find_first_not_of(" \t\r") == std::string::npos) continue;
    c.progress_ms = now_ms;
    const AdminRequest req = parse_admin_request(*line);
    if (!req.command) {
      answer(c, req.error);
    } else {
      switch (*req.command) {
        case AdminCommand::status:
          answer(c, hooks_.status());
          break;
        case AdminCommand::config:
          answer(c, hooks_.config());
          break;
        case AdminCommand::metrics:
          answer(c, hooks_.metrics ? hooks_.metrics() : admin_error("metrics are not available"));
          break;
        case AdminCommand::help:
          answer(c, admin_help());
          break;
        case AdminCommand::reload: {
          std::string error;
          const std::optional<uint64_t> sequence = hooks_.reload(error);
          if (sequence) {
            c.waiting_reload = sequence;
          } else {
            answer(c, admin_error(error));
          }
          break;
        }
      }
    }
    flush(c, now_ms);
  }
}

void AdminServer::answer(Client& c, const json& reply) {
  std::string line = admin_line(reply);
  if (line.size() > kMaxAdminOutput) {
    line = admin_line(admin_error("answer too large (" + std::to_string(line.size()) +
                                  " bytes, at most " + std::to_string(kMaxAdminOutput) + ")"));
  }
  c.out.erase(0, c.out_at);
  c.out_at = 0;
  c.out += line;
}

void AdminServer::flush(Client& c, int64_t now_ms) {
  while (c.writing()) {
    const ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_at, c.out.size() - c.out_at,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out_at += static_cast<size_t>(n);
      c.progress_ms = now_ms;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // POLLOUT resumes it
    c.closed = true;                                                 // the client went away
    return;
  }
  c.out.clear();
  c.out_at = 0;
  if (c.close_when_written) c.closed = true;
}

void AdminServer::reload_finished(uint64_t sequence, const json& reply) {
  const int64_t now = worker::monotonic_ms();
  for (auto& c : clients_) {
    if (c->closed || !c->waiting_reload || *c->waiting_reload > sequence) continue;
    c->waiting_reload.reset();
    answer(*c, reply);
    flush(*c, now);  // lines it sent meanwhile are served by the next handle()
  }
}

void AdminServer::shutdown(std::string_view reason) {
  for (auto& c : clients_) {
    if (c->closed) continue;
    if (c->waiting_reload) {
      c->waiting_reload.reset();
      answer(*c, admin_error(reason));
    }
    flush(*c, worker::monotonic_ms());  // best effort: it is not waited for
  }
  clients_.clear();
  listener_.reset();
  unlink_socket();
}

// Removes the socket file if it is still the one this server created (an
// operator may have replaced it meanwhile; that one is not ours to remove).
void AdminServer::unlink_socket() {
  if (!dir_) return;
  const size_t slash = path_.rfind('/');
  const std::string base = slash == std::string::npos ? path_ : path_.substr(slash + 1);
  struct stat st {};
  if (::fstatat(dir_.get(), base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == inode_ &&
      S_ISSOCK(st.st_mode) && ::unlinkat(dir_.get(), base.c_str(), 0) != 0) {
    worker::log_warn("admin: cannot remove " + escape_text(path_) + ": " + errno_text());
  }
  dir_.reset();
}

}  // namespace ringhttpd::master
