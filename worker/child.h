// What every child process does the same way, whatever its role: tie its
// life to the supervisor's (PR_SET_PDEATHSIG, then a getppid() check because
// the supervisor may already be gone), take SIGTERM/SIGINT through a
// signalfd, wake other processes through their eventfds, and clean up the
// segment's name when the supervisor died without doing it.
#pragma once

#include <string>

#include "proto/unique_fd.h"
#include "worker/access_log.h"
#include "worker/event_loop.h"
#include "worker/worker_env.h"

namespace ringhttpd::worker {

// Run first in the child, right after fork. Returns false when the
// supervisor is already gone (the child must exit).
bool bind_to_supervisor(const WorkerEnv& env);
// A signalfd for the stop signals (they are blocked since the supervisor
// blocked them before fork, so none can be lost in between).
proto::UniqueFd make_stop_signalfd();
// Reads the pending signals; true when they mean "stop": SIGTERM or SIGINT
// once the supervisor is gone (while it lives, it decides when children stop).
bool read_stop_signal(int signal_fd, const WorkerEnv& env);
// Puts the descriptors every child watches into its loop: the stop
// signalfd, the control socket and its wake-up eventfd (edge-triggered:
// every write is an edge, so it never needs to be read). Logs and returns
// false on failure.
bool watch_child_fds(EventLoop& loop, int signal_fd, const WorkerEnv& env);
// Called when a child finds its supervisor gone: remove the segment's name
// (idempotent) so a SIGKILLed supervisor leaves nothing in /dev/shm.
void supervisor_lost(const WorkerEnv& env);
bool supervisor_alive(const WorkerEnv& env);
// Publishes this process's state (and pid) in its scoreboard slot.
void set_slot_state(WorkerEnv& env, shm::ProcessState state);
// Marks the slot ready and tells the supervisor; false if that failed.
bool report_ready(WorkerEnv& env);
// A ring shared with the process at scoreboard `peer_slot` is broken: ask the
// supervisor to replace that process (its incarnation is read now, so a
// report that arrives after the replacement is ignored).
void report_broken_peer(WorkerEnv& env, uint32_t peer_slot);

// network.scheduling and services[].scheduling: SCHED_BATCH unless
// "normal". A batch process's wake-up does not preempt the process running
// on that CPU: that one finishes its loop iteration (its batch of requests)
// first. On an idle CPU the woken process still runs at once, the tick still
// shares a busy CPU by the same weights as before, and the nice value is
// untouched. Lowering the policy needs no privilege; a failure is logged
// (naming `key`) and the process serves anyway.
void apply_scheduling(const std::string& scheduling, const std::string& key);

// "network g1 #0", "service app g1 #1": the title's role part, also used by
// the supervisor's log lines about that child.
std::string child_title(const WorkerEnv& env);

// Opens the access log (`target`: log.access, or "off"). A replacement in a
// serving generation serves without it when it cannot (its directory was
// moved away meanwhile): its lines are lost, counted, until the file opens,
// tried again at each flush. One of a generation's first processes fails
// instead, so that the start or reload fails naming the key.
bool open_access_log(AccessLog& log, const std::string& target, const WorkerEnv& env);

// Runs the child's role; returns its exit status.
int run_child(WorkerEnv& env);

}  // namespace ringhttpd::worker
