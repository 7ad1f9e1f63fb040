// The supervisor's generations, loop, reload and stop (see supervisor.h; the
// decisions it applies are in lifecycle.h).
#include "master/supervisor.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>

#include "master/admin.h"
#include "master/adopt_placement.h"
#include "master/capacity.h"
#include "master/fd_limit.h"
#include "master/privileges.h"
#include "master/takeover.h"
#include "proto/control.h"
#include "proto/takeover.h"
#include "worker/child.h"
#include "worker/event_loop.h"
#include "worker/log.h"
#include "worker/process_title.h"

namespace ringhttpd::master {
namespace {

using worker::log_error;
using worker::log_info;
using worker::log_warn;
using worker::monotonic_ms;

constexpr int kFastStopMs = 1000;
constexpr int kKillWaitMs = 2000;

// SIGUSR2 and SIGWINCH are taken only to be refused with a line: nginx's
// binary upgrade sends them, and SIGUSR2's default would end the server.
constexpr int kSignals[] = {SIGTERM, SIGINT, SIGQUIT, SIGCHLD, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH};

sigset_t supervisor_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kSignals) sigaddset(&set, sig);
  return set;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

std::string pid_text(pid_t pid) { return " (pid " + std::to_string(pid) + ")"; }

bool is_running(const auto& child) { return child.pid > 0; }

// Every config error, for ctl's one line (the log has each on its own):
// "a; b; c", at most kShownErrors of them and then how many more.
std::string join_errors(const std::vector<std::string>& errors) {
  constexpr size_t kShownErrors = 8;
  std::string out;
  for (size_t i = 0; i < errors.size() && i < kShownErrors; ++i) {
    out += (i ? "; " : "") + errors[i];
  }
  if (errors.size() > kShownErrors) {
    out += "; and " + std::to_string(errors.size() - kShownErrors) + " more (see the log)";
  }
  return out;
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

Supervisor::Supervisor(Config config, std::string config_path)
    : config_(std::move(config)), config_path_(std::move(config_path)) {}

Supervisor::~Supervisor() {
  for (auto& g : generations_) {
    if (g->segment) shm::Segment::remove(g->segment->name());
  }
}

int Supervisor::run() {
  worker::set_process_title("ringhttpd: supervisor");
  worker::set_log_level(worker::parse_log_level(config_.log.level));
  worker::make_stderr_nonblocking();  // before the first fork: children inherit it
  const sigset_t set = supervisor_signals();
  // A signal ignored at exec (a shell starts background jobs with SIGINT
  // ignored; nohup ignores SIGHUP) is discarded, not queued for the signalfd:
  // restore the default disposition first, then block. Children inherit the
  // mask, so SIGQUIT or SIGHUP sent to the whole group does not kill them.
  for (int sig : kSignals) ::signal(sig, SIG_DFL);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  signal_fd_ = proto::UniqueFd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) return log_error(worker::errno_message("signalfd")), 1;
  for (const std::string& name : remove_stale_segments()) {
    log_warn("removed stale shared memory segment /dev/shm/" + name);
  }
  // Socket activation: what systemd passed replaces binding, here and in
  // every later generation (make_generation).
  activated_ = take_activated_listeners(config_.listeners);
  if (!config_.run_as.user.empty() && !will_drop_privileges(config_.run_as, ::geteuid())) {
    log_warn("user \"" + escape_text(config_.run_as.user) +
             "\": not started as root, so the children run as this process's user");
  }
  std::string error;
  std::unique_ptr<Generation> first = make_generation(config_, error);
  if (!first) return log_error(error), 1;
  Generation& g = *first;
  generations_.push_back(std::move(first));
  // After the config's own resources (its errors come first), before any fork.
  // Privileges (master/privileges.h): like the listeners and the segment,
  // the admin socket is created by the supervisor, which stays root; only
  // the children drop to `user` (in spawn()).
  if (!open_admin(error)) return log_error(error), 1;
  Outcome outcome = spawn_all(g).empty() ? loop() : Outcome::failed;
  if (start_failed_) outcome = Outcome::failed;
  const bool graceful = outcome == Outcome::stop_graceful && current_ != nullptr;
  notifier_.stopping(graceful ? "stopping (graceful)" : "stopping");
  log_info(graceful ? "stopping (graceful)" : "stopping");
  close_admin("the server is stopping");
  // New connections are refused from now on, not left in the backlog
  // (under socket activation systemd keeps its copy: connections then wait
  // for the next start, which is what activation is for).
  for (auto& gen : generations_) gen->listeners.clear();
  activated_.clear();
  uint32_t drain_timeout = 0;
  for (auto& gen : generations_) {
    drain_timeout = std::max(drain_timeout, gen->config.network.drain_timeout_ms);
  }
  const int drain_ms = static_cast<int>(drain_timeout + kStopMarginMs);
  const int64_t stop_began = monotonic_ms();
  if (!graceful) {
    // Nothing is waited for: every process is told at once, and whatever
    // has not exited 1 s later is killed.
    stop_role(shm::ProcessRole::none, false, kFastStopMs);
    report_surplus();
    log_info("stopped");
    return outcome == Outcome::failed ? 1 : 0;
  }
  const bool hurried = stop_role(shm::ProcessRole::network, true, drain_ms);
  // Service processes holding taken-over connections (tunnels) keep them
  // until they end or drain_timeout_ms after the stop began, whichever is
  // first; then they are told to stop now (ServiceProcess::on_stop). A
  // second signal during the drain makes this fast too.
  const bool slow = !hurried && tunnels_open();
  const int64_t left = static_cast<int64_t>(drain_timeout) - (monotonic_ms() - stop_began);
  stop_role(shm::ProcessRole::service, true,
            slow ? static_cast<int>(std::max<int64_t>(left, kFastStopMs)) : kFastStopMs);
  report_surplus();
  log_info("stopped");
  return outcome == Outcome::failed ? 1 : 0;
}

// ---- generations -------------------------------------------------------

// Everything of a generation but its processes: listeners (the current
// generation's sockets reused where the address is unchanged), the fd limit,
// the segment, one eventfd per process, and the environment children inherit.
std::unique_ptr<Supervisor::Generation> Supervisor::make_generation(Config config,
                                                                    std::string& error) {
  auto g = std::make_unique<Generation>(monotonic_ms(), config.network.drain_timeout_ms);
  g->number = ++last_generation_;
  g->config = std::move(config);
  const std::vector<Listener> none;
  g->n_network = network_process_count(g->config);
  if (!bind_listeners(g->config.listeners, g->listeners, error,
                      current_ != nullptr ? current_->listeners : none, activated_, g->n_network)) {
    return nullptr;
  }
  if (error = check_capacity(g->config); !error.empty()) return nullptr;
  size_t n_service = 0;
  for (const auto& s : g->config.services) n_service += static_cast<size_t>(s.processes);
  error = raise_fd_limit(g->config.network.max_connections, g->listeners.size(),
                         g->n_network + n_service);
  if (!error.empty()) return nullptr;
  // Only with older generations beside the serving one (the limit above is
  // planned for two): their descriptors are what is left to check.
  if (generations_.size() > 1) {
    error = reload_fd_problem(open_fd_count(), fd_soft_limit(), g->n_network + n_service,
                              generations_.size());
    if (!error.empty()) return nullptr;
  }
  shm::SegmentSpec spec{
      g->number, g->n_network, {}, static_cast<uint32_t>(g->config.routes.size())};
  worker::WorkerEnv& env = g->env_template;
  for (const worker::ServiceSettings& s : g->config.services) {
    env.pools.push_back({static_cast<uint32_t>(spec.service_ring_bytes.size()),
                         static_cast<uint32_t>(s.processes)});
    for (int i = 0; i < s.processes; ++i) spec.service_ring_bytes.push_back(s.ring_bytes);
  }
  g->segment = shm::Segment::create(shm::segment_name(static_cast<uint32_t>(::getpid()), g->number),
                                    spec, error);
  if (!g->segment) return nullptr;
  // Children that run as `user` must be able to remove it if the
  // supervisor dies (only the owner may unlink in the sticky /dev/shm).
  if (error = give_to_run_as(g->config.run_as, "/dev/shm/" + g->segment->name()); !error.empty()) {
    shm::Segment::remove(g->segment->name());
    return nullptr;
  }
  for (uint32_t i = 0; i < g->segment->slot_count(); ++i) {
    g->wake_fds.emplace_back(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!g->wake_fds.back()) {
      shm::Segment::remove(g->segment->name());
      error = worker::errno_message("eventfd");
      return nullptr;
    }
    env.wake_fds.push_back(g->wake_fds.back().get());
  }
  env.generation = g->number;
  env.supervisor_pid = static_cast<uint32_t>(::getpid());
  env.segment = &*g->segment;
  env.network = g->config.network;
  env.services = g->config.services;
  env.routes = g->config.routes;
  env.log_level = g->config.log.level;
  env.access_log = g->config.log.access;
  env.access_format = g->config.log.format;
  // One Child per slot: network processes first, then services in order.
  g->children.resize(g->segment->slot_count());
  for (uint32_t i = 0; i < g->n_network; ++i) {
    Child& c = g->children[i];
    c.slot = i;
    c.role = shm::ProcessRole::network;
    c.index = i;
  }
  uint32_t proc = 0;
  for (size_t s = 0; s < g->config.services.size(); ++s) {
    for (int i = 0; i < g->config.services[s].processes; ++i, ++proc) {
      Child& c = g->children[g->n_network + proc];
      c.slot = g->n_network + proc;
      c.role = shm::ProcessRole::service;
      c.index = static_cast<uint32_t>(i);
      c.service = static_cast<int>(s);
      c.service_proc = proc;
      c.release_allowance_ms =
          std::max<int64_t>(kReleaseTimeoutMs, g->config.services[s].kill_after_ms);
      c.ready_allowance_ms = g->config.services[s].start_timeout_ms;
    }
  }
  return g;
}

// Forks the processes of a new generation not forked yet. A signal that
// arrives meanwhile pauses the forking, so that a stop during a large start
// is acted on at once; the loop forks the rest after handling it.
std::string Supervisor::spawn_all(Generation& g) {
  if (g.forked_ms == 0 && g.longest_ready_allowance_ms() > kReadyTimeoutMs) {
    // Under systemd, a start (or reload) given more than TimeoutStartSec=
    // by its services' start_timeout_ms is not cut short: systemd moves its
    // timeout for the current state (and the watchdog's) to this long from
    // now, plus a margin for the commit. Only when a service was given more
    // than the default, so that a default config sends what it always did.
    constexpr int64_t kCommitMarginMs = 5000;
    notifier_.extend_timeout(g.longest_ready_allowance_ms() + kCommitMarginMs);
  }
  g.forking(monotonic_ms());
  for (Child& c : g.children) {
    if (!g.never_started(c.slot)) continue;
    if (signal_pending()) return {};
    if (std::string error = spawn(g, c); !error.empty()) return error;
  }
  return {};
}

bool Supervisor::signal_pending() const {
  pollfd pfd{signal_fd_.get(), POLLIN, 0};
  return ::poll(&pfd, 1, 0) > 0;
}

// Before `c` is forked, each of its rings starts from zero. A ring whose
// other end has no process now has no user at all, so it is emptied here.
// A ring whose other end lives was emptied by that process when it released
// this slot (peer_gone) and is not used by it until `c` is ready; only its
// positions are zeroed again, so the new process never starts from
// positions that end wrote since (its wake-up flag stays: it may sleep on
// it). What that end writes after this is checked by the new process's
// Ring views (a ring with impossible positions is broken, never used).
void Supervisor::reset_rings_of(Generation& g, const Child& c) {
  shm::Segment& seg = *g.segment;
  const uint32_t n_service = seg.header().n_service;
  for (const Child& peer : g.children) {
    if (peer.role == c.role) continue;
    const uint32_t network = c.role == shm::ProcessRole::network ? c.index : peer.index;
    const uint32_t service =
        c.role == shm::ProcessRole::service ? c.service_proc : peer.service_proc;
    if (network >= g.n_network || service >= n_service) continue;
    for (shm::Direction dir : {shm::Direction::request, shm::Direction::response}) {
      shm::Ring ring = seg.ring(network, service, dir);
      if (is_running(peer)) {
        ring.reset_positions();
      } else {
        ring.reset();
      }
    }
  }
}

std::string Supervisor::spawn(Generation& g, Child& c) {
  worker::WorkerEnv env = g.env_template;
  env.role = c.role;
  env.index = c.index;
  env.service = c.service;
  env.service_proc = c.service_proc;
  env.replacement = g.phase == GenerationPhase::serving;
  const auto failed = [&env](const char* call) {
    std::string error = worker::child_title(env) + ": " + worker::errno_message(call);
    log_error("cannot start " + error);
    return error;
  };
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
    return failed("socketpair");
  proto::UniqueFd mine(pair[0]), theirs(pair[1]);
  reset_rings_of(g, c);
  env.control_fd = theirs.get();
  shm::ProcessSlot& slot = g.segment->slot(c.slot);
  slot.role = c.role;
  slot.generation = g.number;
  slot.index = c.index;
  slot.incarnation += 1;
  slot.restarts = static_cast<uint32_t>(c.restart.restarts());
  slot.started_at_ms = static_cast<uint64_t>(monotonic_ms());
  slot.pid = 0;
  // The heartbeat starts at the fork: the dead predecessor's would read as
  // a stuck loop, and none at all as no answer, until the new process runs
  // its first loop iteration (it reports ready just before).
  std::atomic_ref<uint64_t>(slot.heartbeat_ms)
      .store(static_cast<uint64_t>(monotonic_ms()), std::memory_order_relaxed);
  std::atomic_ref<uint64_t>(slot.inflight).store(0, std::memory_order_relaxed);
  std::atomic_ref<uint32_t>(slot.connections).store(0, std::memory_order_relaxed);
  std::atomic_ref<uint64_t>(slot.passed_in).store(0, std::memory_order_relaxed);
  std::atomic_ref<uint64_t>(slot.taken_in).store(0, std::memory_order_relaxed);
  c.passed_in = 0;
  c.adopts_done_sent = false;
  std::atomic_ref<shm::ProcessState>(slot.state)
      .store(shm::ProcessState::starting, std::memory_order_release);
  const pid_t pid = ::fork();
  if (pid < 0) return failed("fork");
  if (pid == 0) {
    // Root is given up first, before the child touches anything (and before
    // run_child sets PR_SET_PDEATHSIG, which a change of credentials clears).
    if (will_drop_privileges(g.config.run_as, ::geteuid())) {
      if (const std::string err = drop_privileges(g.config.run_as); !err.empty()) {
        log_error(worker::child_title(env) + ": cannot run as user \"" +
                  escape_text(g.config.run_as.user) + "\": " + err + "; exiting");
        ::_exit(1);
      }
    }
    close_in_child(g, theirs.get());
    mine.release();  // closed by close_in_child
    ::_exit(worker::run_child(env));
  }
  c.pid = pid;
  c.failure.clear();
  c.title = worker::child_title(env);
  c.control = std::move(mine);
  g.process_started(c.slot, monotonic_ms());
  // A generation gets its listeners only once all of it is ready
  // (on_generation_ready): until then no client reaches it (connections wait
  // in the backlog rather than find no service ready, and a reload that
  // fails touches none). A replacement in a serving generation gets them now.
  // (A failure kills the child: its death is replaced like any other.)
  const bool accepting = g.phase == GenerationPhase::serving;
  if (c.role == shm::ProcessRole::network && accepting) send_listeners(g, c);
  return {};
}

// In a new child: drop what belongs to the supervisor. The listening sockets
// are closed too: network processes get them again over the control channel.
// Other generations' segments are unmapped. The sweep after the owned
// descriptors catches anything inherited from the supervisor's own parent
// without O_CLOEXEC (ringhttpd opens none such).
void Supervisor::close_in_child(const Generation& own, int keep_control) {
  for (auto& g : generations_) {
    for (Listener& l : g->listeners) l.fd.reset();
    for (Child& c : g->children) c.control.reset();
    if (g.get() != &own) g->segment.reset();
  }
  signal_fd_.reset();
  // Descriptors a child keeps: its control socket and its generation's
  // wake-up eventfds. Everything else above stderr is closed, at any number
  // (the fd limit may be high), with close_range over the gaps between the
  // kept ones: one syscall per gap instead of a close per descriptor.
  std::vector<unsigned> keep{static_cast<unsigned>(keep_control)};
  for (const auto& w : own.wake_fds) keep.push_back(static_cast<unsigned>(w.get()));
  std::sort(keep.begin(), keep.end());
  unsigned from = 3;
  for (unsigned fd : keep) {
    if (fd > from) ::close_range(from, fd - 1, 0);
    from = std::max(from, fd + 1);
  }
  ::close_range(from, ~0u, 0);
}

bool Supervisor::send_listeners(const Generation& g, Child& c) {
  std::vector<int> fds;
  for (const Listener& l : g.listeners) {
    if (listener_belongs(l, c.index, g.n_network)) fds.push_back(l.fd.get());
  }
  for (size_t at = 0; at < fds.size(); at += proto::kMaxFdsPerMessage) {
    const size_t n = std::min(proto::kMaxFdsPerMessage, fds.size() - at);
    std::vector<int> batch(fds.begin() + static_cast<long>(at),
                           fds.begin() + static_cast<long>(at + n));
    const std::string err =
        proto::send_control(c.control.get(), {proto::ControlType::listeners, 0}, batch);
    if (!err.empty()) {
      // A network process without its listeners would live on and never
      // accept: killed, so that the usual death path replaces it.
      log_error(c.title + ": cannot pass the listeners (" + err + "); killing it");
      kill_child(c);
      return false;
    }
  }
  return true;
}

// Every process of `g` reported ready: the first generation starts serving;
// a reloaded one takes over, and the one it replaces drains.
void Supervisor::on_generation_ready(Generation& g) {
  Generation* old = current_;
  current_ = &g;
  for (Child& c : g.children) {
    if (c.role == shm::ProcessRole::network && is_running(c)) send_listeners(g, c);
  }
  if (old == nullptr) {
    worker::log_notice(ready_line(g));
    notifier_.ready(status_summary());
    return;
  }
  const int64_t now = monotonic_ms();
  old->drain(now);
  old->listeners.clear();  // the new generation holds its own copies
  for (Child& c : old->children) {
    if (c.role == shm::ProcessRole::network && is_running(c)) {
      proto::send_control(c.control.get(), {proto::ControlType::drain, 0});
    }
  }
  worker::log_notice("reload: generation " + std::to_string(g.number) + " serving after " +
                     std::to_string(now - reload_began_ms_) + " ms; generation " +
                     std::to_string(old->number) + " drains. " + ready_line(g));
  last_reload_error_.clear();
  finish_reload();
}

void Supervisor::roll_back(Generation& g, const std::string& why) {
  if (!g.roll_back()) return;  // already torn down
  for (Child& c : g.children) {
    if (is_running(c)) kill_child(c);
  }
  g.listeners.clear();
  if (current_ == nullptr) {  // the first generation: the server cannot start
    log_error(why);
    start_failed_ = true;
    return;
  }
  last_reload_error_ = why;
  log_error("reload failed: " + why + "; generation " + std::to_string(current_->number) +
            " keeps serving");
  finish_reload();
}

// The next reload (a coalesced request) starts from the top of the loop,
// never from inside a walk over the generations.
void Supervisor::finish_reload() {
  ++(last_reload_error_.empty() ? counters_.reloads_ok : counters_.reloads_failed);
  publish_counters();
  note_reload_finished();
  // Committed or failed, the server serves again: systemd leaves "reloading".
  last_reload_result_ = last_reload_error_.empty() ? "ok" : "failed: " + last_reload_error_;
  notifier_.ready(status_summary());
  if (reload_.finished()) reload_due_ = true;
}

// The supervisor's counters live in the serving generation's segment
// header, so a network process serving /metrics can read them; every
// generation gets them at its creation and all whenever they change.
void Supervisor::publish_counters() {
  for (auto& g : generations_) {
    if (!g->segment) continue;
    shm::SegmentHeader& h = g->segment->header_for_writer();
    const auto store = [](uint64_t& field, uint64_t v) {
      std::atomic_ref<uint64_t>(field).store(v, std::memory_order_relaxed);
    };
    store(h.reloads_ok, counters_.reloads_ok);
    store(h.reloads_failed, counters_.reloads_failed);
    store(h.handoffs_closed, counters_.handoffs_closed);
    store(h.takeovers_refused, counters_.takeovers_refused);
  }
}

// Reads the config again and starts the next generation beside the serving
// one. Any failure before its processes run is logged and leaves the serving
// generation as it was.
void Supervisor::start_reload() {
  ++reloads_started_;
  reload_began_ms_ = monotonic_ms();
  notifier_.reloading("reloading; " + status_summary());
  const std::string where = config_path_.empty() ? "(embedded default)" : config_path_;
  log_info("reload: reading " + where);
  ConfigResult result =
      config_path_.empty() ? parse_config(default_config_text()) : load_config_file(config_path_);
  if (!result.ok()) {
    last_reload_error_ = where + ": " + join_errors(result.errors);
    for (const std::string& e : result.errors) log_error("reload failed: " + where + ": " + e);
    log_error("reload failed; generation " + std::to_string(current_->number) + " keeps serving");
    return finish_reload();
  }
  std::string error;
  std::unique_ptr<Generation> next = make_generation(std::move(result.config), error);
  if (!next) {
    last_reload_error_ = error;
    log_error("reload failed: " + error + "; generation " + std::to_string(current_->number) +
              " keeps serving");
    return finish_reload();
  }
  Generation& g = *next;
  generations_.push_back(std::move(next));
  publish_counters();
  start_or_roll_back(g);
}

void Supervisor::start_or_roll_back(Generation& g) {
  if (const std::string error = spawn_all(g); !error.empty()) {
    roll_back(g, "could not start generation " + std::to_string(g.number) + ": " + error);
  }
}

// ---- the loop -----------------------------------------------------------

Supervisor::Outcome Supervisor::loop() {
  std::vector<pollfd> fds;
  std::vector<std::pair<Generation*, Child*>> owners;
  for (;;) {
    if (start_failed_) return Outcome::failed;
    if (reload_due_) {
      reload_due_ = false;
      start_reload();
    }
    flush_adopts();
    fds.assign(1, pollfd{signal_fd_.get(), POLLIN, 0});
    owners.assign(1, {nullptr, nullptr});
    for (auto& g : generations_) {
      for (Child& c : g->children) {
        if (!c.control || reads_paused(*g, c)) continue;
        fds.push_back(pollfd{c.control.get(), POLLIN, 0});
        owners.emplace_back(g.get(), &c);
      }
    }
    const size_t admin_at = fds.size();  // the admin socket's entries follow the children's
    if (admin_) admin_->add_pollfds(fds);
    const int n = ::poll(fds.data(), fds.size(), poll_timeout(monotonic_ms()));
    if (n < 0 && errno != EINTR) return log_error(worker::errno_message("poll")), Outcome::failed;
    for (size_t i = 1; n > 0 && i < admin_at; ++i) {
      if (fds[i].revents != 0) handle_control(*owners[i].first, *owners[i].second, 64);
    }
    if (admin_) admin_->handle(std::span(fds).subspan(admin_at), monotonic_ms());
    if (fds[0].revents != 0) {
      const Outcome outcome = handle_signals();
      if (outcome != Outcome::running) return outcome;
    }
    const int64_t now = monotonic_ms();
    run_timers(now);
    check_network_loops(now);
    if (notifier_.watchdog_due(now)) notifier_.watchdog(now, healthy(now));
    if (notifier_.enabled() && now >= next_rate_ms_) update_rate(now);
  }
}

// The network watchdog (network.watchdog_ms, decided by loop_stuck): a
// ready network process whose loop stopped stamping its heartbeat is
// killed; its death is then handled like any other (replaced in the
// serving generation). Read from the scoreboard: no message to the process,
// which could not answer one anyway.
void Supervisor::check_network_loops(int64_t now) {
  for (auto& g : generations_) {
    const uint32_t limit = g->config.network.watchdog_ms;
    if (limit == 0 || !g->segment) continue;
    for (Child& c : g->children) {
      if (c.role != shm::ProcessRole::network || !is_running(c) || c.state != SlotState::ready ||
          c.watchdog_killed == c.pid) {
        continue;
      }
      const uint64_t beat = std::atomic_ref<uint64_t>(g->segment->slot(c.slot).heartbeat_ms)
                                .load(std::memory_order_relaxed);
      if (!loop_stuck(now, beat, limit)) continue;
      log_error(c.title + pid_text(c.pid) + ": its loop has not run for " +
                std::to_string(now - static_cast<int64_t>(beat)) + " ms (network.watchdog_ms " +
                std::to_string(limit) + "); killed" +
                (g->phase == GenerationPhase::serving ? ", to be replaced" : ""));
      ::kill(c.pid, SIGKILL);
      c.watchdog_killed = c.pid;
    }
  }
}

Supervisor::Outcome Supervisor::handle_signals() {
  Outcome outcome = Outcome::running;
  signalfd_siginfo info{};
  while (::read(signal_fd_.get(), &info, sizeof info) == sizeof info) {
    switch (info.ssi_signo) {
      case SIGTERM:
        if (outcome == Outcome::running) outcome = Outcome::stop_graceful;
        break;
      case SIGINT:
      case SIGQUIT:
        outcome = Outcome::stop_fast;
        break;
      case SIGHUP:
        if (current_ == nullptr) {
          log_warn("SIGHUP during start-up: ignored");
        } else {
          request_reload();
        }
        break;
      case SIGUSR1:  // logrotate's postrotate: every child reopens its log files
        log_info("SIGUSR1: reopening log files");
        for (auto& gen : generations_) {
          for (Child& c : gen->children) {
            if (c.control)
              proto::send_control(c.control.get(), {proto::ControlType::reopen_logs, 0});
          }
        }
        break;
      case SIGCHLD:
        reap();
        break;
      case SIGUSR2:
      case SIGWINCH:
        log_warn(std::string(info.ssi_signo == SIGUSR2 ? "SIGUSR2" : "SIGWINCH") +
                 ": not used by ringhttpd (no binary upgrade in place: a reload, SIGHUP, "
                 "forks the running binary; a new one needs a restart); ignored");
        break;
    }
  }
  return outcome;
}

void Supervisor::reap() {
  int status = 0;
  pid_t pid;
  while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
    for (auto& g : generations_) {
      for (Child& c : g->children) {
        if (c.pid == pid) on_death(*g, c, status);
      }
    }
  }
}

// SIGKILL from the supervisor itself, logged where it is decided: the death
// that follows is no news (on_death).
void Supervisor::kill_child(Child& c) {
  c.sigkilled = c.pid;
  ::kill(c.pid, SIGKILL);
}

void Supervisor::on_death(Generation& g, Child& c, int status) {
  // What it sent before dying is still queued (connections handed over by a
  // draining network process that then exited): take it all first.
  handle_control(g, c, std::numeric_limits<int>::max(), Reading::everything);
  const pid_t pid = c.pid;
  c.pid = -1;
  c.control.reset();
  shm::ProcessSlot& slot = g.segment->slot(c.slot);
  std::atomic_ref<shm::ProcessState>(slot.state)
      .store(shm::ProcessState::empty, std::memory_order_release);
  std::atomic_ref<uint32_t>(slot.pid).store(0, std::memory_order_relaxed);
  const int64_t now = monotonic_ms();
  const DeathDecision d = g.process_died(c.slot, now, stopping_);
  const std::string what = c.title + pid_text(pid) + " " + describe_status(status);
  switch (d.action) {
    case DeathAction::nothing:
      return;
    case DeathAction::fail_reload: {
      // A service process names its service's key, as `check` names keys
      // (its own words say which: a module's path, its config).
      const std::string key =
          c.service >= 0 ? "services[" + std::to_string(c.service) + "]: " : std::string();
      return roll_back(
          g, key + what + " before it was ready" + (c.failure.empty() ? "" : ": " + c.failure));
    }
    case DeathAction::settle_only:
      // A draining generation or a stopping server: an exit is expected
      // (debug), as is a kill of the supervisor's own (logged when made);
      // a crash is not, and what it held may have failed (502).
      if ((WIFEXITED(status) && WEXITSTATUS(status) == 0) || pid == c.sigkilled) {
        worker::log_debug(what);
      } else {
        log_warn(what);
        c.restart.on_lost();  // ctl status and the metrics count it (no replacement)
        std::atomic_ref<uint32_t>(slot.restarts)
            .store(static_cast<uint32_t>(c.restart.restarts()), std::memory_order_relaxed);
      }
      break;
    case DeathAction::replace:
      log_replacement(what, d);
      if (c.role == shm::ProcessRole::network) tell_network_siblings(g, c);
      break;
  }
  if (d.settle) settle_with_peers(g, c, now);
}

// A full network process leaves the shared listeners to a ready sibling
// with room and takes new connections (to refuse them with 503) only when
// there is none. A sibling's death or its replacement's readiness changes
// that: told at once, a full sibling does not go on refusing connections
// that the replacement could serve until the next turn of its loop (up to
// 250 ms when idle). Not waiting: a full queue means the sibling is busy,
// and a busy process decides again at every turn anyway.
// Only a serving generation's: a draining or stopping one accepts nothing.
void Supervisor::tell_network_siblings(Generation& g, const Child& changed) {
  if (g.phase != GenerationPhase::serving || stopping_) return;
  for (Child& s : g.children) {
    if (s.slot == changed.slot || s.role != shm::ProcessRole::network || !s.control) continue;
    proto::send_control(s.control.get(), {proto::ControlType::siblings_changed, changed.slot}, {},
                        {}, /*dont_wait=*/true);
  }
}

// "crash loop" from kCrashLoopStreak failures in a row on (DeathDecision),
// the point from which the watchdog rule counts one too (master/systemd.h);
// before it the back-off runs but the log says only "died again".
void Supervisor::log_replacement(const std::string& what, const DeathDecision& d) {
  std::string line = what;
  if (d.delay_ms == 0) {
    line += "; replacing it";
  } else {
    line += d.crash_loop ? "; crash loop (" : "; died again (";
    line += std::to_string(d.streak);
    line += " failures in a row): replacing it in ";
    line += std::to_string(d.delay_ms);
    line += " ms";
  }
  log_error(line);
}

// Every live process on the other side of the dead one's rings settles what
// the dead one owed (or was owed), empties their shared rings, and says so
// (peer_released); the replacement waits for those that were told.
void Supervisor::settle_with_peers(Generation& g, Child& dead, int64_t now) {
  const uint32_t incarnation = g.segment->slot(dead.slot).incarnation;
  std::set<uint32_t> told;
  for (uint32_t p : g.settle_peers(dead.slot)) {
    Child& peer = g.children[p];
    if (!peer.control) continue;
    const std::string err = proto::send_control(
        peer.control.get(), {proto::ControlType::peer_gone, dead.slot, incarnation});
    if (err.empty()) told.insert(p);
  }
  g.awaiting_release(dead.slot, told, now);
}

void Supervisor::handle_control(Generation& g, Child& c, int budget, Reading reading) {
  for (; budget > 0 && c.control; --budget) {
    if (reading == Reading::paced && reads_paused(g, c)) return;
    proto::ControlMessage msg{};
    std::vector<proto::UniqueFd> fds;
    std::string payload, err;
    const proto::RecvStatus st = proto::recv_control(c.control.get(), msg, fds, err, &payload);
    if (st == proto::RecvStatus::again) return;
    if (st == proto::RecvStatus::closed) {
      c.control.reset();  // exiting; SIGCHLD follows
      return;
    }
    if (st == proto::RecvStatus::error) {
      log_error(c.title + ": " + err);
      return;
    }
    switch (msg.type) {
      case proto::ControlType::ready: {
        const ReadyDecision d = g.process_ready(c.slot, monotonic_ms());
        if (d.replaced_after_ms >= 0) {
          if (c.role == shm::ProcessRole::network) tell_network_siblings(g, c);
          log_info(c.title + pid_text(c.pid) + " replaced; serving " +
                   std::to_string(d.replaced_after_ms) + " ms after the death");
        }
        if (d.commit) on_generation_ready(g);
        break;
      }
      case proto::ControlType::peer_released:
        g.peer_released(msg.arg, c.slot);
        break;
      case proto::ControlType::failed:  // its word: bounded, one printable line
        c.failure = printable_line(std::string_view(payload).substr(0, 1024));
        break;
      case proto::ControlType::handoff:
        if (fds.size() == 1 && c.role == shm::ProcessRole::network) {
          relay_handoff(std::move(fds.front()), std::move(payload), msg.arg2);
        } else {
          log_error(c.title + ": handoff message without exactly one descriptor; ignored");
        }
        break;
      case proto::ControlType::takeover:
        if (c.role != shm::ProcessRole::network) {
          log_error(c.title + ": takeover from a process that is not a network process; ignored");
        } else if (const std::string bad =
                       check_takeover(msg.arg, fds.size(), payload, g.config.services.size());
                   !bad.empty()) {
          log_error(c.title + ": " + bad + "; ignored");  // the descriptors close with `fds`
        } else {
          // Given back if refused only to a sender that will live to answer:
          // ready in the serving generation, with no stop under way (a
          // draining or stopping one may exit with the socket unread).
          Child* answerer =
              &g == current_ && c.state == SlotState::ready && !stopping_ ? &c : nullptr;
          relay_takeover(g.config.services[msg.arg].name, std::move(fds.front()), payload, answerer,
                         msg.arg2);
        }
        break;
      case proto::ControlType::overdue:
      case proto::ControlType::peer_broken: {
        const bool overdue = msg.type == proto::ControlType::overdue;
        if (!g.kill_on_report(c.slot, msg.arg, overdue)) break;
        Child& s = g.children[msg.arg];
        if (g.segment->slot(s.slot).incarnation != msg.arg2) break;  // already replaced
        if (overdue) {
          log_error(
              s.title + pid_text(s.pid) + " holds a request past kill_after_ms (" +
              std::to_string(g.config.services[static_cast<size_t>(s.service)].kill_after_ms) +
              " ms); killing it");
        } else {
          log_error(s.title + pid_text(s.pid) + " wrote a ring " + c.title +
                    " cannot read; killing it");
        }
        ::kill(s.pid, SIGKILL);
        break;
      }
      default:
        log_warn(c.title + ": unexpected control message " +
                 std::to_string(static_cast<uint32_t>(msg.type)));
    }
  }
}

bool Supervisor::reads_paused(const Generation& g, const Child& c) const {
  return c.role == shm::ProcessRole::network && g.phase == GenerationPhase::draining &&
         adopts_.size() >= kMaxQueuedAdopts;
}

// A connection handed over by a draining network process goes to the ready
// network process of the serving generation with the most room (queued
// until one takes it; see flush_adopts and master/adopt_placement.h).
// Queued, then sent without blocking: a network process with a full
// control queue must not stall the supervisor (it retries within a few ms).
// The connection's idle time goes with it, so its keep-alive timeout is not
// restarted by a reload (reloads more often than keepalive_timeout_ms would
// otherwise keep idle connections forever).
void Supervisor::relay_handoff(proto::UniqueFd fd, std::string bytes, uint64_t idle_ms) {
  adopts_.push_back(PendingAdopt{std::move(fd), std::move(bytes), idle_ms, monotonic_ms()});
  flush_adopts();
}

// Places each queued connection where it fits (place_adopt): never past a
// target's max_connections, counting the adopts still on their way to it,
// so no process is handed more descriptors than its RLIMIT_NOFILE (planned
// for max_connections) can take. With no room anywhere the connection is
// closed; with room only behind full control queues it waits.
void Supervisor::flush_adopts() {
  if (adopts_.empty() || current_ == nullptr) return;
  std::vector<Child*> ready;
  std::vector<AdoptTarget> targets;
  for (Child& c : current_->children) {
    if (c.role == shm::ProcessRole::network && c.state == SlotState::ready && c.control) {
      ready.push_back(&c);
      targets.push_back(AdoptTarget{});
    }
  }
  const uint64_t max_connections = current_->config.network.max_connections;
  while (!adopts_.empty()) {
    for (size_t i = 0; i < ready.size(); ++i) {
      shm::ProcessSlot& slot = current_->segment->slot(ready[i]->slot);
      // `adopted` first: the process publishes its connections before it
      // counts an adopt as taken, so this order can only overcount.
      targets[i].adopted = std::atomic_ref<uint64_t>(slot.taken_in).load(std::memory_order_acquire);
      targets[i].connections =
          std::atomic_ref<uint32_t>(slot.connections).load(std::memory_order_relaxed);
      targets[i].sent = ready[i]->passed_in;
    }
    const AdoptChoice choice = place_adopt(targets, max_connections);
    if (choice.kind == AdoptChoice::wait) return;  // again on the next iteration
    PendingAdopt& a = adopts_.front();
    if (choice.kind == AdoptChoice::close) {
      close_surplus(std::move(a.fd));
      adopts_.pop_front();
      continue;
    }
    Child& target = *ready[choice.target];
    const auto waited = static_cast<uint64_t>(std::max<int64_t>(0, monotonic_ms() - a.handed_ms));
    // Counted before it is sent, so the process can never see an adopt in
    // its queue that the count does not show (it waits for those before it
    // may end: may_end_loop); taken back if the send fails.
    std::atomic_ref<uint64_t> published(current_->segment->slot(target.slot).passed_in);
    published.store(target.passed_in + 1, std::memory_order_release);
    std::string err;
    const proto::SendStatus st = proto::try_send_control(
        target.control.get(), {proto::ControlType::adopt, 0, a.idle_ms + waited}, {a.fd.get()},
        a.bytes, err);
    if (st != proto::SendStatus::ok) {
      published.store(target.passed_in, std::memory_order_release);
      // Full queue (or ETOOMANYREFS): later. Any other error: a dying
      // target, reaped soon. Either way not this one for now.
      targets[choice.target].busy = true;
      continue;
    }
    ++target.passed_in;
    adopts_.pop_front();
  }
}

// A connection a service takes over (an upgrade): to the ready process of
// that service (by name) in the serving generation holding the fewest
// (pick_taker), without blocking;
// when none can take it now, the client gets 503 and the connection
// closes, rather than waiting in a queue for a process that may never
// come: from the network process that sent it (`take_refused`, so it is
// counted and logged as any response) when it is `answerer` (ready, of the
// serving generation, no stop under way), or from here when it is not, or
// cannot take the message now.
void Supervisor::relay_takeover(const std::string& service, proto::UniqueFd fd,
                                const std::string& payload, Child* answerer, uint64_t asked_us) {
  std::vector<Child*> pool;
  const int s = current_ != nullptr ? serving_service(service, current_->config.services) : -1;
  if (s >= 0) {
    for (Child& c : current_->children) {
      if (c.role == shm::ProcessRole::service && c.service == s) pool.push_back(&c);
    }
  }
  std::vector<TakerCandidate> candidates(pool.size());
  for (size_t i = 0; i < pool.size(); ++i) {
    TakerCandidate& c = candidates[i];
    c.ready = pool[i]->state == SlotState::ready && pool[i]->control;
    shm::ProcessSlot& slot = current_->segment->slot(pool[i]->slot);
    // `taken_in` first: the process publishes its connections before it
    // counts a take, so this order can only overcount.
    c.taken = std::atomic_ref<uint64_t>(slot.taken_in).load(std::memory_order_acquire);
    c.connections = std::atomic_ref<uint32_t>(slot.connections).load(std::memory_order_relaxed);
    c.sent = pool[i]->passed_in;
  }
  uint32_t& next = take_next_[service];
  for (size_t tries = 0; tries < pool.size(); ++tries) {
    const int i = pick_taker(candidates, next);
    if (i < 0) break;
    Child& taker = *pool[static_cast<size_t>(i)];
    const std::string err = proto::send_control(
        taker.control.get(), {proto::ControlType::take, 0, 0}, {fd.get()}, payload, true);
    if (err.empty()) {
      std::atomic_ref<uint64_t>(current_->segment->slot(taker.slot).passed_in)
          .store(++taker.passed_in, std::memory_order_relaxed);
      return;
    }
    candidates[static_cast<size_t>(i)].ready = false;  // its queue is full: the next one
  }
  ++counters_.takeovers_refused;
  publish_counters();  // before the client can see its 503
  if (answerer != nullptr && answerer->control &&
      proto::send_control(answerer->control.get(), {proto::ControlType::take_refused, 0, asked_us},
                          {fd.get()}, payload, true)
          .empty()) {
    log_warn("no process of service \"" + service + "\" could take a connection; " +
             answerer->title + " answers 503");
    return;
  }
  log_warn("no process of service \"" + service + "\" could take a connection; answered 503");
  // The socket is non-blocking (the network process's): a short response
  // into an empty socket buffer, or nothing if the client is gone; then a
  // FIN, not a reset over bytes the client sent after its head.
  [[maybe_unused]] const ssize_t w =
      ::send(fd.get(), proto::kTakeoverRefused.data(), proto::kTakeoverRefused.size(),
             MSG_NOSIGNAL | MSG_DONTWAIT);
  proto::close_unserved(std::move(fd));
}

// With a FIN, as at a keep-alive timeout (proto::close_unserved).
void Supervisor::close_surplus(proto::UniqueFd fd) {
  proto::close_unserved(std::move(fd));
  ++surplus_closed_;
  surplus_generation_ = current_->number;
  ++counters_.handoffs_closed;
  publish_counters();
}

void Supervisor::report_surplus() {
  if (surplus_closed_ == 0) return;
  uint32_t n_network = 0;
  uint64_t max_connections = 0;
  for (const auto& g : generations_) {
    if (g->number != surplus_generation_) continue;
    n_network = g->n_network;
    max_connections = g->config.network.max_connections;
  }
  log_warn("reload: " + std::to_string(surplus_closed_) +
           " handed-over connections closed: generation " + std::to_string(surplus_generation_) +
           " had no room for them (network.max_connections " + std::to_string(max_connections) +
           " x " + std::to_string(n_network) + " network processes)");
  surplus_closed_ = 0;
}

void Supervisor::announce_adopts_done() {
  size_t handing = 0;  // older network processes, which may still hand connections over
  for (const auto& g : generations_) {
    if (g.get() == current_) continue;
    for (const Child& c : g->children) {
      if (c.role == shm::ProcessRole::network && is_running(c)) ++handing;
    }
  }
  for (auto& g : generations_) {
    for (Child& c : g->children) {
      if (c.role != shm::ProcessRole::network || !is_running(c) || !c.control) continue;
      if (c.adopts_done_sent || !adopts_done_due(g.get() == current_, adopts_.size(), handing)) {
        continue;
      }
      // A failed send: the process is dying, or exits at its deadline.
      proto::send_control(c.control.get(), {proto::ControlType::adopts_done, 0});
      c.adopts_done_sent = true;
    }
  }
}

void Supervisor::run_timers(int64_t now) {
  for (auto& g : generations_) run_generation_timers(*g, now);
  // Generations with no process left are gone; so is their segment.
  std::erase_if(generations_, [&](const std::unique_ptr<Generation>& g) {
    if (g.get() == current_ || !g->ended()) return false;
    shm::Segment::remove(g->segment->name());
    log_info("generation " + std::to_string(g->number) + " ended");
    return true;
  });
  // The reload's drain is over, and no handed-over connection still waits.
  if (generations_.size() == 1 && adopts_.empty()) report_surplus();
}

void Supervisor::run_generation_timers(Generation& g, int64_t now) {
  for (const Action& a : g.tick(now)) apply(g, a, now);
}

// Carries out one decision of the generation's machine.
void Supervisor::apply(Generation& g, const Action& a, int64_t now) {
  if (a.kind == Action::start_rest) {
    start_or_roll_back(g);
    return;
  }
  if (a.kind == Action::roll_back_late) {
    if (g.phase != GenerationPhase::starting) return;  // rolled back meanwhile
    std::string late;
    for (uint32_t s : g.late(now)) {
      if (!late.empty()) late += ", ";
      late += g.children[s].title + pid_text(g.children[s].pid);
    }
    roll_back(g, "generation " + std::to_string(g.number) + " not ready within " +
                     std::to_string(g.ready_deadline_ms() - g.forked_ms) + " ms (waiting for " +
                     late + ")");
    return;
  }
  Child& c = g.children[a.slot];
  if (a.kind == Action::spawn) {
    if (!spawn(g, c).empty()) {
      // Again after the next back-off step; a streak of these is a crash
      // loop like one of deaths (GenerationMachine::spawn_failed).
      const DeathDecision d = g.spawn_failed(a.slot, now);
      log_error(c.title + " could not be started; trying again in " + std::to_string(d.delay_ms) +
                " ms (" + std::to_string(d.streak) + " failures in a row" +
                (d.crash_loop ? ": crash loop)" : ")"));
    }
    return;
  }
  if (!is_running(c)) return;  // never signal pid -1
  switch (a.kind) {
    case Action::kill_hung:
      log_error(c.title + pid_text(c.pid) + " did not settle with " + g.children[a.about].title +
                " in time; killing it");
      kill_child(c);
      break;
    case Action::stop_service:  // nothing can reach it any more
      send_stop(c, true);
      break;
    case Action::hurry:
      send_stop(c, false);
      break;
    case Action::kill_late:
      log_warn(c.title + pid_text(c.pid) + " did not drain in time; killing it");
      kill_child(c);
      break;
    case Action::kill_unready:
      log_error(c.title + pid_text(c.pid) + " was not ready within " +
                std::to_string(c.ready_allowance_ms) + " ms; killing it, to be replaced");
      kill_child(c);
      break;
    default:
      break;
  }
}

int Supervisor::poll_timeout(int64_t now) const {
  int64_t next = now + 1000;
  for (const auto& g : generations_) next = std::min(next, g->next_timer_ms(now));
  if (!adopts_.empty()) next = std::min(next, now + 2);
  next = std::min(next, notifier_.watchdog_due_ms());
  return static_cast<int>(std::clamp<int64_t>(next - now, 0, 1000));
}

// ---- stop ---------------------------------------------------------------

void Supervisor::send_stop(Child& c, bool graceful) {
  const std::string err =
      c.control
          ? proto::send_control(c.control.get(), {proto::ControlType::stop, graceful ? 1u : 0u})
          : "no control socket";
  if (!err.empty()) ::kill(c.pid, SIGTERM);
}

// Whether a service process holds a connection it took over (each
// publishes its count in its slot's `connections`): only then does a
// graceful stop give service processes more than kFastStopMs.
bool Supervisor::tunnels_open() const {
  for (const auto& g : generations_) {
    for (const Child& c : g->children) {
      if (c.role != shm::ProcessRole::service || !is_running(c)) continue;
      if (std::atomic_ref<uint32_t>(g->segment->slot(c.slot).connections)
              .load(std::memory_order_relaxed) > 0) {
        return true;
      }
    }
  }
  return false;
}

// `role` none: every process. True when a signal hurried it (a second
// SIGTERM, or SIGINT or SIGQUIT).
bool Supervisor::stop_role(shm::ProcessRole role, bool graceful, int timeout_ms) {
  stopping_ = true;
  for (auto& g : generations_) {
    g->stop();
    for (Child& c : g->children) {
      if (of_role(c, role) && is_running(c)) send_stop(c, graceful);
    }
  }
  Wait waited = wait_exit(role, timeout_ms, graceful);
  const bool hurried = waited == Wait::hurry;
  // Service processes past the drain deadline (tunnels still open) are told
  // to stop now, as after a second signal, before anything is killed.
  const bool late_services =
      waited == Wait::timed_out && role == shm::ProcessRole::service && tunnels_open();
  if ((waited == Wait::hurry || late_services) && graceful) {
    if (waited == Wait::hurry) log_info("stopping now (signal during a graceful stop)");
    for (auto& g : generations_) {
      for (Child& c : g->children) {
        if (of_role(c, role) && is_running(c)) send_stop(c, false);
      }
    }
    waited = wait_exit(role, kFastStopMs, false);
  }
  if (waited == Wait::exited) return hurried;
  for (auto& g : generations_) {
    for (Child& c : g->children) {
      if (!of_role(c, role) || !is_running(c)) continue;
      log_warn(c.title + pid_text(c.pid) + " did not stop in time; killing it");
      kill_child(c);
    }
  }
  wait_exit(role, kKillWaitMs, false);
  return hurried;
}

// `can_hurry`: a second SIGTERM, or SIGINT/SIGQUIT, ends the wait early.
Supervisor::Wait Supervisor::wait_exit(shm::ProcessRole role, int timeout_ms, bool can_hurry) {
  const int64_t deadline = monotonic_ms() + timeout_ms;
  for (;;) {
    reap();
    bool all = true;
    for (auto& g : generations_) {
      for (const Child& c : g->children) all = all && (!of_role(c, role) || !is_running(c));
    }
    if (all) return Wait::exited;
    const int64_t left = deadline - monotonic_ms();
    if (left <= 0) return Wait::timed_out;
    // Children are still read meanwhile: one blocked on a full control
    // socket (a draining network process handing connections over) would
    // otherwise never finish.
    std::vector<pollfd> fds{{signal_fd_.get(), POLLIN, 0}};
    std::vector<std::pair<Generation*, Child*>> owners{{nullptr, nullptr}};
    flush_adopts();
    if (role != shm::ProcessRole::service) announce_adopts_done();
    for (auto& g : generations_) {
      for (Child& c : g->children) {
        if (!c.control || reads_paused(*g, c)) continue;
        fds.push_back(pollfd{c.control.get(), POLLIN, 0});
        owners.emplace_back(g.get(), &c);
      }
    }
    ::poll(fds.data(), fds.size(),
           static_cast<int>(std::min<int64_t>(left, adopts_.empty() ? 100 : 2)));
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents != 0) handle_control(*owners[i].first, *owners[i].second, 64);
    }
    signalfd_siginfo info{};
    bool again = false;
    while (::read(signal_fd_.get(), &info, sizeof info) == sizeof info) {
      const int sig = static_cast<int>(info.ssi_signo);
      if (sig == SIGINT || sig == SIGTERM || sig == SIGQUIT) {
        again = true;
      } else if (sig == SIGHUP || sig == SIGUSR1 || sig == SIGUSR2 || sig == SIGWINCH) {
        log_info(std::string("SIG") + sigabbrev_np(sig) + " during a stop: ignored");
      }
    }
    if (again && can_hurry) return Wait::hurry;
  }
}

std::string Supervisor::status_summary() const {
  if (current_ == nullptr) return "starting";
  size_t n_service = 0;
  for (const auto& s : current_->config.services) n_service += static_cast<size_t>(s.processes);
  return "generation " + std::to_string(current_->number) + " serving, " +
         std::to_string(current_->n_network) + " network and " + std::to_string(n_service) +
         " service processes, " + std::to_string(rate_) +
         " requests/s; last reload: " + last_reload_result_;
}

// Requests per second over the last few seconds, from the serving
// generation's scoreboard (responses its network processes wrote), for
// systemd's STATUS= line (`systemctl status`). A new generation starts its
// own count.
void Supervisor::update_rate(int64_t now) {
  constexpr int64_t kRateEveryMs = 5000;
  next_rate_ms_ = now + kRateEveryMs;
  if (current_ == nullptr || !current_->segment) return;
  uint64_t total = 0;
  for (uint32_t i = 0; i < current_->n_network; ++i) {
    total += std::atomic_ref<uint64_t>(current_->segment->slot(i).requests)
                 .load(std::memory_order_relaxed);
  }
  if (rate_generation_ == current_->number && now > rate_since_ms_ && total >= rate_total_) {
    rate_ = (total - rate_total_) * 1000 / static_cast<uint64_t>(now - rate_since_ms_);
    notifier_.status(status_summary());
  }
  rate_generation_ = current_->number;
  rate_total_ = total;
  rate_since_ms_ = now;
}

bool Supervisor::healthy(int64_t now) const {
  std::vector<int64_t> loops;
  if (current_ != nullptr) {
    for (const Child& c : current_->children) {
      const bool recovered = is_running(c) && now - c.started_ms >= RestartPolicy::kHealthyMs;
      if (c.crash_loop_since_ms != 0 && !recovered) loops.push_back(c.crash_loop_since_ms);
    }
  }
  return watchdog_healthy(current_ != nullptr, loops, now, notifier_.watchdog_interval_ms());
}

std::string Supervisor::ready_line(const Generation& g) const {
  std::string line = "ready: listening on";
  const char* sep = " ";
  for (const Listener& l : g.listeners) {
    if (l.member > 0) continue;  // a reuseport group is one address
    line += sep + l.address + (l.member == 0 ? " (reuseport)" : "");
    sep = ", ";
  }
  size_t n_service = 0;
  for (const auto& s : g.config.services) n_service += static_cast<size_t>(s.processes);
  line += "; generation " + std::to_string(g.number) + ", " + std::to_string(g.n_network) +
          " network and " + std::to_string(n_service) + " service processes";
  return line;
}

}  // namespace ringhttpd::master
