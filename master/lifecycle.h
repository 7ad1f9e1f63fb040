// The supervisor's decisions, kept apart from the code that forks, waits
// and passes descriptors (Envoy's hot-restart split), so each is tested
// without processes or sockets:
//
// - RestartPolicy: when to start a replacement for a process that died
//   (at once the first time, then 100 ms doubling to 10 s; the streak is
//   forgotten once a process has run 60 s).
// - decide_death: what a death means, given the generation the process
//   belonged to (replace it, fail the reload it was part of, or only settle
//   what it owed).
// - ReloadMachine: one reload at a time; requests that arrive meanwhile are
//   coalesced into one more reload after it.
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
//   starting --all ready--> serving --next generation ready--> draining --all exited--> (removed)
//      |                       |                                   ^
//      +--a child died, or not ready in time: discarding ----------+ (killed, reaped, removed)
//                              +--stop signal: stopped with the others
#pragma once

#include <cstdint>

namespace ringhttpd::master {

class RestartPolicy {
 public:
  static constexpr int64_t kFirstBackoffMs = 100;
  static constexpr int64_t kMaxBackoffMs = 10000;
  static constexpr int64_t kHealthyMs = 60000;

  // A process of this slot that started at `started_ms` died at `now_ms`:
  // the delay before its replacement starts.
  int64_t on_death(int64_t started_ms, int64_t now_ms);
  // Deaths in the current streak (0 when the last process ran healthy).
  uint32_t streak() const { return streak_; }
  uint64_t restarts() const { return restarts_; }

 private:
  uint32_t streak_ = 0;
  uint64_t restarts_ = 0;
};

enum class GenerationPhase { starting, serving, draining, discarding };

enum class DeathAction {
  replace,      // serving generation: settle with the peers, then start a replacement
  fail_reload,  // a starting generation lost a process: the reload fails, roll back
  settle_only,  // draining generation or stopping server: peers settle, no replacement
  nothing,      // a discarded generation: it is being torn down anyway
};

DeathAction decide_death(GenerationPhase phase, bool server_stopping);

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
