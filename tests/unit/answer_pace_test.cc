// AnswerPace (worker/handlers/answer_pace.h): whether the proxy may
// pipeline requests to an upstream, from how long its answers took.
#include "worker/handlers/answer_pace.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace ringhttpd::worker {
namespace {

constexpr uint32_t kFastMs = 5;

TEST(AnswerPace, NothingIsPipelinedBeforeAFirstAnswer) {
  AnswerPace pace;
  EXPECT_FALSE(pace.fast(kFastMs));  // nothing known: one request per connection
  EXPECT_FALSE(pace.fast(UINT32_MAX));
  EXPECT_FALSE(pace.may_join(kFastMs, 0));
  pace.note(0);
  EXPECT_TRUE(pace.fast(kFastMs));
  EXPECT_EQ(pace.mean_ms(), 0);
}

// A connection whose front request has waited the bound already is not
// joined, however fast the answers before it came.
TEST(AnswerPace, AFrontThatHasWaitedTheBoundIsNotJoined) {
  AnswerPace pace;
  for (int i = 0; i < 20; ++i) pace.note(0);
  EXPECT_TRUE(pace.may_join(kFastMs, 0));
  EXPECT_TRUE(pace.may_join(kFastMs, kFastMs - 1));
  EXPECT_FALSE(pace.may_join(kFastMs, kFastMs));
  EXPECT_FALSE(pace.may_join(kFastMs, 1000));
  EXPECT_TRUE(pace.may_join(kFastMs, -3));  // a clock read before the front's: no wait
  pace.note(1000);                          // slow now: no front is joined
  EXPECT_FALSE(pace.may_join(kFastMs, 0));
}

TEST(AnswerPace, AFirstSlowAnswerStopsPipelining) {
  AnswerPace pace;
  pace.note(kFastMs);
  EXPECT_FALSE(pace.fast(kFastMs));
  EXPECT_TRUE(pace.fast(kFastMs + 1));
  AnswerPace just_under;
  just_under.note(kFastMs - 1);
  EXPECT_TRUE(just_under.fast(kFastMs));
}

TEST(AnswerPace, OneSlowAnswerAmongFastOnesWeighsAnEighth) {
  AnswerPace pace;
  for (int i = 0; i < 20; ++i) pace.note(1);
  pace.note(8 * kFastMs - 8);  // mean 1 - 1/8 + (5 x 8 - 8) / 8 = 4.875 ms
  EXPECT_TRUE(pace.fast(kFastMs));
  pace.note(8 * kFastMs);  // and another: past 5 ms
  EXPECT_FALSE(pace.fast(kFastMs));
}

TEST(AnswerPace, AnUpstreamThatTurnsFastIsPipelinedToAgain) {
  AnswerPace pace;
  for (int i = 0; i < 10; ++i) pace.note(1000);  // answers after 1 s
  EXPECT_FALSE(pace.fast(kFastMs));
  EXPECT_EQ(pace.mean_ms(), 1000);
  int fast_answers = 0;
  while (!pace.fast(kFastMs)) {
    pace.note(0);
    ++fast_answers;
    ASSERT_LT(fast_answers, 100);
  }
  // 8000 x (7/8)^n < 40 from n = 40 on; rounded down at each step (the
  // mean is kept in 1/8 ms), it takes one more.
  EXPECT_EQ(fast_answers, 41);
}

TEST(AnswerPace, NegativeAndHugeWaitsAreBounded) {
  AnswerPace pace;
  pace.note(-5);  // a clock that went back: no wait
  EXPECT_TRUE(pace.fast(kFastMs));
  pace.note(INT64_MAX);  // counted as 2^32 ms: weighs an eighth, no overflow
  EXPECT_FALSE(pace.fast(kFastMs));
  EXPECT_EQ(pace.mean_ms(), (int64_t{1} << 32) / 8);
}

}  // namespace
}  // namespace ringhttpd::worker
