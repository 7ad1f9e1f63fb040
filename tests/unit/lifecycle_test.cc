// The supervisor's decisions without processes: back-off, what a death
// means, reload coalescing (master/lifecycle.h).
#include "master/lifecycle.h"

#include <gtest/gtest.h>

namespace ringhttpd::master {
namespace {

TEST(RestartPolicy, FirstDeathIsReplacedAtOnceThenBacksOffDoublingToTheCap) {
  RestartPolicy p;
  int64_t now = 1000;
  EXPECT_EQ(p.on_death(now - 10, now), 0);
  const int64_t expected[] = {100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000};
  for (int64_t want : expected) EXPECT_EQ(p.on_death(now - 10, now), want);
  EXPECT_EQ(p.restarts(), 11u);
}

TEST(RestartPolicy, SixtySecondsHealthyForgetsTheStreak) {
  RestartPolicy p;
  EXPECT_EQ(p.on_death(0, 5), 0);
  EXPECT_EQ(p.on_death(5, 10), 100);
  EXPECT_EQ(p.on_death(10, 20), 200);
  EXPECT_EQ(p.on_death(20, 20 + RestartPolicy::kHealthyMs - 1), 400);  // not quite healthy
  const int64_t start = 100000;
  EXPECT_EQ(p.on_death(start, start + RestartPolicy::kHealthyMs), 0);
  EXPECT_EQ(p.streak(), 1u);
}

TEST(RestartPolicy, AVeryLongStreakStaysAtTheCap) {
  RestartPolicy p;
  for (int i = 0; i < 200; ++i) p.on_death(0, 1);
  EXPECT_EQ(p.on_death(0, 1), RestartPolicy::kMaxBackoffMs);
}

TEST(DecideDeath, ByGenerationPhase) {
  EXPECT_EQ(decide_death(GenerationPhase::serving, false), DeathAction::replace);
  EXPECT_EQ(decide_death(GenerationPhase::serving, true), DeathAction::settle_only);
  EXPECT_EQ(decide_death(GenerationPhase::starting, false), DeathAction::fail_reload);
  EXPECT_EQ(decide_death(GenerationPhase::starting, true), DeathAction::nothing);
  EXPECT_EQ(decide_death(GenerationPhase::draining, false), DeathAction::settle_only);
  EXPECT_EQ(decide_death(GenerationPhase::discarding, false), DeathAction::nothing);
}

TEST(ReloadMachine, RequestsDuringAReloadCoalesceIntoOne) {
  ReloadMachine m;
  EXPECT_TRUE(m.request());
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(m.request());
  EXPECT_TRUE(m.pending());
  EXPECT_TRUE(m.finished());  // exactly one more
  EXPECT_TRUE(m.running());
  EXPECT_FALSE(m.finished());
  EXPECT_FALSE(m.running());
  EXPECT_TRUE(m.request());
}

}  // namespace
}  // namespace ringhttpd::master
