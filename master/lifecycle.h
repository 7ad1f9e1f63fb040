// The supervisor's decisions, kept apart from the code that forks, waits
// and passes descriptors (Envoy's hot-restart split), so each is tested
// without processes or sockets (tests/unit/lifecycle_test.cc,
// tests/unit/generation_machine_test.cc). Nothing here makes a syscall or
// reads a clock: every event carries its time, and every answer is a
// decision the supervisor (master/supervisor.cc) carries out.
//
// - RestartPolicy: when to start a replacement for a process that died
//   (at once the first time, then 100 ms doubling to 10 s; the streak is
//   forgotten once a process has run 60 s).
// - decide_death: what a death means, given the generation the process
//   belonged to (replace it, fail the reload it was part of, or only settle
//   what it owed).
// - GenerationMachine: the life of one generation and of its slots: when it
//   commits, when it rolls back, when a dead process's replacement may start,
//   when a hung peer is killed, and the drain's deadlines.
// - ReloadMachine: one reload at a time; requests that arrive meanwhile are
//   coalesced into one more reload after it.
// - loop_stuck: the network watchdog's verdict on a heartbeat.
//
// Life of a process slot (one scoreboard line of one generation):
//
//      spawn            ready message            death (serving generation)
//   ---------> starting -------------> ready ------------------------------+
//                 |                                                        |
//                 | death                                                  v
//                 +------------------------------------------------> gone: peers settle
//                                                                   (peer_gone / peer_released),
//        spawn (after the back-off, once every live peer released)  back-off timer runs
//   <----------------------------------------------------------------------+
//
// Life of a generation:
//
//   starting --all ready--> serving --next generation ready--> draining --all exited--> ended
//      |                       |                                   ^                      ^
//      |                       +--stop signal: stopped with the others                    |
//      +--a child died, or not ready in time: discarding (killed, reaped) ----------------+
#pragma once

#include <cstdint>
#include <set>
#include <vector>

#include "shm/segment.h"

namespace ringhttpd::master {

// A process must report ready this long after its fork (a network
// process always; a service process unless its services[i].start_timeout_ms
// says otherwise): a starting generation is rolled back when its first
// slot not yet ready runs out of its allowance (counted from the first
// fork), a replacement is killed (and replaced again) at its own.
inline constexpr int64_t kReadyTimeoutMs = 10000;
// Beyond drain_timeout_ms (when a draining generation is told to stop now)
// before its processes are killed. Also the margin of a graceful stop.
inline constexpr int64_t kStopMarginMs = 2000;
// A live peer settles a dead one's requests within one loop iteration; one
// that has not within this is hung, and is killed (and replaced) itself.
inline constexpr int64_t kReleaseTimeoutMs = 1000;
// The smallest network.watchdog_ms (but 0, off): a network process's loop
// runs at least once a second even when idle, so a few seconds without a
// heartbeat is a stuck loop, never a quiet one.
inline constexpr uint32_t kMinWatchdogMs = 3000;

// The network watchdog (network.watchdog_ms): a network process stamps its
// scoreboard heartbeat every loop iteration; one whose heartbeat is older
// than `watchdog_ms` is stuck (its connections hang with it), and is killed,
// then replaced like any process that died. 0: off.
bool loop_stuck(int64_t now_ms, uint64_t heartbeat_ms, uint32_t watchdog_ms);

class RestartPolicy {
 public:
  static constexpr int64_t kFirstBackoffMs = 100;
  static constexpr int64_t kMaxBackoffMs = 10000;
  static constexpr int64_t kHealthyMs = 60000;

  // A process of this slot that started at `started_ms` died at `now_ms`:
  // the delay before its replacement starts.
  int64_t on_death(int64_t started_ms, int64_t now_ms);
  // A replacement could not be started (fork failed): one more failure in
  // the streak, but no process was lost (restarts() stays).
  int64_t on_failed_start();
  // A process of this slot crashed where no replacement follows (its
  // generation drains, or the server stops): lost, and counted, but no
  // step of a streak.
  void on_lost() { ++restarts_; }
  // Failures (deaths and failed starts) in the current streak (0 when the
  // last process ran healthy).
  uint32_t streak() const { return streak_; }
  // Processes this slot lost.
  uint64_t restarts() const { return restarts_; }

 private:
  int64_t next_delay();

  uint32_t streak_ = 0;
  uint64_t restarts_ = 0;
};

// The admin socket names each phase ("ended" is not one: an ended
// generation is removed).
enum class GenerationPhase { starting, serving, draining, discarding };

enum class DeathAction {
  replace,      // serving generation: settle with the peers, then start a replacement
  fail_reload,  // a starting generation lost a process: the reload fails, roll back
  settle_only,  // draining generation or stopping server: peers settle, no replacement
  nothing,      // a discarded generation: it is being torn down anyway
};

DeathAction decide_death(GenerationPhase phase, bool server_stopping);

enum class SlotState { starting, ready, gone };

// One scoreboard slot of a generation, as the machine sees it: the
// supervisor's Child adds the process (pid, control socket, title).
// Written only by GenerationMachine (role, release_allowance_ms and
// ready_allowance_ms are set once, when the generation is made).
struct SlotLife {
  shm::ProcessRole role = shm::ProcessRole::none;
  // As a peer of a dead process: how long it may take to release it (a
  // service process reads control messages between handler calls, so it
  // gets as long as a handler may legitimately run).
  int64_t release_allowance_ms = kReleaseTimeoutMs;
  // From its fork, how long its process may take to report ready (a
  // module's init may load a lot): services[i].start_timeout_ms.
  int64_t ready_allowance_ms = kReadyTimeoutMs;
  SlotState state = SlotState::gone;
  int64_t started_ms = 0;  // the last process's start; 0: never started
  RestartPolicy restart;
  bool respawn = false;             // a replacement is due (at restart_at_ms)
  int64_t died_ms = 0;              // != 0: the last process died then; not yet replaced
  int64_t restart_at_ms = 0;        // valid while respawn
  std::set<uint32_t> awaiting;      // peers that have not released this slot yet
  int64_t release_deadline_ms = 0;  // valid while !awaiting.empty()
  bool release_killed = false;      // the peers still awaited were killed (hung)
  bool unready_killed = false;      // this process was killed for not being ready in time
  // != 0: the slot entered a crash loop then (restart.streak() reached
  // kCrashLoopStreak, deaths and failed starts alike); 0 again once a
  // death ends the streak. The watchdog rule (Supervisor::healthy) reads it.
  int64_t crash_loop_since_ms = 0;

  bool running() const { return state != SlotState::gone; }
};

// What a death means (GenerationMachine::process_died).
struct DeathDecision {
  DeathAction action = DeathAction::nothing;
  // Tell the live peers (peer_gone) and await their release
  // (GenerationMachine::awaiting_release). Not when a stopping server loses
  // a network process: its peers are stopping too.
  bool settle = false;
  // replace: the replacement may start this long after the death, once
  // every peer released the slot.
  int64_t delay_ms = 0;
  uint32_t streak = 0;      // replace: failures (deaths, failed starts) in a row, this one included
  bool crash_loop = false;  // replace: streak >= kCrashLoopStreak
};

// What a ready message means (GenerationMachine::process_ready).
struct ReadyDecision {
  // The last process of a starting generation: it serves from now on
  // (phase is serving); the supervisor passes it the listeners and drains
  // the generation it replaces.
  bool commit = false;
  // >= 0: a replacement; its slot was without a process this long.
  int64_t replaced_after_ms = -1;
};

// Something tick() decided is due now, for the supervisor to carry out.
struct Action {
  enum Kind {
    kill_hung,       // `slot` did not release `about` in time: kill it (it is replaced in turn)
    spawn,           // start a replacement in `slot`; on failure, spawn_failed()
    start_rest,      // starting: fork the processes not forked yet; on failure, roll back
    roll_back_late,  // starting: a slot not ready by its time (ready_deadline_ms())
    stop_service,    // draining, no network process left: stop `slot` gracefully
    hurry,           // draining, drain_timeout_ms passed: tell `slot` to stop now
    kill_late,       // draining, kStopMarginMs later still: kill `slot`
    kill_unready,    // serving: a replacement not ready within its ready_allowance_ms: kill
                     // it (its death starts the next, after a back-off step)
  };
  Kind kind;
  uint32_t slot = 0;
  uint32_t about = 0;  // kill_hung: the dead slot it did not release

  bool operator==(const Action&) const = default;
};

// One generation's life and its slots' (the diagrams above). The
// supervisor's Generation derives from it and stores the slots (its
// children derive from SlotLife); a test stores plain SlotLife values.
class GenerationMachine {
 public:
  GenerationMachine(int64_t now_ms, int64_t drain_timeout_ms)
      : began_ms(now_ms), drain_timeout_ms_(drain_timeout_ms) {}
  virtual ~GenerationMachine() = default;
  GenerationMachine(const GenerationMachine&) = delete;
  GenerationMachine& operator=(const GenerationMachine&) = delete;

  virtual uint32_t slot_count() const = 0;
  virtual SlotLife& slot_life(uint32_t slot) = 0;
  virtual const SlotLife& slot_life(uint32_t slot) const = 0;

  // Read freely; written only by the methods below.
  GenerationPhase phase = GenerationPhase::starting;
  int64_t began_ms = 0;
  int64_t forked_ms = 0;       // starting: the first fork (the ready allowances run from it)
  int64_t deadline_ms = 0;     // draining: drained by then
  bool services_told = false;  // draining: the service processes were told to stop
  bool hurried = false;        // draining: past the deadline, told to stop now
  bool killed = false;         // draining: past deadline + margin, killed
  bool stopping = false;       // the server stops: no commit, no replacement

  // ---- events ----
  // The first fork is about to happen: each slot's ready_allowance_ms
  // runs from now (a starting generation is rolled back when one passes).
  void forking(int64_t now);
  void process_started(uint32_t slot, int64_t now);
  ReadyDecision process_ready(uint32_t slot, int64_t now);
  // `slot`'s process was reaped. It no longer holds any peer's release.
  DeathDecision process_died(uint32_t slot, int64_t now, bool server_stopping);
  // peer_gone reached these live `peers` of the dead `slot`: the
  // replacement waits until each released it, or is killed as hung.
  void awaiting_release(uint32_t slot, const std::set<uint32_t>& peers, int64_t now);
  void peer_released(uint32_t dead, uint32_t peer);
  // A replacement could not be started (fork or socketpair failed): the
  // slot is still without a process, and this counts as one more failure
  // in its streak, as a death would: the next try waits one more back-off
  // step, and enough in a row are a crash loop (for the log, ctl and the
  // systemd watchdog): a slot that cannot be filled is not healthy either.
  // The decision has delay_ms, streak and crash_loop set.
  DeathDecision spawn_failed(uint32_t slot, int64_t now);
  // Tears a starting generation down: no replacements. False if it already was.
  bool roll_back();
  // The next generation committed: this one drains until drain_timeout_ms.
  void drain(int64_t now);
  // The server stops: no replacement starts any more.
  void stop();
  // What is due at `now`, in the order to carry it out.
  std::vector<Action> tick(int64_t now);

  // ---- queries ----
  bool never_started(uint32_t slot) const { return slot_life(slot).started_ms == 0; }
  // The live peers of a dead slot's rings: the running slots of the other role.
  std::vector<uint32_t> settle_peers(uint32_t dead) const;
  std::vector<uint32_t> not_ready() const;  // slots not ready (for the log)
  // The longest ready_allowance_ms of the slots (kReadyTimeoutMs without
  // slots): a starting generation is ready or rolled back this long after
  // its first fork at the latest.
  int64_t longest_ready_allowance_ms() const;
  // Starting: the slots not ready whose ready_allowance_ms has run out at
  // `now` (what a roll back for lateness names).
  std::vector<uint32_t> late(int64_t now) const;
  // Starting: when the first slot not yet ready runs out of its
  // ready_allowance_ms (counted from the first fork); the largest int64
  // before the first fork or once every slot is ready.
  int64_t ready_deadline_ms() const;
  // A process's report about the process in slot `reported` (overdue: it
  // holds a request past kill_after_ms; otherwise it wrote a ring the
  // reporter cannot read) is acted on, by killing it, only when that is a
  // running peer of the reporter (the other role), and a service process
  // for overdue. The supervisor also checks the report names the slot's
  // current incarnation.
  bool kill_on_report(uint32_t reporter, uint32_t reported, bool overdue) const;
  // Draining or discarded, and no process left: the segment can go.
  bool ended() const;
  // The earliest time tick() has something to do (INT64_MAX: nothing timed).
  int64_t next_timer_ms(int64_t now) const;

 private:
  bool any_running(shm::ProcessRole role) const;
  bool unready_replacement(const SlotLife& s) const;
  void tick_slot(uint32_t slot, int64_t now, std::vector<Action>& out);
  void tick_draining(int64_t now, std::vector<Action>& out);
  void for_running(Action::Kind kind, shm::ProcessRole role, std::vector<Action>& out) const;
  void cancel_respawns();
  static void schedule_replacement(SlotLife& s, int64_t now, DeathDecision& d);

  int64_t drain_timeout_ms_;
};

class ReloadMachine {
 public:
  // A reload was requested. True: start one now. False: one is running;
  // it is remembered (any number of requests count as one).
  bool request();
  // The running reload committed or failed. True: start the coalesced one.
  bool finished();
  bool running() const { return running_; }
  bool pending() const { return pending_; }

 private:
  bool running_ = false;
  bool pending_ = false;
};

}  // namespace ringhttpd::master
