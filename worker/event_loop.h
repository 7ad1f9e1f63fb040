// A thin epoll owner: descriptors are registered with a 64-bit token that the
// process chooses (what kind of descriptor, and which one), so the loop needs
// no callbacks and the process keeps its dispatch in one visible switch.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <string>

#include "proto/unique_fd.h"

namespace ringhttpd::worker {

enum class TokenKind : uint64_t { signal = 1, control, wake, listener, connection, handler };

inline uint64_t make_token(TokenKind kind, uint64_t id) {
  return (static_cast<uint64_t>(kind) << 56) | (id & ((uint64_t{1} << 56) - 1));
}
inline TokenKind token_kind(uint64_t token) { return static_cast<TokenKind>(token >> 56); }
inline uint64_t token_id(uint64_t token) { return token & ((uint64_t{1} << 56) - 1); }

class EventLoop {
 public:
  EventLoop();
  bool ok() const { return static_cast<bool>(epoll_); }

  // Each returns an empty string or an error naming the syscall.
  std::string add(int fd, uint32_t events, uint64_t token);
  std::string modify(int fd, uint32_t events, uint64_t token);
  void remove(int fd);

  // epoll_wait, retried on EINTR; returns the number of events (>= 0).
  int wait(epoll_event* events, int max_events, int timeout_ms);

 private:
  proto::UniqueFd epoll_;
};

// Monotonic milliseconds, for timeouts.
int64_t monotonic_ms();
// Monotonic microseconds, for latencies.
int64_t monotonic_us();

}  // namespace ringhttpd::worker
