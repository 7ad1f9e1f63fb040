// Child start-up shared by every role, and the one switch on role.
#include "worker/child.h"

#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdint>
#include <tuple>

#include "proto/control.h"
#include "worker/log.h"
#include "worker/network_process.h"
#include "worker/process_title.h"
#include "worker/service_process.h"

namespace ringhttpd::worker {

void wake(int eventfd) {
  const uint64_t one = 1;
  ssize_t unused = ::write(eventfd, &one, sizeof one);
  (void)unused;
}

// A network process is told with SIGTERM, which its loop reads (it never
// blocks: the watchdog sees to that), and removes the segment. A service
// process runs handler code that may block (a call without a timeout, a
// module's init): SIGTERM would wait for its loop forever, leaving it
// orphaned, so it gets SIGKILL. The segment goes with the network
// processes, or with the next start (a stale instance's segment).
bool bind_to_supervisor(const WorkerEnv& env) {
  const int signal = env.role == shm::ProcessRole::network ? SIGTERM : SIGKILL;
  ::prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0);
  // The supervisor may have died before prctl took effect.
  return supervisor_alive(env);
}

bool supervisor_alive(const WorkerEnv& env) {
  return static_cast<uint32_t>(::getppid()) == env.supervisor_pid;
}

proto::UniqueFd make_stop_signalfd() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  return proto::UniqueFd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
}

bool watch_child_fds(EventLoop& loop, int signal_fd, const WorkerEnv& env) {
  const int wake_fd = env.wake_fds[env.slot()];
  for (auto [fd, kind, events] :
       {std::tuple{signal_fd, TokenKind::signal, uint32_t{EPOLLIN}},
        std::tuple{env.control_fd, TokenKind::control, uint32_t{EPOLLIN}},
        std::tuple{wake_fd, TokenKind::wake, uint32_t{EPOLLIN | EPOLLET}}}) {
    if (std::string err = loop.add(fd, events, make_token(kind, 0)); !err.empty()) {
      log_error(err);
      return false;
    }
  }
  return true;
}

bool read_stop_signal(int signal_fd, const WorkerEnv& env) {
  signalfd_siginfo info{};
  bool stop = false;
  while (::read(signal_fd, &info, sizeof info) == sizeof info) {
    stop = stop || info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT;
  }
  // Ctrl-C reaches the whole process group, and systemd's default KillMode
  // sends SIGTERM to every process of the unit: the supervisor then stops
  // the children in order (network processes drain first, services answer
  // what they hold), so a child with a living supervisor waits for its word.
  return stop && !supervisor_alive(env);
}

void supervisor_lost(const WorkerEnv& env) {
  static bool reported = false;
  if (reported) return;
  reported = true;
  log_warn("the supervisor is gone; exiting");
  shm::Segment::remove(env.segment->name());
}

std::string child_title(const WorkerEnv& env) {
  std::string gen = " g" + std::to_string(env.generation) + " #" + std::to_string(env.index);
  if (env.role == shm::ProcessRole::network) return "network" + gen;
  return "service " + env.services[static_cast<size_t>(env.service)].name + gen;
}

void apply_scheduling(const std::string& scheduling, const std::string& key) {
  const sched_param param{};
  const int policy = scheduling == "normal" ? SCHED_OTHER : SCHED_BATCH;
  if (::sched_setscheduler(0, policy, &param) != 0) {
    log_warn(key + ": " + errno_message("sched_setscheduler(" + scheduling + ")"));
  }
}

void set_slot_state(WorkerEnv& env, shm::ProcessState state) {
  shm::ProcessSlot& slot = env.segment->slot(env.slot());
  slot.pid = static_cast<uint32_t>(::getpid());
  std::atomic_ref<shm::ProcessState>(slot.state).store(state, std::memory_order_release);
}

bool report_ready(WorkerEnv& env) {
  set_slot_state(env, shm::ProcessState::ready);
  return proto::send_control(env.control_fd, {proto::ControlType::ready, 0}).empty();
}

void report_broken_peer(WorkerEnv& env, uint32_t peer_slot) {
  const uint32_t incarnation = env.segment->slot(peer_slot).incarnation;
  log_error("a ring shared with slot " + std::to_string(peer_slot) +
            " holds impossible positions or lengths; asking for that process to be replaced");
  const std::string err = proto::send_control(
      env.control_fd, {proto::ControlType::peer_broken, peer_slot, incarnation});
  if (!err.empty()) log_error(err);
}

int run_child(WorkerEnv& env) {
  const std::string title = child_title(env);
  set_log_role(title);
  set_log_level(parse_log_level(env.log_level));
  set_process_title("ringhttpd: " + title);
  if (!bind_to_supervisor(env)) {
    supervisor_lost(env);
    return 1;
  }
  const uint32_t ring_index = env.role == shm::ProcessRole::network ? env.index : env.service_proc;
  if (std::string error; !env.segment->verify_for(env.role, ring_index, error)) {
    log_error("shared memory segment " + env.segment->name() + ": " + error);
    return 1;
  }
  set_slot_state(env, shm::ProcessState::starting);
  int status;
  if (env.role == shm::ProcessRole::network) {
    NetworkProcess process(env);
    status = process.run();
  } else {
    ServiceProcess process(env);
    status = process.run();
  }
  // One that never got ready says why, so that a failed reload can (a
  // module that does not load: `ctl reload` shows its reason).
  const shm::ProcessState reached =
      std::atomic_ref<shm::ProcessState>(env.segment->slot(env.slot()).state)
          .load(std::memory_order_relaxed);
  if (status != 0 && reached == shm::ProcessState::starting && !last_error().empty()) {
    proto::send_control(env.control_fd, {proto::ControlType::failed, 0}, {}, last_error());
  }
  set_slot_state(env, shm::ProcessState::stopping);
  return status;
}

bool open_access_log(AccessLog& log, const std::string& target, const WorkerEnv& env) {
  const std::string e = log.open(target, AccessLog::format_named(env.access_format));
  if (e.empty()) return true;
  if (!env.replacement) {
    log_error(e);
    return false;
  }
  log_error(e + "; serving without it until it opens (tried again at each flush)");
  return true;
}

}  // namespace ringhttpd::worker
