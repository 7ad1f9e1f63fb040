// A ring between two forked processes over a real shared-memory segment:
// 1,000,000 records of varying sizes, checked for order and content, with the
// real sleep/wake protocol on eventfds (both sides sleep when they must, so a
// lost wake-up shows up as a hang, caught by the time limit).
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>

#include "proto/unique_fd.h"
#include "shm/segment.h"

namespace ringhttpd::shm {
namespace {

constexpr uint64_t kRecords = 1000000;
constexpr int kLimitSeconds = 120;

// The payload of record i: its size and bytes derive from i.
std::string payload(uint64_t i) {
  std::string s((i * 37) % 700, '\0');
  for (size_t k = 0; k < s.size(); ++k) s[k] = static_cast<char>((i + k) * 31);
  return s;
}

// Sleeps on the eventfd until woken. A wake-up that was lost shows within
// seconds, not at the overall time limit: the sleeper looks every
// kLostWakeMs whether what it waits for (`due`) has already happened
// without its eventfd being written. False then (the test fails at once).
constexpr int kLostWakeMs = 5000;

template <typename Due>
bool wait_on(int efd, Due due) {
  for (;;) {
    pollfd pfd{efd, POLLIN, 0};
    if (::poll(&pfd, 1, kLostWakeMs) > 0) break;
    if (due()) return false;  // the peer published, or freed space, and never woke us
  }
  uint64_t v;
  ssize_t unused = ::read(efd, &v, sizeof v);
  (void)unused;
  return true;
}

void signal_fd(int efd) {
  const uint64_t one = 1;
  ssize_t unused = ::write(efd, &one, sizeof one);
  (void)unused;
}

// Producer: pushes all records; when the ring is full, announces the wait
// and sleeps until the consumer frees space.
int produce(Ring ring, int producer_wake, int consumer_wake) {
  for (uint64_t i = 0; i < kRecords;) {
    const std::string p = payload(i);
    if (ring.try_push(1, static_cast<uint16_t>(i & 0xffff), i, p)) {
      ++i;
      if ((i & 63) == 0 && ring.consumer_needs_wake()) signal_fd(consumer_wake);
      continue;
    }
    if (ring.consumer_needs_wake()) signal_fd(consumer_wake);
    if (ring.prepare_producer_wait(p.size()) &&
        !wait_on(producer_wake, [&] { return ring.empty(); })) {
      return 4;  // lost wake-up: space was freed and nobody said so
    }
  }
  if (ring.consumer_needs_wake()) signal_fd(consumer_wake);
  return 0;
}

// Consumer: checks every record; sleeps when the ring is empty.
int consume(Ring ring, int producer_wake, int consumer_wake) {
  RecordView rec;
  for (uint64_t expected = 0; expected < kRecords;) {
    if (!ring.peek(rec)) {
      if (ring.producer_needs_wake()) signal_fd(producer_wake);
      if (ring.prepare_sleep() && !wait_on(consumer_wake, [&] { return !ring.empty(); })) {
        return 5;  // lost wake-up: records were published and nobody said so
      }
      ring.cancel_sleep();
      continue;
    }
    if (rec.id != expected || rec.flags != (expected & 0xffff) ||
        rec.payload != payload(expected)) {
      return 3;
    }
    ring.pop();
    ++expected;
    if ((expected & 15) == 0 && ring.producer_needs_wake()) signal_fd(producer_wake);
  }
  return 0;
}

pid_t fork_child(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(kLimitSeconds);  // a hang ends the child, and the test fails
    ::_exit(body());
  }
  return pid;
}

// Waits for both children until the deadline. When one fails (a lost
// wake-up is found within seconds), the other is killed at once rather than
// left to wait for a peer that is gone. Returns their statuses.
std::pair<int, int> reap_both(pid_t a, pid_t b, std::chrono::steady_clock::time_point deadline) {
  int status[2] = {-1, -1};
  bool done[2] = {false, false};
  const pid_t pids[2] = {a, b};
  while (!done[0] || !done[1]) {
    for (int k = 0; k < 2; ++k) {
      if (done[k] || ::waitpid(pids[k], &status[k], WNOHANG) != pids[k]) continue;
      done[k] = true;
      const bool failed = !WIFEXITED(status[k]) || WEXITSTATUS(status[k]) != 0;
      if (failed && !done[1 - k]) ::kill(pids[1 - k], SIGKILL);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      for (int k = 0; k < 2; ++k) {
        if (!done[k]) ::kill(pids[k], SIGKILL);
      }
    }
    ::usleep(20000);  // polling the children's exit: waitpid has no timeout
  }
  return {status[0], status[1]};
}

TEST(RingAcrossProcesses, MillionRecordsArriveInOrderAndIntact) {
  const std::string name = "ringhttpd-mptest." + std::to_string(::getpid());
  std::string error;
  auto segment = Segment::create(name, SegmentSpec{1, 1, {65536}}, error);
  ASSERT_TRUE(segment) << error;
  Segment::remove(name);  // the mapping stays; nothing is left in /dev/shm
  proto::UniqueFd producer_wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  proto::UniqueFd consumer_wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  Ring ring = segment->ring(0, 0, Direction::request);

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kLimitSeconds);
  const pid_t consumer =
      fork_child([&] { return consume(ring, producer_wake.get(), consumer_wake.get()); });
  const pid_t producer =
      fork_child([&] { return produce(ring, producer_wake.get(), consumer_wake.get()); });
  const auto [producer_status, consumer_status] = reap_both(producer, consumer, deadline);
  // Exit status 4 or 5: a wake-up was lost (the producer's or the consumer's).
  EXPECT_TRUE(WIFEXITED(producer_status) && WEXITSTATUS(producer_status) == 0) << producer_status;
  EXPECT_TRUE(WIFEXITED(consumer_status) && WEXITSTATUS(consumer_status) == 0) << consumer_status;
  EXPECT_TRUE(ring.empty());
}

}  // namespace
}  // namespace ringhttpd::shm
