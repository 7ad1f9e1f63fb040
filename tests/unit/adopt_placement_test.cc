// The relay's placement of handed-over connections, without processes
// (master/adopt_placement.h): least load first, adopts on their way counted,
// never past max_connections, and when a stopping process may be told that
// no more will come.
#include "master/adopt_placement.h"

#include <gtest/gtest.h>

#include <vector>

namespace ringhttpd::master {
namespace {

TEST(AdoptPlacement, TheLeastLoadedTargetGetsItCountingAdoptsOnTheirWay) {
  // 0: 10 open; 1: 4 open but 8 sent and only 1 taken (7 on their way).
  std::vector<AdoptTarget> t{{10, 0, 0, false}, {4, 8, 1, false}};
  EXPECT_EQ(adopt_load(t[1]), 11u);
  AdoptChoice c = place_adopt(t, 100);
  EXPECT_EQ(c.kind, AdoptChoice::send);
  EXPECT_EQ(c.target, 0u);
  t[1].adopted = 8;  // all taken: 4 open
  c = place_adopt(t, 100);
  EXPECT_EQ(c.kind, AdoptChoice::send);
  EXPECT_EQ(c.target, 1u);
}

TEST(AdoptPlacement, ATieGoesToTheFirst) {
  std::vector<AdoptTarget> t{{3, 0, 0, false}, {3, 0, 0, false}};
  EXPECT_EQ(place_adopt(t, 10).target, 0u);
}

TEST(AdoptPlacement, DealingOneByOneFillsEveryTargetEvenlyAndNeverPastTheLimit) {
  // 4000 connections over two targets of 2000 (the reported reload that
  // lost 291): each gets exactly 2000, the 4001st is closed.
  std::vector<AdoptTarget> t(2);
  for (int i = 0; i < 4000; ++i) {
    const AdoptChoice c = place_adopt(t, 2000);
    ASSERT_EQ(c.kind, AdoptChoice::send) << i;
    ++t[c.target].sent;  // in flight: not yet taken
  }
  EXPECT_EQ(t[0].sent, 2000u);
  EXPECT_EQ(t[1].sent, 2000u);
  EXPECT_EQ(place_adopt(t, 2000).kind, AdoptChoice::close);
}

TEST(AdoptPlacement, ABusyTargetWithRoomMeansWaitNotClose) {
  std::vector<AdoptTarget> t{{5, 0, 0, true}, {10, 0, 0, false}};
  EXPECT_EQ(place_adopt(t, 10).kind, AdoptChoice::wait);  // 1 is full, 0 busy
  t[1].connections = 9;
  const AdoptChoice c = place_adopt(t, 10);
  EXPECT_EQ(c.kind, AdoptChoice::send);  // the busy one is skipped even though less loaded
  EXPECT_EQ(c.target, 1u);
}

TEST(AdoptPlacement, NoRoomAnywhereClosesAndNoTargetYetWaits) {
  std::vector<AdoptTarget> t{{10, 0, 0, false}, {9, 3, 2, true}};
  EXPECT_EQ(place_adopt(t, 10).kind, AdoptChoice::close);  // 10 and 9 + 1 on its way
  EXPECT_EQ(place_adopt({}, 10).kind, AdoptChoice::wait);
}

TEST(AdoptPlacement, ATargetThatClaimsMoreTakenThanSentCountsNoneOnTheWay) {
  const AdoptTarget liar{2, 1, 1000, false};
  EXPECT_EQ(adopt_load(liar), 2u);
}

TEST(AdoptsDone, AtOnceOutsideTheServingGenerationElseWhenNothingCanStillCome) {
  EXPECT_TRUE(adopts_done_due(false, 5, 3));
  EXPECT_FALSE(adopts_done_due(true, 1, 0));  // queued in the supervisor
  EXPECT_FALSE(adopts_done_due(true, 0, 1));  // an old network process may still hand over
  EXPECT_TRUE(adopts_done_due(true, 0, 0));
}

}  // namespace
}  // namespace ringhttpd::master
