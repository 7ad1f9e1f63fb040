// The supervisor: the process the operator starts. It binds the listeners,
// creates this generation's shared-memory segment, forks the network and
// service processes, passes each network process the listening sockets over
// its control socketpair (SCM_RIGHTS), waits until every child reports
// ready, logs one "ready" line, and then watches: signals arrive through a
// signalfd (no code runs in signal context), and a child's exit through
// SIGCHLD on the same descriptor. SIGTERM stops gracefully, SIGINT fast; either way
// the network processes stop first (they finish or fail what is in flight),
// then the service processes, then the segment is removed.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "master/config.h"
#include "master/listeners.h"
#include "proto/unique_fd.h"
#include "shm/segment.h"
#include "worker/worker_env.h"

namespace ringhttpd::master {

// Whether a segment named for instance `pid` belongs to a dead instance:
// the pid is not running, or runs something other than ringhttpd (`comm` is
// /proc/PID/comm, empty if unreadable). Pure, for testing.
bool is_stale_instance(bool pid_running, std::string_view comm);

// Removes /dev/shm segments of ringhttpd instances that are gone. Returns
// the names removed.
std::vector<std::string> remove_stale_segments();

class Supervisor {
 public:
  explicit Supervisor(Config config);
  ~Supervisor();
  // Runs until stopped; returns the process exit status.
  int run();

 private:
  struct Child {
    pid_t pid = -1;
    shm::ProcessRole role = shm::ProcessRole::none;
    uint32_t index = 0;
    std::string title;
    proto::UniqueFd control;  // supervisor's end
    bool ready = false;
    bool exited = false;
  };
  enum class Outcome { running, stop_graceful, stop_fast, failed };

  bool prepare();
  bool spawn_all();
  bool spawn(shm::ProcessRole role, uint32_t index, int service, uint32_t service_proc);
  void close_in_child(int keep_control);
  bool send_listeners();
  bool wait_ready();
  Outcome watch();
  Outcome handle_signals();
  Outcome reap();
  void stop_role(shm::ProcessRole role, bool graceful, int timeout_ms);
  enum class Wait { exited, timed_out, hurry };
  Wait wait_exit(shm::ProcessRole role, int timeout_ms, bool can_hurry);
  std::string ready_line() const;

  Config config_;
  uint32_t generation_ = 1;
  uint32_t n_network_ = 0;
  std::vector<Listener> listeners_;
  std::optional<shm::Segment> segment_;
  std::vector<proto::UniqueFd> wake_fds_;
  proto::UniqueFd signal_fd_;
  std::vector<Child> children_;
  worker::WorkerEnv env_template_;
  bool stopping_ = false;
};

}  // namespace ringhttpd::master
