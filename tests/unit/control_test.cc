// The control channel's receive side (proto/control.h) on a real
// SOCK_SEQPACKET socketpair: how the end of the peer reads.
#include "proto/control.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ringhttpd::proto {
namespace {

struct Pair {
  Pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fd), 0); }
  ~Pair() {
    for (int f : fd) {
      if (f >= 0) ::close(f);
    }
  }
  void close_peer() {
    ::close(fd[1]);
    fd[1] = -1;
  }
  int fd[2] = {-1, -1};
};

RecvStatus receive(int fd, ControlMessage& msg, std::string& err) {
  std::vector<UniqueFd> fds;
  std::string payload;
  return recv_control(fd, msg, fds, err, &payload);
}

TEST(Control, AMessageArrivesWithItsArguments) {
  Pair p;
  ASSERT_EQ(send_control(p.fd[1], {ControlType::adopt, 3, 1234}, {}, "bytes"), "");
  ControlMessage msg{};
  std::vector<UniqueFd> fds;
  std::string payload, err;
  ASSERT_EQ(recv_control(p.fd[0], msg, fds, err, &payload), RecvStatus::ok) << err;
  EXPECT_EQ(msg.type, ControlType::adopt);
  EXPECT_EQ(msg.arg, 3u);
  EXPECT_EQ(msg.arg2, 1234u);
  EXPECT_EQ(payload, "bytes");
}

TEST(Control, APeerThatClosedReadsAsClosed) {
  Pair p;
  p.close_peer();
  ControlMessage msg{};
  std::string err;
  EXPECT_EQ(receive(p.fd[0], msg, err), RecvStatus::closed) << err;
}

// A child killed with the supervisor's messages unread: recvmsg fails with
// ECONNRESET. That is the peer's end, as EOF is, not an error to log (a
// stop or a drain's deadline logged one for every child it killed).
TEST(Control, APeerThatDiedWithMessagesUnreadReadsAsClosed) {
  Pair p;
  ASSERT_EQ(send_control(p.fd[0], {ControlType::stop, 1}), "");
  p.close_peer();
  ControlMessage msg{};
  std::string err;
  EXPECT_EQ(receive(p.fd[0], msg, err), RecvStatus::closed) << err;
}

TEST(Control, NothingYetReadsAsAgain) {
  Pair p;
  ControlMessage msg{};
  std::string err;
  EXPECT_EQ(receive(p.fd[0], msg, err), RecvStatus::again) << err;
}

}  // namespace
}  // namespace ringhttpd::proto
