// The supervisor's start, watch and stop sequences (see supervisor.h).
#include "master/supervisor.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "master/fd_limit.h"
#include "proto/control.h"
#include "worker/child.h"
#include "worker/event_loop.h"
#include "worker/log.h"
#include "worker/process_title.h"

namespace ringhttpd::master {
namespace {

using worker::log_error;
using worker::log_info;
using worker::log_warn;

constexpr int kReadyTimeoutMs = 10000;
constexpr int kGracefulStopMs = 12000;  // a network process drains for up to 10 s
constexpr int kFastStopMs = 1000;
constexpr int kKillWaitMs = 2000;

sigset_t supervisor_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGCHLD, SIGHUP, SIGUSR1}) sigaddset(&set, sig);
  return set;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

}  // namespace

bool is_stale_instance(bool pid_running, std::string_view comm) {
  return !pid_running || !comm.starts_with("ringhttpd");
}

std::vector<std::string> remove_stale_segments() {
  std::vector<std::string> removed;
  DIR* dir = ::opendir("/dev/shm");
  if (dir == nullptr) return removed;
  while (dirent* e = ::readdir(dir)) {
    const std::string name = e->d_name;
    const std::optional<uint32_t> pid = shm::segment_instance(name);
    if (!pid || *pid == static_cast<uint32_t>(::getpid())) continue;
    const bool running = ::kill(static_cast<pid_t>(*pid), 0) == 0 || errno == EPERM;
    std::string comm;
    std::ifstream(std::string("/proc/") + std::to_string(*pid) + "/comm") >> comm;
    if (is_stale_instance(running, comm) && shm::Segment::remove(name)) removed.push_back(name);
  }
  ::closedir(dir);
  return removed;
}

Supervisor::Supervisor(Config config) : config_(std::move(config)) {}

Supervisor::~Supervisor() {
  if (segment_) shm::Segment::remove(segment_->name());
}

int Supervisor::run() {
  worker::set_process_title("ringhttpd: supervisor");
  worker::set_log_level(worker::parse_log_level(config_.log.level));
  const sigset_t set = supervisor_signals();
  // A signal ignored at exec (a shell starts background jobs with SIGINT
  // ignored; nohup ignores SIGHUP) is discarded, not queued for the signalfd:
  // restore the default disposition first, then block.
  for (int sig : {SIGTERM, SIGINT, SIGCHLD, SIGHUP, SIGUSR1}) ::signal(sig, SIG_DFL);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  signal_fd_ = proto::UniqueFd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_ || !prepare() || !spawn_all() || !send_listeners() || !wait_ready()) {
    stop_role(shm::ProcessRole::network, false, kFastStopMs);
    stop_role(shm::ProcessRole::service, false, kFastStopMs);
    return 1;
  }
  log_info(ready_line());
  const Outcome outcome = watch();
  const bool graceful = outcome == Outcome::stop_graceful;
  log_info(graceful ? "stopping (graceful)" : "stopping");
  listeners_.clear();  // new connections are refused now, not left in the backlog
  stop_role(shm::ProcessRole::network, graceful, graceful ? kGracefulStopMs : kFastStopMs);
  stop_role(shm::ProcessRole::service, graceful, kFastStopMs);
  log_info("stopped");
  return outcome == Outcome::failed ? 1 : 0;
}

bool Supervisor::prepare() {
  std::string error;
  if (!bind_listeners(config_.listeners, listeners_, error)) {
    log_error(error);
    return false;
  }
  for (const std::string& name : remove_stale_segments()) {
    log_warn("removed stale shared memory segment /dev/shm/" + name);
  }
  const int cpus = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  n_network_ = static_cast<uint32_t>(config_.network.processes > 0 ? config_.network.processes
                                                                   : std::max(cpus, 1));
  size_t n_service = 0;
  for (const auto& s : config_.services) n_service += static_cast<size_t>(s.processes);
  error =
      raise_fd_limit(config_.network.max_connections, listeners_.size(), n_network_ + n_service);
  if (!error.empty()) return log_error(error), false;
  shm::SegmentSpec spec{generation_, n_network_, {}};
  worker::WorkerEnv& env = env_template_;
  for (const worker::ServiceSettings& s : config_.services) {
    env.pools.push_back({static_cast<uint32_t>(spec.service_ring_bytes.size()),
                         static_cast<uint32_t>(s.processes)});
    for (int i = 0; i < s.processes; ++i) spec.service_ring_bytes.push_back(s.ring_bytes);
  }
  segment_ = shm::Segment::create(shm::segment_name(static_cast<uint32_t>(::getpid()), generation_),
                                  spec, error);
  if (!segment_) {
    log_error(error);
    return false;
  }
  for (uint32_t i = 0; i < segment_->slot_count(); ++i) {
    wake_fds_.emplace_back(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!wake_fds_.back()) return log_error(worker::errno_message("eventfd")), false;
    env.wake_fds.push_back(wake_fds_.back().get());
  }
  env.generation = generation_;
  env.supervisor_pid = static_cast<uint32_t>(::getpid());
  env.segment = &*segment_;
  env.network = config_.network;
  env.services = config_.services;
  env.routes = config_.routes;
  env.log_level = config_.log.level;
  return true;
}

bool Supervisor::spawn_all() {
  for (uint32_t i = 0; i < n_network_; ++i) {
    if (!spawn(shm::ProcessRole::network, i, -1, 0)) return false;
  }
  uint32_t service_proc = 0;
  for (size_t s = 0; s < config_.services.size(); ++s) {
    for (int i = 0; i < config_.services[s].processes; ++i) {
      if (!spawn(shm::ProcessRole::service, static_cast<uint32_t>(i), static_cast<int>(s),
                 service_proc++)) {
        return false;
      }
    }
  }
  return true;
}

bool Supervisor::spawn(shm::ProcessRole role, uint32_t index, int service, uint32_t service_proc) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
    return log_error(worker::errno_message("socketpair")), false;
  }
  proto::UniqueFd mine(pair[0]), theirs(pair[1]);
  worker::WorkerEnv env = env_template_;
  env.role = role;
  env.index = index;
  env.service = service;
  env.service_proc = service_proc;
  env.control_fd = theirs.get();
  shm::ProcessSlot& slot = segment_->slot(env.slot());
  slot.role = role;
  slot.generation = generation_;
  slot.index = index;
  slot.incarnation += 1;
  slot.started_at_ms = static_cast<uint64_t>(worker::monotonic_ms());
  const pid_t pid = ::fork();
  if (pid < 0) return log_error(worker::errno_message("fork")), false;
  if (pid == 0) {
    close_in_child(theirs.get());
    mine.release();  // closed by close_in_child
    ::_exit(worker::run_child(env));
  }
  Child child;
  child.pid = pid;
  child.role = role;
  child.index = index;
  child.title = worker::child_title(env);
  child.control = std::move(mine);
  children_.push_back(std::move(child));
  return true;
}

// In a new child: drop what belongs to the supervisor. The listening sockets
// are closed too: network processes get them again over the control channel.
// The sweep after the owned descriptors catches anything inherited from the
// supervisor's own parent without O_CLOEXEC (ringhttpd opens none such).
void Supervisor::close_in_child(int keep_control) {
  for (Listener& l : listeners_) l.fd.reset();
  for (Child& c : children_) c.control.reset();
  signal_fd_.reset();
  // Descriptors the supervisor owns that a child must keep: its control
  // socket and the wake-up eventfds. Anything else open is closed, at any
  // number (the fd limit may be high), as listed by /proc/self/fd.
  std::vector<int> open_fds;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(dir)) {
      const int fd = std::atoi(e->d_name);
      if (fd > 2 && fd != ::dirfd(dir)) open_fds.push_back(fd);
    }
    ::closedir(dir);
  }
  for (int fd : open_fds) {
    bool keep = fd == keep_control;
    for (const auto& w : wake_fds_) keep = keep || w.get() == fd;
    if (!keep) ::close(fd);
  }
}

bool Supervisor::send_listeners() {
  std::vector<int> fds;
  for (const Listener& l : listeners_) fds.push_back(l.fd.get());
  for (Child& c : children_) {
    if (c.role != shm::ProcessRole::network) continue;
    for (size_t at = 0; at < fds.size(); at += proto::kMaxFdsPerMessage) {
      const size_t n = std::min(proto::kMaxFdsPerMessage, fds.size() - at);
      std::vector<int> batch(fds.begin() + static_cast<long>(at),
                             fds.begin() + static_cast<long>(at + n));
      const std::string err =
          proto::send_control(c.control.get(), {proto::ControlType::listeners, 0}, batch);
      if (!err.empty()) return log_error(c.title + ": " + err), false;
    }
  }
  return true;
}

bool Supervisor::wait_ready() {
  const int64_t deadline = worker::monotonic_ms() + kReadyTimeoutMs;
  for (;;) {
    size_t waiting = 0;
    std::vector<pollfd> fds{{signal_fd_.get(), POLLIN, 0}};
    for (Child& c : children_) {
      if (!c.ready) fds.push_back({c.control.get(), POLLIN, 0}), ++waiting;
    }
    if (waiting == 0) return true;
    const int64_t left = deadline - worker::monotonic_ms();
    if (left <= 0) return log_error("children not ready within 10 s"), false;
    if (::poll(fds.data(), fds.size(), static_cast<int>(left)) < 0 && errno != EINTR) return false;
    if (fds[0].revents && handle_signals() != Outcome::running) return false;
    for (Child& c : children_) {
      proto::ControlMessage msg{};
      std::vector<proto::UniqueFd> unused;
      std::string err;
      if (c.ready || c.exited) continue;
      const proto::RecvStatus st = proto::recv_control(c.control.get(), msg, unused, err);
      if (st == proto::RecvStatus::ok && msg.type == proto::ControlType::ready) c.ready = true;
      if (st == proto::RecvStatus::closed || st == proto::RecvStatus::error) {
        return log_error(c.title + " failed to start"), false;
      }
    }
  }
}

Supervisor::Outcome Supervisor::watch() {
  for (;;) {
    pollfd pfd{signal_fd_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, -1) < 0 && errno != EINTR) return Outcome::failed;
    const Outcome outcome = handle_signals();
    if (outcome != Outcome::running) return outcome;
  }
}

Supervisor::Outcome Supervisor::handle_signals() {
  Outcome outcome = Outcome::running;
  signalfd_siginfo info{};
  while (::read(signal_fd_.get(), &info, sizeof info) == sizeof info) {
    switch (info.ssi_signo) {
      case SIGTERM:
        outcome = Outcome::stop_graceful;
        break;
      case SIGINT:
        outcome = Outcome::stop_fast;
        break;
      case SIGHUP:
        log_warn("SIGHUP: reload is not available in this version; ignored");
        break;
      case SIGUSR1:
        log_info("SIGUSR1: no log file to reopen (the log goes to stderr)");
        break;
      case SIGCHLD:
        if (reap() == Outcome::failed && outcome == Outcome::running) outcome = Outcome::failed;
        break;
    }
  }
  return outcome;
}

// Reaps exited children. Outside a stop, a child exiting is a failure: the
// core does not replace children yet, so the supervisor stops everything
// rather than serve with a missing process.
Supervisor::Outcome Supervisor::reap() {
  Outcome outcome = Outcome::running;
  int status = 0;
  pid_t pid;
  while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
    for (Child& c : children_) {
      if (c.pid != pid) continue;
      c.exited = true;
      if (!stopping_) {
        log_error(c.title + " (pid " + std::to_string(pid) + ") " + describe_status(status) +
                  "; stopping the server");
        outcome = Outcome::failed;
      }
    }
  }
  return outcome;
}

void Supervisor::stop_role(shm::ProcessRole role, bool graceful, int timeout_ms) {
  stopping_ = true;
  for (Child& c : children_) {
    if (c.role != role || c.exited) continue;
    const std::string err =
        proto::send_control(c.control.get(), {proto::ControlType::stop, graceful ? 1u : 0u});
    if (!err.empty()) ::kill(c.pid, SIGTERM);
  }
  Wait waited = wait_exit(role, timeout_ms, graceful);
  if (waited == Wait::hurry && graceful) {
    log_info("stopping now (signal during a graceful stop)");
    for (Child& c : children_) {
      if (c.role == role && !c.exited) {
        proto::send_control(c.control.get(), {proto::ControlType::stop, 0});
      }
    }
    waited = wait_exit(role, kFastStopMs, false);
  }
  if (waited == Wait::exited) return;
  for (Child& c : children_) {
    if (c.role != role || c.exited) continue;
    log_warn(c.title + " (pid " + std::to_string(c.pid) + ") did not stop in time; killing it");
    ::kill(c.pid, SIGKILL);
  }
  wait_exit(role, kKillWaitMs, false);
}

// `can_hurry`: a second SIGTERM or a SIGINT ends the wait early (hurry).
Supervisor::Wait Supervisor::wait_exit(shm::ProcessRole role, int timeout_ms, bool can_hurry) {
  const int64_t deadline = worker::monotonic_ms() + timeout_ms;
  for (;;) {
    reap();
    bool all = true;
    for (const Child& c : children_) all = all && (c.role != role || c.exited);
    if (all) return Wait::exited;
    const int64_t left = deadline - worker::monotonic_ms();
    if (left <= 0) return Wait::timed_out;
    pollfd pfd{signal_fd_.get(), POLLIN, 0};
    ::poll(&pfd, 1, static_cast<int>(left));
    signalfd_siginfo info{};
    bool again = false;  // a second SIGTERM, or SIGINT, asks for a fast stop
    while (::read(signal_fd_.get(), &info, sizeof info) == sizeof info) {
      again = again || info.ssi_signo == SIGINT || info.ssi_signo == SIGTERM;
    }
    if (again && can_hurry) return Wait::hurry;
  }
}

std::string Supervisor::ready_line() const {
  std::string line = "ready: listening on";
  for (size_t i = 0; i < listeners_.size(); ++i) line += (i ? ", " : " ") + listeners_[i].address;
  size_t n_service = 0;
  for (const auto& s : config_.services) n_service += static_cast<size_t>(s.processes);
  line += "; generation " + std::to_string(generation_) + ", " + std::to_string(n_network_) +
          " network and " + std::to_string(n_service) + " service processes";
  return line;
}

}  // namespace ringhttpd::master
