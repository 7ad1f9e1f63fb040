// The life of a generation without processes or sockets
// (GenerationMachine, master/lifecycle.h): when it commits, when it rolls
// back, when a dead process's replacement starts, and the drain's deadlines.
// Each test drives the events the supervisor would feed it (a fork, a ready
// message, a reaped child, peer_released, the clock) and checks the
// decisions it returns.
#include <gtest/gtest.h>

#include <limits>

#include "master/lifecycle.h"
#include "master/systemd.h"

namespace ringhttpd::master {
namespace {

using shm::ProcessRole;

// A generation of `network` network slots followed by `service` service slots.
class TestGeneration : public GenerationMachine {
 public:
  TestGeneration(uint32_t network, uint32_t service, int64_t now = 1000,
                 int64_t drain_timeout_ms = 5000)
      : GenerationMachine(now, drain_timeout_ms), slots(network + service) {
    for (uint32_t i = 0; i < slots.size(); ++i) {
      slots[i].role = i < network ? ProcessRole::network : ProcessRole::service;
    }
  }
  uint32_t slot_count() const override { return static_cast<uint32_t>(slots.size()); }
  SlotLife& slot_life(uint32_t i) override { return slots[i]; }
  const SlotLife& slot_life(uint32_t i) const override { return slots[i]; }

  // Forks every slot at `now`, as the supervisor's spawn_all does.
  void start_all(int64_t now) {
    forking(now);
    for (uint32_t i = 0; i < slot_count(); ++i) process_started(i, now);
  }
  // Every slot reports ready; the decision for the last one.
  ReadyDecision all_ready(int64_t now) {
    ReadyDecision last;
    for (uint32_t i = 0; i < slot_count(); ++i) last = process_ready(i, now);
    return last;
  }
  // A serving generation, started and ready at `now`.
  void serve(int64_t now) {
    start_all(now);
    all_ready(now);
  }

  std::vector<SlotLife> slots;
};

std::vector<Action> of_kind(const std::vector<Action>& actions, Action::Kind kind) {
  std::vector<Action> out;
  for (const Action& a : actions) {
    if (a.kind == kind) out.push_back(a);
  }
  return out;
}

// ---- commit and rollback ----

TEST(GenerationMachine, CommitsWhenItsLastProcessIsReady) {
  TestGeneration g(2, 2);
  g.start_all(1000);
  EXPECT_EQ(g.phase, GenerationPhase::starting);
  for (uint32_t i = 0; i < 3; ++i) {
    const ReadyDecision d = g.process_ready(i, 1010);
    EXPECT_FALSE(d.commit) << i;
    EXPECT_EQ(d.replaced_after_ms, -1) << i;
  }
  EXPECT_EQ(g.phase, GenerationPhase::starting);
  EXPECT_EQ(g.not_ready(), std::vector<uint32_t>{3});
  EXPECT_TRUE(g.process_ready(3, 1020).commit);
  EXPECT_EQ(g.phase, GenerationPhase::serving);
  // Only once: a later ready message (a replacement) commits nothing.
  EXPECT_FALSE(g.process_ready(3, 1030).commit);
}

TEST(GenerationMachine, UnforkedSlotsAreStartedByTheTimerUntilAllAre) {
  TestGeneration g(1, 2);
  g.forking(1000);
  g.process_started(0, 1000);  // a signal paused the forking after one
  EXPECT_TRUE(g.never_started(1));
  EXPECT_EQ(g.tick(1001), (std::vector<Action>{{Action::start_rest}}));
  g.process_started(1, 1002);
  g.process_started(2, 1002);
  EXPECT_TRUE(g.tick(1003).empty());
}

TEST(GenerationMachine, ADeathWhileStartingRollsBack) {
  TestGeneration g(2, 2);
  g.start_all(1000);
  g.process_ready(0, 1010);
  const DeathDecision d = g.process_died(2, 1020, /*server_stopping=*/false);
  EXPECT_EQ(d.action, DeathAction::fail_reload);
  EXPECT_FALSE(d.settle);
  EXPECT_FALSE(g.slots[2].respawn);  // never replaced: the generation goes
  EXPECT_TRUE(g.roll_back());
  EXPECT_EQ(g.phase, GenerationPhase::discarding);
  EXPECT_FALSE(g.roll_back());  // once only
  // A ready message from a survivor does not commit a discarded generation.
  EXPECT_FALSE(g.process_ready(1, 1030).commit);
  EXPECT_FALSE(g.process_ready(3, 1030).commit);
  EXPECT_EQ(g.phase, GenerationPhase::discarding);
  // The others are killed; once reaped the generation has ended.
  EXPECT_FALSE(g.ended());
  for (uint32_t i : {0u, 1u, 3u}) {
    EXPECT_EQ(g.process_died(i, 1040, false).action, DeathAction::nothing);
    EXPECT_FALSE(g.slots[i].respawn);
  }
  EXPECT_TRUE(g.ended());
}

TEST(GenerationMachine, NotReadyByTheDeadlineRollsBack) {
  TestGeneration g(1, 1);
  g.start_all(1000);
  g.process_ready(0, 1010);
  EXPECT_EQ(g.next_timer_ms(1010), 1000 + kReadyTimeoutMs);
  EXPECT_TRUE(g.tick(1000 + kReadyTimeoutMs - 1).empty());
  EXPECT_EQ(g.tick(1000 + kReadyTimeoutMs), (std::vector<Action>{{Action::roll_back_late}}));
  EXPECT_EQ(g.not_ready(), std::vector<uint32_t>{1});
  EXPECT_TRUE(g.roll_back());
  EXPECT_TRUE(g.tick(1000 + kReadyTimeoutMs + 1).empty());
}

TEST(GenerationMachine, TheReadyDeadlineRunsFromTheFirstFork) {
  TestGeneration g(1, 0, /*now=*/1000);
  g.forking(3000);
  g.forking(5000);  // later forks (after a pause for a signal) keep it
  EXPECT_EQ(g.ready_deadline_ms(), 3000 + kReadyTimeoutMs);
}

TEST(GenerationMachine, AStoppingServerNeitherRollsBackNorReplaces) {
  TestGeneration starting(1, 1);
  starting.start_all(1000);
  EXPECT_EQ(starting.process_died(0, 1010, true).action, DeathAction::nothing);
  TestGeneration serving(1, 1);
  serving.serve(1000);
  serving.stop();
  const DeathDecision net = serving.process_died(0, 1010, true);
  EXPECT_EQ(net.action, DeathAction::settle_only);
  EXPECT_FALSE(net.settle);  // its peers are stopping too
  const DeathDecision svc = serving.process_died(1, 1010, true);
  EXPECT_EQ(svc.action, DeathAction::settle_only);
  EXPECT_TRUE(svc.settle);
  EXPECT_FALSE(serving.slots[1].respawn);
}

// A reload's last ready message may arrive after SIGTERM: the stop wins, so
// no READY=1 after STOPPING=1 and no drain toward a stopping generation.
TEST(GenerationMachine, AStoppingServerCommitsNothing) {
  TestGeneration g(1, 1);
  g.start_all(1000);
  EXPECT_FALSE(g.process_ready(0, 1010).commit);
  g.stop();
  EXPECT_FALSE(g.process_ready(1, 1020).commit);
  EXPECT_EQ(g.phase, GenerationPhase::starting);
}

// ---- replacement in a serving generation ----

TEST(GenerationMachine, AServingDeathIsReplacedAtOnceTheFirstTimeThenAfterBackOff) {
  TestGeneration g(1, 2);
  g.serve(1000);
  DeathDecision d = g.process_died(1, 2000, false);
  EXPECT_EQ(d.action, DeathAction::replace);
  EXPECT_TRUE(d.settle);
  EXPECT_EQ(d.delay_ms, 0);
  EXPECT_EQ(d.streak, 1u);
  EXPECT_FALSE(d.crash_loop);
  EXPECT_EQ(g.settle_peers(1), std::vector<uint32_t>{0});  // the network process
  g.awaiting_release(1, {0}, 2000);
  EXPECT_TRUE(g.tick(2000).empty());  // the peer has not released its rings yet
  g.peer_released(1, 0);
  EXPECT_EQ(g.next_timer_ms(2001), 2000);
  EXPECT_EQ(g.tick(2001), (std::vector<Action>{{Action::spawn, 1}}));
  EXPECT_TRUE(g.tick(2002).empty());  // once
  g.process_started(1, 2002);
  const ReadyDecision r = g.process_ready(1, 2030);
  EXPECT_FALSE(r.commit);
  EXPECT_EQ(r.replaced_after_ms, 30);

  // It dies again soon: 100 ms of back-off, counted from the death.
  d = g.process_died(1, 3000, false);
  EXPECT_EQ(d.delay_ms, RestartPolicy::kFirstBackoffMs);
  EXPECT_EQ(d.streak, 2u);
  g.awaiting_release(1, {0}, 3000);
  g.peer_released(1, 0);
  EXPECT_EQ(g.next_timer_ms(3000), 3100);
  EXPECT_TRUE(g.tick(3099).empty());
  EXPECT_EQ(g.tick(3100), (std::vector<Action>{{Action::spawn, 1}}));
}

// A replacement that never reports ready (a module whose init hangs) is
// killed once at kReadyTimeoutMs; its death is a death like any other: the
// next one starts after a back-off step. Before, the slot stayed starting
// for good and its service answered 503.
TEST(GenerationMachine, AReplacementNotReadyInTimeIsKilledOnceThenReplacedAgain) {
  TestGeneration g(1, 1);
  g.serve(1000);
  g.process_died(1, 2000, false);
  g.awaiting_release(1, {0}, 2000);
  g.peer_released(1, 0);
  EXPECT_EQ(g.tick(2000), (std::vector<Action>{{Action::spawn, 1}}));
  g.process_started(1, 2000);
  EXPECT_EQ(g.next_timer_ms(2000), 2000 + kReadyTimeoutMs);
  EXPECT_TRUE(g.tick(2000 + kReadyTimeoutMs - 1).empty());
  EXPECT_EQ(g.tick(2000 + kReadyTimeoutMs), (std::vector<Action>{{Action::kill_unready, 1}}));
  EXPECT_TRUE(g.tick(2000 + kReadyTimeoutMs + 1).empty());  // once
  EXPECT_EQ(g.next_timer_ms(2000 + kReadyTimeoutMs + 1), std::numeric_limits<int64_t>::max());
  const DeathDecision d = g.process_died(1, 2000 + kReadyTimeoutMs + 5, false);
  EXPECT_EQ(d.action, DeathAction::replace);
  EXPECT_EQ(d.streak, 2u);
  EXPECT_EQ(d.delay_ms, RestartPolicy::kFirstBackoffMs);
  // The next replacement has its own ten seconds, and one that is ready in
  // time is never killed.
  g.process_started(1, 20000);
  g.process_ready(1, 20000 + kReadyTimeoutMs - 1);
  EXPECT_TRUE(g.tick(20000 + 2 * kReadyTimeoutMs).empty());
}

// services[i].start_timeout_ms: in a starting generation each slot has its
// own time from the first fork (a module whose init loads for 30 s is not
// rolled back at 10 s; one given 2 s is at 2 s), and so has a replacement.
TEST(GenerationMachine, EachSlotIsGivenItsOwnTimeToBeReady) {
  TestGeneration slow(1, 1);
  slow.slots[1].ready_allowance_ms = 30000;
  EXPECT_EQ(slow.ready_deadline_ms(), std::numeric_limits<int64_t>::max());  // not forked yet
  slow.start_all(1000);
  EXPECT_EQ(slow.ready_deadline_ms(), 1000 + kReadyTimeoutMs);  // the network process's
  slow.process_ready(0, 1010);
  EXPECT_EQ(slow.ready_deadline_ms(), 31000);
  EXPECT_EQ(slow.next_timer_ms(1010), 31000);
  EXPECT_TRUE(slow.tick(1000 + kReadyTimeoutMs).empty());
  EXPECT_TRUE(slow.tick(30999).empty());
  EXPECT_EQ(slow.tick(31000), (std::vector<Action>{{Action::roll_back_late}}));
  EXPECT_EQ(slow.late(31000), std::vector<uint32_t>{1});

  TestGeneration quick(1, 1);
  quick.slots[1].ready_allowance_ms = 2000;
  quick.start_all(1000);
  EXPECT_EQ(quick.next_timer_ms(1000), 3000);  // before the network process's 10 s
  EXPECT_EQ(quick.tick(3000), (std::vector<Action>{{Action::roll_back_late}}));
  // Only the slot whose time ran out is named, not the network process
  // that still has until 11000.
  EXPECT_EQ(quick.not_ready(), (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(quick.late(3000), std::vector<uint32_t>{1});

  TestGeneration serving(1, 2);
  serving.slots[1].ready_allowance_ms = 30000;
  serving.slots[2].ready_allowance_ms = 2000;
  serving.serve(1000);
  EXPECT_EQ(serving.ready_deadline_ms(), std::numeric_limits<int64_t>::max());  // all ready
  for (uint32_t slot : {1u, 2u}) {
    serving.process_died(slot, 2000, false);
    serving.awaiting_release(slot, {0}, 2000);
    serving.peer_released(slot, 0);
  }
  EXPECT_EQ(serving.tick(2000), (std::vector<Action>{{Action::spawn, 1}, {Action::spawn, 2}}));
  serving.process_started(1, 2000);
  serving.process_started(2, 2000);
  EXPECT_EQ(serving.next_timer_ms(2000), 4000);
  EXPECT_EQ(serving.tick(4000), (std::vector<Action>{{Action::kill_unready, 2}}));
  EXPECT_EQ(serving.next_timer_ms(4001), 32000);
  EXPECT_TRUE(serving.tick(2000 + kReadyTimeoutMs).empty());
  EXPECT_EQ(serving.tick(32000), (std::vector<Action>{{Action::kill_unready, 1}}));
}

TEST(GenerationMachine, TheBackOffAloneDoesNotStartAReplacementBeforeThePeersRelease) {
  TestGeneration g(2, 1);
  g.serve(1000);
  g.process_died(2, 2000, false);
  g.awaiting_release(2, {0, 1}, 2000);
  g.peer_released(2, 0);
  EXPECT_TRUE(g.tick(2500).empty());
  // A peer that dies releases what it held.
  g.process_died(1, 2600, false);
  EXPECT_TRUE(g.slots[2].awaiting.empty());
  const std::vector<Action> due = g.tick(2601);
  EXPECT_EQ(of_kind(due, Action::spawn).size(), 2u);
}

TEST(GenerationMachine, CrashLoopFromTheSameStreakAsTheWatchdog) {
  TestGeneration g(1, 1);
  g.serve(1000);
  int64_t now = 2000;
  for (uint32_t death = 1; death <= kCrashLoopStreak + 1; ++death, now += 20000) {
    const DeathDecision d = g.process_died(1, now, false);
    EXPECT_EQ(d.streak, death);
    EXPECT_EQ(d.crash_loop, death >= kCrashLoopStreak) << death;
    // Entered once; kept while the loop lasts.
    const int64_t entered = 2000 + 20000 * (int64_t{kCrashLoopStreak} - 1);
    EXPECT_EQ(g.slots[1].crash_loop_since_ms, death >= kCrashLoopStreak ? entered : 0);
    g.process_started(1, now + 1);
  }
  // A process that ran healthy ends the streak, and the crash loop with it.
  now += RestartPolicy::kHealthyMs;
  const DeathDecision d = g.process_died(1, now, false);
  EXPECT_EQ(d.streak, 1u);
  EXPECT_EQ(d.delay_ms, 0);
  EXPECT_EQ(g.slots[1].crash_loop_since_ms, 0);
}

TEST(GenerationMachine, AFailedForkIsRetriedAfterTheNextBackOffStep) {
  TestGeneration g(1, 1);
  g.serve(1000);
  g.process_died(0, 2000, false);
  g.awaiting_release(0, {}, 2000);
  ASSERT_EQ(g.tick(2000), (std::vector<Action>{{Action::spawn, 0}}));
  const DeathDecision d = g.spawn_failed(0, 2000);
  EXPECT_EQ(d.delay_ms, 100);
  EXPECT_EQ(d.streak, 2u);
  EXPECT_FALSE(d.crash_loop);
  EXPECT_TRUE(g.slots[0].respawn);
  EXPECT_EQ(g.slots[0].restart_at_ms, 2100);
  EXPECT_TRUE(g.tick(2099).empty());
  EXPECT_EQ(g.tick(2100), (std::vector<Action>{{Action::spawn, 0}}));
}

// A slot whose replacement cannot even be forked (RLIMIT_NPROC, no memory)
// stays empty: failed starts count in the streak as deaths do, so enough
// in a row are a crash loop, which the watchdog rule sees; a process that
// then runs healthy ends it at its next death.
TEST(GenerationMachine, FailedStartsInARowAreACrashLoop) {
  TestGeneration g(1, 1);
  g.serve(1000);
  g.process_died(0, 2000, false);
  g.awaiting_release(0, {}, 2000);
  EXPECT_EQ(g.slots[0].crash_loop_since_ms, 0);
  g.spawn_failed(0, 2000);
  const DeathDecision d = g.spawn_failed(0, 2100);
  EXPECT_TRUE(d.crash_loop);
  EXPECT_EQ(d.streak, 3u);
  EXPECT_EQ(d.delay_ms, 200);
  EXPECT_EQ(g.slots[0].crash_loop_since_ms, 2100);
  EXPECT_EQ(g.spawn_failed(0, 2300).delay_ms, 400);
  EXPECT_EQ(g.slots[0].crash_loop_since_ms, 2100) << "since the first";
  EXPECT_EQ(g.slots[0].restart.restarts(), 1u) << "one process lost, not three";
  g.process_started(0, 2700);
  g.process_ready(0, 2710);
  const DeathDecision later = g.process_died(0, 2700 + 60000, false);
  EXPECT_EQ(later.streak, 1u);
  EXPECT_EQ(g.slots[0].crash_loop_since_ms, 0);
}

TEST(GenerationMachine, APeerThatDoesNotReleaseInTimeIsKilledOnce) {
  TestGeneration g(2, 2);
  g.serve(1000);
  g.slots[3].release_allowance_ms = 3000;  // a service's kill_after_ms
  g.process_died(0, 2000, false);
  g.awaiting_release(0, {2, 3}, 2000);
  EXPECT_EQ(g.next_timer_ms(2000), 5000);  // the slowest peer's allowance
  g.peer_released(0, 2);
  EXPECT_TRUE(g.tick(4999).empty());
  EXPECT_EQ(g.tick(5000), (std::vector<Action>{{Action::kill_hung, 3, 0}}));
  EXPECT_TRUE(g.tick(5001).empty());
  // Reaped: no process uses the rings any more, and both slots are replaced.
  g.process_died(3, 5010, false);
  g.awaiting_release(3, {1}, 5010);
  EXPECT_TRUE(g.slots[0].awaiting.empty());
  EXPECT_EQ(g.tick(5011), (std::vector<Action>{{Action::spawn, 0}}));
}

TEST(GenerationMachine, NetworkPeersGetTheBaseReleaseTimeout) {
  TestGeneration g(1, 1);
  g.serve(1000);
  g.process_died(1, 2000, false);
  g.awaiting_release(1, {0}, 2000);
  EXPECT_EQ(g.slots[1].release_deadline_ms, 2000 + kReleaseTimeoutMs);
}

TEST(GenerationMachine, OnlyALivePeerNamedInAReportIsKilled) {
  TestGeneration g(1, 2);  // slot 0 network, 1 and 2 service
  g.serve(1000);
  EXPECT_TRUE(g.kill_on_report(0, 1, /*overdue=*/true));
  EXPECT_TRUE(g.kill_on_report(0, 2, /*overdue=*/false));  // a corrupt ring
  EXPECT_TRUE(g.kill_on_report(1, 0, /*overdue=*/false));
  EXPECT_FALSE(g.kill_on_report(1, 0, /*overdue=*/true));   // only services are overdue
  EXPECT_FALSE(g.kill_on_report(1, 2, /*overdue=*/false));  // not a peer: same role
  EXPECT_FALSE(g.kill_on_report(0, 3, /*overdue=*/true));   // no such slot
  g.process_died(1, 1100, false);
  EXPECT_FALSE(g.kill_on_report(0, 1, /*overdue=*/true));  // already gone
}

// ---- drain ----

TEST(GenerationMachine, ADeathInADrainingGenerationIsNotReplaced) {
  TestGeneration g(1, 1);
  g.serve(1000);
  g.process_died(1, 1500, false);  // a replacement was due ...
  g.drain(1600);                   // ... when the next generation committed
  EXPECT_EQ(g.phase, GenerationPhase::draining);
  EXPECT_FALSE(g.slots[1].respawn);
  g.process_started(1, 1600);  // (a process that was forked before the commit)
  const DeathDecision d = g.process_died(1, 2000, false);
  EXPECT_EQ(d.action, DeathAction::settle_only);
  EXPECT_TRUE(d.settle);
  EXPECT_FALSE(g.slots[1].respawn);
  EXPECT_TRUE(of_kind(g.tick(2001), Action::spawn).empty());
}

TEST(GenerationMachine, DrainStopsServicesOnceTheNetworkProcessesAreGone) {
  TestGeneration g(2, 2);
  g.serve(1000);
  g.drain(2000);
  EXPECT_TRUE(g.tick(2001).empty());
  g.process_died(0, 2010, false);
  EXPECT_TRUE(g.tick(2011).empty());
  g.process_died(1, 2020, false);
  EXPECT_EQ(g.tick(2021),
            (std::vector<Action>{{Action::stop_service, 2}, {Action::stop_service, 3}}));
  EXPECT_TRUE(g.tick(2022).empty());
  EXPECT_FALSE(g.ended());
  g.process_died(2, 2030, false);
  g.process_died(3, 2030, false);
  EXPECT_TRUE(g.ended());
}

TEST(GenerationMachine, DrainHurriesAtTheTimeoutThenKills) {
  TestGeneration g(1, 1, /*now=*/1000, /*drain_timeout_ms=*/5000);
  g.serve(1000);
  g.drain(2000);
  EXPECT_EQ(g.next_timer_ms(2000), 2100);  // network processes are watched closely
  EXPECT_EQ(g.next_timer_ms(6950), 7000);
  EXPECT_TRUE(g.tick(6999).empty());
  EXPECT_EQ(g.tick(7000), (std::vector<Action>{{Action::hurry, 0}, {Action::hurry, 1}}));
  EXPECT_TRUE(g.tick(7001).empty());
  EXPECT_EQ(g.next_timer_ms(8990), 7000 + kStopMarginMs);
  g.process_died(1, 8000, false);  // the service process obeyed
  EXPECT_TRUE(g.tick(7000 + kStopMarginMs - 1).empty());
  EXPECT_EQ(g.tick(7000 + kStopMarginMs), (std::vector<Action>{{Action::kill_late, 0}}));
  EXPECT_TRUE(g.tick(7000 + kStopMarginMs + 1).empty());
  g.process_died(0, 9010, false);
  EXPECT_TRUE(g.ended());
}

// Once killed, the drain has no timer left (its deadline is in the past):
// the supervisor looks at the reaping every 100 ms, it does not spin.
TEST(GenerationMachine, AfterTheKillTheDrainTimerDoesNotSpin) {
  TestGeneration g(1, 0, 1000, 100);
  g.serve(1000);
  g.drain(1000);
  ASSERT_EQ(g.tick(1000 + 100 + kStopMarginMs).size(), 2u);  // hurry, kill_late
  ASSERT_TRUE(g.killed);
  const int64_t later = 1000 + 100 + kStopMarginMs + 500;  // the killed process not reaped yet
  EXPECT_EQ(g.next_timer_ms(later), later + 100);
}

// A slot marked for a replacement while its process still runs (a fork
// that failed after the process was counted) is not a timer: tick_slot
// spawns only for a slot without a process.
TEST(GenerationMachine, ARespawnMarkOnARunningSlotIsNoTimer) {
  TestGeneration g(1, 1);
  g.serve(1000);
  g.spawn_failed(1, 1000);
  EXPECT_TRUE(g.slots[1].respawn);
  EXPECT_EQ(g.next_timer_ms(5000), std::numeric_limits<int64_t>::max());
  EXPECT_TRUE(g.tick(5000).empty());
}

TEST(GenerationMachine, ALateTickHurriesAndKillsInOrder) {
  TestGeneration g(1, 0, 1000, 100);
  g.serve(1000);
  g.drain(1000);
  EXPECT_EQ(g.tick(1000 + 100 + kStopMarginMs),
            (std::vector<Action>{{Action::hurry, 0}, {Action::kill_late, 0}}));
}

TEST(GenerationMachine, AServingGenerationHasNoDeadline) {
  TestGeneration g(1, 1);
  g.serve(1000);
  EXPECT_EQ(g.next_timer_ms(1000), std::numeric_limits<int64_t>::max());
  EXPECT_TRUE(g.tick(1000 + 100 * kReadyTimeoutMs).empty());
  EXPECT_FALSE(g.ended());
}

// ---- reloads ----

TEST(GenerationMachine, AReloadRequestedDuringAReloadIsCoalesced) {
  ReloadMachine reload;
  TestGeneration old_gen(1, 1);
  old_gen.serve(1000);
  ASSERT_TRUE(reload.request());  // SIGHUP: generation 2 starts
  TestGeneration next(1, 1, 2000);
  next.start_all(2000);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(reload.request());  // a storm meanwhile
  ASSERT_TRUE(next.all_ready(2050).commit);
  old_gen.drain(2050);
  EXPECT_TRUE(reload.finished());   // exactly one more reload covers the storm
  EXPECT_FALSE(reload.finished());  // and then none
  EXPECT_FALSE(reload.running());
}

}  // namespace
}  // namespace ringhttpd::master
