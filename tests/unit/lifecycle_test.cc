// The supervisor's decisions without processes: back-off, what a death
// means, reload coalescing (master/lifecycle.h).
#include "master/lifecycle.h"

#include <gtest/gtest.h>

#include "master/capacity.h"
#include "proto/http_parser.h"
#include "worker/dispatch.h"

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

// A process lost with no replacement to follow (a draining generation):
// counted, but no step of the back-off streak.
TEST(RestartPolicy, ALossWithoutReplacementCountsButIsNoStreakStep) {
  RestartPolicy p;
  p.on_lost();
  EXPECT_EQ(p.restarts(), 1u);
  EXPECT_EQ(p.streak(), 0u);
  EXPECT_EQ(p.on_death(0, 5), 0);  // still the first failure: at once
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

// A heartbeat older than the limit is a stuck loop; at the limit, or with
// the watchdog off, it is not. A heartbeat from the future (a clock read
// racing the store) is never stuck.
TEST(NetworkWatchdog, AHeartbeatOlderThanTheLimitIsAStuckLoop) {
  EXPECT_FALSE(loop_stuck(10000, 7000, 3000));
  EXPECT_TRUE(loop_stuck(10001, 7000, 3000));
  EXPECT_TRUE(loop_stuck(100000, 7000, 3000));
  EXPECT_FALSE(loop_stuck(100000, 7000, 0));
  EXPECT_FALSE(loop_stuck(7000, 7500, 3000));
  EXPECT_FALSE(loop_stuck(-1, 0, 3000));
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

TEST(Capacity, ASegmentLargerThanDevShmIsRefusedNamingTheKeys) {
  EXPECT_EQ(capacity_error(100, 100, 2), "");
  const std::string e = capacity_error(uint64_t{32} << 30, uint64_t{12} << 30, 128);
  EXPECT_NE(e.find("services[*].ring_bytes"), std::string::npos) << e;
  EXPECT_NE(e.find("network.processes (128)"), std::string::npos) << e;
  EXPECT_NE(e.find("32768 MiB"), std::string::npos) << e;
}

TEST(Capacity, SegmentGrowsWithTheProductOfTheCounts) {
  Config c;
  c.network.processes = 4;
  c.services.push_back({});
  c.services[0].processes = 3;
  c.services[0].ring_bytes = 1 << 20;
  const uint64_t bytes = segment_bytes(c);
  EXPECT_GE(bytes, uint64_t{4} * 3 * 2 * (1 << 20));
  EXPECT_LT(bytes, uint64_t{4} * 3 * 2 * ((1 << 20) + 4096) + 65536);
}

// ---- the network process's decision for requests on a dead service ----

TEST(Recover, NeverTakenRequestsMoveWhateverTheirMethod) {
  using worker::Recovery;
  EXPECT_EQ(worker::recover(false, false, false, true), Recovery::move);
  EXPECT_EQ(worker::recover(false, true, false, true), Recovery::move);
  EXPECT_EQ(worker::recover(false, false, false, false), Recovery::unavailable);
}

TEST(Recover, TakenRequestsAreRetriedOnceOnlyWhenSafe) {
  using worker::Recovery;
  EXPECT_EQ(worker::recover(true, true, false, true), Recovery::retry);
  EXPECT_EQ(worker::recover(true, true, true, true), Recovery::bad_gateway);
  EXPECT_EQ(worker::recover(true, false, false, true), Recovery::bad_gateway);
  EXPECT_EQ(worker::recover(true, false, false, false), Recovery::bad_gateway);
  EXPECT_EQ(worker::recover(true, true, false, false), Recovery::unavailable);
}

TEST(Recover, OnlyBodilessSafeMethodsAreRetryable) {
  EXPECT_TRUE(worker::is_retryable("GET", false));
  EXPECT_TRUE(worker::is_retryable("HEAD", false));
  EXPECT_TRUE(worker::is_retryable("OPTIONS", false));
  EXPECT_FALSE(worker::is_retryable("GET", true));
  EXPECT_FALSE(worker::is_retryable("POST", false));
  EXPECT_FALSE(worker::is_retryable("PUT", false));
  EXPECT_FALSE(worker::is_retryable("DELETE", false));
}

// ---- cutting a connection between two requests (handoff) ----

TEST(FeedOne, StopsRightAfterTheFirstCompleteRequest) {
  proto::RequestParser parser;
  const std::string first = "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc";
  const std::string second = "GET /b HTTP/1.1\r\nHost: t\r\n\r\n";
  const std::string all = first + second + "GET /c HT";
  std::vector<proto::HttpRequest> out;
  size_t used = 0;
  ASSERT_TRUE(parser.feed_one(all, out, used));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].body, "abc");
  EXPECT_EQ(used, first.size());
  EXPECT_FALSE(parser.mid_request());
  // The rest, fed to a fresh parser (another process), parses the same.
  proto::RequestParser next;
  out.clear();
  ASSERT_TRUE(next.feed(std::string_view(all).substr(used), out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].path(), "/b");
  EXPECT_TRUE(next.mid_request());
}

TEST(FeedOne, AtEveryByteSplitTheCutIsAtTheSamePlace) {
  const std::string first =
      "GET /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n";
  const std::string all = first + "GET /b HTTP/1.1\r\nHost: t\r\n\r\n";
  for (size_t split = 0; split <= all.size(); ++split) {
    proto::RequestParser parser;
    std::vector<proto::HttpRequest> out;
    size_t used = 0, total = 0;
    std::string_view rest(all);
    for (std::string_view piece : {rest.substr(0, split), rest.substr(split)}) {
      while (!piece.empty() && out.empty()) {
        ASSERT_TRUE(parser.feed_one(piece, out, used)) << split;
        total += used;
        piece.remove_prefix(used);
        if (used == 0) break;
      }
    }
    ASSERT_EQ(out.size(), 1u) << split;
    EXPECT_EQ(total, first.size()) << split;
  }
}

}  // namespace
}  // namespace ringhttpd::master
