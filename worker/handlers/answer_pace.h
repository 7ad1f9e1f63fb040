// How fast an upstream answers, as one proxy process sees it, and so
// whether a request may be pipelined behind others on a busy connection
// (proxy.cc, `pipeline` > 1). A decision kept apart from the sockets, so it
// is tested without any (tests/unit/answer_pace_test.cc).
//
// Pipelining holds each request behind the answers asked for before it on
// the same connection. Where answers come fast, that costs nothing and
// saves the upstream and this process a write and a read per request;
// where they are slow, it turns N answers of T each into a wait of N x T
// for the last (64 answers of 1 s: 64 s, past any timeout). So a request
// joins a busy connection only while the upstream's recent answers came
// quickly (`pipeline_fast_ms`): the time from a request's coming first in
// line on a connected connection (proxy.cc, front_clock) to its answer's
// first byte, so the answers before it and the connect do not count, as a
// moving mean over the answers (each new one weighs 1/8, as in TCP's
// smoothed round-trip time; an answer that never came counts as taking
// its timeout). Until a first answer (or timeout) is timed, nothing is
// known, and a request does not wait behind another (as with `pipeline`
// 1): a cold burst to an upstream that answers after 1 s would otherwise
// queue 64 deep on a few connections; one to a fast upstream costs a
// connection each until its first answers are in, then pipelining goes
// on. And a request does not join a connection whose front request has
// been first in line (connecting included) for `pipeline_fast_ms`: a slow
// answer holds behind it only the requests that joined within that time,
// whatever the mean still says.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ringhttpd::worker {

class AnswerPace {
 public:
  // An answer's first byte came `waited_ms` after its request came first
  // in line (or none came in that long: a timeout).
  void note(int64_t waited_ms) {
    const int64_t sample = std::clamp<int64_t>(waited_ms, 0, kMaxSampleMs);
    mean8_ = known_ ? mean8_ - mean8_ / 8 + sample : sample * 8;
    known_ = true;
  }
  // Whether requests may wait behind others on one connection now: a
  // first answer is in and the mean wait is under `fast_ms`.
  bool fast(uint32_t fast_ms) const { return known_ && mean8_ < int64_t{fast_ms} * 8; }
  // Whether a request may join a connection whose front request has
  // waited `front_waited_ms` for its answer so far.
  bool may_join(uint32_t fast_ms, int64_t front_waited_ms) const {
    return fast(fast_ms) && front_waited_ms < int64_t{fast_ms};
  }
  // The mean wait in ms (0 until known).
  int64_t mean_ms() const { return mean8_ / 8; }

 private:
  static constexpr int64_t kMaxSampleMs = int64_t{1} << 32;  // no overflow in mean8_
  int64_t mean8_ = 0;                                        // 8 x the mean, in ms
  bool known_ = false;
};

}  // namespace ringhttpd::worker
