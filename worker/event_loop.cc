// epoll registration and waiting (see event_loop.h).
#include "worker/event_loop.h"

#include <cerrno>
#include <ctime>

#include "worker/log.h"

namespace ringhttpd::worker {

EventLoop::EventLoop() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {}

std::string EventLoop::add(int fd, uint32_t events, uint64_t token) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) return errno_message("epoll_ctl(ADD)");
  return {};
}

std::string EventLoop::modify(int fd, uint32_t events, uint64_t token) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) < 0) return errno_message("epoll_ctl(MOD)");
  return {};
}

void EventLoop::remove(int fd) { ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

int EventLoop::wait(epoll_event* events, int max_events, int timeout_ms) {
  for (;;) {
    const int n = ::epoll_wait(epoll_.get(), events, max_events, timeout_ms);
    if (n >= 0) return n;
    if (errno != EINTR) {
      log_error(errno_message("epoll_wait"));
      return 0;
    }
  }
}

int64_t monotonic_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

int64_t monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace ringhttpd::worker
