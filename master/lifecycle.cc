// The supervisor's pure decisions (see lifecycle.h): no syscalls, no clock;
// every time comes in as an argument.
#include "master/lifecycle.h"

#include <algorithm>
#include <limits>

#include "master/systemd.h"

namespace ringhttpd::master {

int64_t RestartPolicy::on_death(int64_t started_ms, int64_t now_ms) {
  if (now_ms - started_ms >= kHealthyMs) streak_ = 0;
  ++restarts_;
  return next_delay();
}

int64_t RestartPolicy::on_failed_start() { return next_delay(); }

int64_t RestartPolicy::next_delay() {
  const uint32_t step = streak_++;
  if (step == 0) return 0;
  // 100, 200, 400, ... capped; the shift is bounded before it can overflow.
  const uint32_t shift = std::min<uint32_t>(step - 1, 20);
  return std::min(kFirstBackoffMs << shift, kMaxBackoffMs);
}

bool loop_stuck(int64_t now_ms, uint64_t heartbeat_ms, uint32_t watchdog_ms) {
  if (watchdog_ms == 0 || now_ms < 0) return false;
  const auto now = static_cast<uint64_t>(now_ms);
  return now > heartbeat_ms && now - heartbeat_ms > watchdog_ms;
}

DeathAction decide_death(GenerationPhase phase, bool server_stopping) {
  switch (phase) {
    case GenerationPhase::starting:
      return server_stopping ? DeathAction::nothing : DeathAction::fail_reload;
    case GenerationPhase::serving:
      return server_stopping ? DeathAction::settle_only : DeathAction::replace;
    case GenerationPhase::draining:
      return DeathAction::settle_only;
    case GenerationPhase::discarding:
      return DeathAction::nothing;
  }
  return DeathAction::nothing;
}

// ---- GenerationMachine: events ------------------------------------------

void GenerationMachine::forking(int64_t now) {
  if (forked_ms == 0) forked_ms = now;
}

void GenerationMachine::process_started(uint32_t slot, int64_t now) {
  SlotLife& s = slot_life(slot);
  s.state = SlotState::starting;
  s.started_ms = now;
  s.unready_killed = false;
}

// The commit: a starting generation serves once its last process is ready.
ReadyDecision GenerationMachine::process_ready(uint32_t slot, int64_t now) {
  SlotLife& s = slot_life(slot);
  ReadyDecision d;
  s.state = SlotState::ready;
  if (s.died_ms != 0) {
    d.replaced_after_ms = now - s.died_ms;
    s.died_ms = 0;
  }
  // A stopping server commits nothing: a generation whose last process
  // reports ready during the stop is torn down with the rest.
  if (phase != GenerationPhase::starting || stopping) return d;
  for (uint32_t i = 0; i < slot_count(); ++i) {
    if (slot_life(i).state != SlotState::ready) return d;
  }
  phase = GenerationPhase::serving;
  d.commit = true;
  return d;
}

DeathDecision GenerationMachine::process_died(uint32_t slot, int64_t now, bool server_stopping) {
  SlotLife& s = slot_life(slot);
  s.state = SlotState::gone;
  s.awaiting.clear();
  for (uint32_t i = 0; i < slot_count(); ++i) slot_life(i).awaiting.erase(slot);
  DeathDecision d;
  d.action = decide_death(phase, server_stopping);
  d.settle = (d.action == DeathAction::replace || d.action == DeathAction::settle_only) &&
             !(server_stopping && s.role == shm::ProcessRole::network);
  if (d.action != DeathAction::replace) return d;
  s.died_ms = now;
  d.delay_ms = s.restart.on_death(s.started_ms, now);
  schedule_replacement(s, now, d);
  return d;
}

// After one more failure of `s` (d.delay_ms is its back-off step): the
// streak and the crash-loop mark, and the replacement's time.
void GenerationMachine::schedule_replacement(SlotLife& s, int64_t now, DeathDecision& d) {
  d.streak = s.restart.streak();
  d.crash_loop = d.streak >= kCrashLoopStreak;
  if (!d.crash_loop) {
    s.crash_loop_since_ms = 0;
  } else if (s.crash_loop_since_ms == 0) {
    s.crash_loop_since_ms = now;
  }
  s.respawn = true;
  s.restart_at_ms = now + d.delay_ms;
}

void GenerationMachine::awaiting_release(uint32_t slot, const std::set<uint32_t>& peers,
                                         int64_t now) {
  SlotLife& s = slot_life(slot);
  s.awaiting = peers;
  int64_t allowed = kReleaseTimeoutMs;
  for (uint32_t p : peers) allowed = std::max(allowed, slot_life(p).release_allowance_ms);
  s.release_deadline_ms = now + allowed;
  s.release_killed = false;
}

void GenerationMachine::peer_released(uint32_t dead, uint32_t peer) {
  if (dead < slot_count()) slot_life(dead).awaiting.erase(peer);
}

DeathDecision GenerationMachine::spawn_failed(uint32_t slot, int64_t now) {
  SlotLife& s = slot_life(slot);
  DeathDecision d;
  d.action = DeathAction::replace;
  d.delay_ms = s.restart.on_failed_start();  // no process was lost: not a restart
  schedule_replacement(s, now, d);
  return d;
}

bool GenerationMachine::roll_back() {
  if (phase == GenerationPhase::discarding) return false;
  phase = GenerationPhase::discarding;
  cancel_respawns();
  return true;
}

void GenerationMachine::drain(int64_t now) {
  phase = GenerationPhase::draining;
  deadline_ms = now + drain_timeout_ms_;
  cancel_respawns();
}

void GenerationMachine::stop() {
  stopping = true;
  cancel_respawns();
}

void GenerationMachine::cancel_respawns() {
  for (uint32_t i = 0; i < slot_count(); ++i) slot_life(i).respawn = false;
}

// ---- GenerationMachine: timers ------------------------------------------

std::vector<Action> GenerationMachine::tick(int64_t now) {
  std::vector<Action> out;
  for (uint32_t i = 0; i < slot_count(); ++i) tick_slot(i, now, out);
  if (phase == GenerationPhase::starting) {
    for (uint32_t i = 0; i < slot_count(); ++i) {
      if (never_started(i)) {
        out.push_back({Action::start_rest});
        break;
      }
    }
    if (now >= ready_deadline_ms()) out.push_back({Action::roll_back_late});
  }
  if (phase == GenerationPhase::draining) tick_draining(now, out);
  return out;
}

// A peer that did not settle in time is hung: it is killed, and the
// replacement waits until it has been reaped (then no process uses the
// rings they shared, and the supervisor empties them before the fork).
void GenerationMachine::tick_slot(uint32_t slot, int64_t now, std::vector<Action>& out) {
  SlotLife& s = slot_life(slot);
  if (!s.awaiting.empty() && now >= s.release_deadline_ms && !s.release_killed) {
    s.release_killed = true;
    for (uint32_t peer : s.awaiting) {
      if (slot_life(peer).running()) out.push_back({Action::kill_hung, peer, slot});
    }
  }
  if (s.respawn && !s.running() && s.awaiting.empty() && now >= s.restart_at_ms) {
    s.respawn = false;
    out.push_back({Action::spawn, slot});
  }
  // A replacement gets the time a new generation gets to be ready (a module
  // whose init hangs): without it, the slot would stay empty for good.
  if (unready_replacement(s) && now >= s.started_ms + s.ready_allowance_ms) {
    s.unready_killed = true;
    out.push_back({Action::kill_unready, slot});
  }
}

// A replacement still starting, not yet killed for it. (A starting
// generation's processes are timed by its ready_deadline_ms().)
bool GenerationMachine::unready_replacement(const SlotLife& s) const {
  return phase == GenerationPhase::serving && !stopping && s.state == SlotState::starting &&
         !s.unready_killed;
}

// Network processes hand their connections over and exit; then nothing can
// reach the service processes, which are told to stop. Past the deadline
// every process is told to stop now, kStopMarginMs later killed.
void GenerationMachine::tick_draining(int64_t now, std::vector<Action>& out) {
  if (!any_running(shm::ProcessRole::network) && !services_told) {
    services_told = true;
    for_running(Action::stop_service, shm::ProcessRole::service, out);
  }
  if (now >= deadline_ms && !hurried) {
    hurried = true;
    for_running(Action::hurry, shm::ProcessRole::none, out);
  }
  if (now >= deadline_ms + kStopMarginMs && !killed) {
    killed = true;
    for_running(Action::kill_late, shm::ProcessRole::none, out);
  }
}

// `role` none: every role.
void GenerationMachine::for_running(Action::Kind kind, shm::ProcessRole role,
                                    std::vector<Action>& out) const {
  for (uint32_t i = 0; i < slot_count(); ++i) {
    const SlotLife& s = slot_life(i);
    if (s.running() && (role == shm::ProcessRole::none || s.role == role)) {
      out.push_back({kind, i});
    }
  }
}

// ---- GenerationMachine: queries -----------------------------------------

bool GenerationMachine::any_running(shm::ProcessRole role) const {
  for (uint32_t i = 0; i < slot_count(); ++i) {
    const SlotLife& s = slot_life(i);
    if (s.running() && (role == shm::ProcessRole::none || s.role == role)) return true;
  }
  return false;
}

std::vector<uint32_t> GenerationMachine::settle_peers(uint32_t dead) const {
  std::vector<uint32_t> peers;
  const shm::ProcessRole role = slot_life(dead).role;
  for (uint32_t i = 0; i < slot_count(); ++i) {
    if (slot_life(i).role != role && slot_life(i).running()) peers.push_back(i);
  }
  return peers;
}

std::vector<uint32_t> GenerationMachine::not_ready() const {
  std::vector<uint32_t> late;
  for (uint32_t i = 0; i < slot_count(); ++i) {
    if (slot_life(i).state != SlotState::ready) late.push_back(i);
  }
  return late;
}

int64_t GenerationMachine::ready_deadline_ms() const {
  int64_t due = std::numeric_limits<int64_t>::max();
  if (forked_ms == 0) return due;
  for (uint32_t i = 0; i < slot_count(); ++i) {
    const SlotLife& s = slot_life(i);
    if (s.state != SlotState::ready) due = std::min(due, forked_ms + s.ready_allowance_ms);
  }
  return due;
}

int64_t GenerationMachine::longest_ready_allowance_ms() const {
  int64_t longest = 0;
  for (uint32_t i = 0; i < slot_count(); ++i) {
    longest = std::max(longest, slot_life(i).ready_allowance_ms);
  }
  return longest > 0 ? longest : kReadyTimeoutMs;
}

std::vector<uint32_t> GenerationMachine::late(int64_t now) const {
  std::vector<uint32_t> out;
  if (forked_ms == 0) return out;
  for (uint32_t i = 0; i < slot_count(); ++i) {
    const SlotLife& s = slot_life(i);
    if (s.state != SlotState::ready && now >= forked_ms + s.ready_allowance_ms) out.push_back(i);
  }
  return out;
}

bool GenerationMachine::kill_on_report(uint32_t reporter, uint32_t reported, bool overdue) const {
  if (reporter >= slot_count() || reported >= slot_count()) return false;
  const SlotLife& s = slot_life(reported);
  if (s.role == slot_life(reporter).role || !s.running()) return false;
  return !overdue || s.role == shm::ProcessRole::service;
}

bool GenerationMachine::ended() const {
  return (phase == GenerationPhase::draining || phase == GenerationPhase::discarding) &&
         !any_running(shm::ProcessRole::none);
}

int64_t GenerationMachine::next_timer_ms(int64_t now) const {
  int64_t next = std::numeric_limits<int64_t>::max();
  for (uint32_t i = 0; i < slot_count(); ++i) {
    const SlotLife& s = slot_life(i);
    if (!s.awaiting.empty()) {
      if (!s.release_killed) next = std::min(next, s.release_deadline_ms);
    } else if (s.respawn && !s.running()) {  // tick_slot spawns only then
      next = std::min(next, s.restart_at_ms);
    }
    if (unready_replacement(s)) next = std::min(next, s.started_ms + s.ready_allowance_ms);
  }
  if (phase == GenerationPhase::starting) next = std::min(next, ready_deadline_ms());
  if (phase == GenerationPhase::draining) {
    // Once killed, nothing is left to time: the reaping is looked at below.
    if (!killed) next = std::min(next, hurried ? deadline_ms + kStopMarginMs : deadline_ms);
    // Network processes exit as they finish handing over: look again soon.
    next = std::min(next, now + 100);
  }
  return next;
}

// ---- ReloadMachine --------------------------------------------------------

bool ReloadMachine::request() {
  if (running_) {
    pending_ = true;
    return false;
  }
  running_ = true;
  return true;
}

bool ReloadMachine::finished() {
  running_ = false;
  if (!pending_) return false;
  pending_ = false;
  running_ = true;
  return true;
}

}  // namespace ringhttpd::master
