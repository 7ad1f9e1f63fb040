// RLIMIT_NOFILE sized for network.max_connections: every network process
// may hold that many client sockets plus its own descriptors, and the limit
// is inherited across fork, so the supervisor raises it once at start. The
// supervisor needs its own share too: during a reload it holds two
// generations (an eventfd and a control socket per process, and a copy of
// every listening socket each), which with many processes and few
// connections is the larger need; a reload while older generations still
// drain is checked against what is left (reload_fd_problem). The decisions
// are pure functions (tested directly); applying them is a syscall.
#pragma once

#include <cstdint>
#include <string>

namespace ringhttpd::master {

struct FdLimitPlan {
  uint64_t soft = 0;  // the limits to set (unchanged when already enough)
  uint64_t hard = 0;
  bool change = false;
  std::string error;  // set when the need cannot be met
};

// Descriptors a network process needs besides its clients: listeners,
// eventfds, control, epoll, signalfd, log, and slack for accept bursts.
inline constexpr uint64_t kFdOverhead = 64;

// `listeners`: listening sockets (every member of a reuseport group);
// `processes`: network and service processes of one generation.
// `can_raise_hard`: the process may raise its hard limit (CAP_SYS_RESOURCE),
// up to `ceiling` (fs.nr_open).
// Open files needed: the larger of a network process's and the supervisor's
// during a reload.
uint64_t fd_need(uint64_t max_connections, uint64_t listeners, uint64_t processes);

FdLimitPlan plan_fd_limit(uint64_t max_connections, uint64_t listeners, uint64_t processes,
                          uint64_t soft, uint64_t hard, bool can_raise_hard, uint64_t ceiling);

// What the start would say about this process's limits, without changing
// them ("" when they are enough or can be raised): `check` refuses such a
// config, judging the limits of its own process, as a check run where the
// server runs (ExecStartPre=, the same user) sees them.
std::string fd_limit_problem(uint64_t max_connections, uint64_t listeners, uint64_t processes);

// Applies the plan for the running process; returns an error text or "".
std::string raise_fd_limit(uint64_t max_connections, uint64_t listeners, uint64_t processes);

// Descriptors the supervisor opens for one more generation once its
// listeners are bound: an eventfd and a control socket per process, the
// child's end of that socket while it forks, and a few for the segment.
inline uint64_t generation_fds(uint64_t processes) { return 2 * processes + 8; }

// A reload made while older generations still drain (a SIGHUP storm, a long
// drain_timeout_ms) holds more than the two generations the limit was
// planned for: "" when `open_now` descriptors plus the new generation's fit
// under `soft`, else why not, naming the limit (the reload is refused at
// once rather than fail half-way through forking).
std::string reload_fd_problem(uint64_t open_now, uint64_t soft, uint64_t processes,
                              size_t generations_running);

// Descriptors this process has open (/proc/self/fd), or 0 if unknown.
uint64_t open_fd_count();
// This process's soft RLIMIT_NOFILE.
uint64_t fd_soft_limit();

}  // namespace ringhttpd::master
