// The listening sockets (master/listeners.h): reuseport groups, their members
// across reloads, and which network process holds which member. Real sockets
// on 127.0.0.1 with port 0, no processes.
#include "master/listeners.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>

namespace ringhttpd::master {
namespace {

ListenerConfig loopback(bool reuseport) {
  ListenerConfig c;
  c.address = "127.0.0.1";
  c.port = 0;
  c.reuseport = reuseport;
  return c;
}

int port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

bool has_reuseport(int fd) {
  int on = 0;
  socklen_t len = sizeof on;
  return ::getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, &len) == 0 && on != 0;
}

proto::UniqueFd connect_to(int port) {
  proto::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

TEST(Listeners, ASharedListenerGoesToEveryNetworkProcess) {
  std::vector<Listener> out;
  std::string error;
  ASSERT_TRUE(bind_listeners({loopback(false)}, out, error, {}, {}, 4)) << error;
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].member, -1);
  EXPECT_FALSE(has_reuseport(out[0].fd.get()));
  for (uint32_t k = 0; k < 4; ++k) EXPECT_TRUE(listener_belongs(out[0], k, 4));
}

TEST(Listeners, AReuseportListenerIsOneSocketPerNetworkProcessOnOnePort) {
  std::vector<Listener> out;
  std::string error;
  ASSERT_TRUE(bind_listeners({loopback(true)}, out, error, {}, {}, 3)) << error;
  ASSERT_EQ(out.size(), 3u);
  const int port = port_of(out[0].fd.get());
  ASSERT_NE(port, 0);
  for (int m = 0; m < 3; ++m) {
    EXPECT_EQ(out[m].member, m);
    EXPECT_EQ(port_of(out[m].fd.get()), port);
    EXPECT_TRUE(has_reuseport(out[m].fd.get()));
    EXPECT_EQ(out[m].address, "127.0.0.1:" + std::to_string(port));
    for (uint32_t k = 0; k < 3; ++k) EXPECT_EQ(listener_belongs(out[m], k, 3), k == uint32_t(m));
  }
  // The kernel spreads connections over the group: 60 connections from 60
  // source ports leave every member some (all but one empty: ~1e-10).
  std::vector<proto::UniqueFd> clients;
  for (int i = 0; i < 60; ++i) clients.push_back(connect_to(port));
  for (const Listener& l : out) {
    int accepted = 0;
    while (proto::UniqueFd(::accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC))) ++accepted;
    EXPECT_GT(accepted, 0) << "member " << l.member;
  }
}

// A reload keeps every member open (closing one would reset its queue):
// to fewer processes they are shared out, to more new members join the port.
TEST(Listeners, AReloadKeepsEveryMemberAndAddsWhatMoreProcessesNeed) {
  std::vector<Listener> first;
  std::string error;
  ASSERT_TRUE(bind_listeners({loopback(true)}, first, error, {}, {}, 3)) << error;
  const int port = port_of(first[0].fd.get());

  std::vector<Listener> fewer;
  ASSERT_TRUE(bind_listeners({loopback(true)}, fewer, error, first, {}, 2)) << error;
  ASSERT_EQ(fewer.size(), 3u);
  std::multiset<uint32_t> holders;
  for (const Listener& l : fewer) {
    EXPECT_EQ(port_of(l.fd.get()), port);
    for (uint32_t k = 0; k < 2; ++k) {
      if (listener_belongs(l, k, 2)) holders.insert(k);
    }
  }
  EXPECT_EQ(holders, (std::multiset<uint32_t>{0, 0, 1}));  // members 0 and 2 to process 0

  std::vector<Listener> more;
  ASSERT_TRUE(bind_listeners({loopback(true)}, more, error, fewer, {}, 5)) << error;
  ASSERT_EQ(more.size(), 5u);
  for (int m = 0; m < 5; ++m) {
    EXPECT_EQ(more[m].member, m);
    EXPECT_EQ(port_of(more[m].fd.get()), port);
  }
}

// Two listeners on port 0 bind two ports; a reload keeps each its own,
// shared or reuseport.
TEST(Listeners, APortZeroListedTwiceKeepsBothPortsAcrossAReload) {
  for (const bool reuseport : {false, true}) {
    std::vector<Listener> first;
    std::string error;
    ASSERT_TRUE(bind_listeners({loopback(reuseport), loopback(reuseport)}, first, error, {}, {}, 1))
        << error;
    ASSERT_EQ(first.size(), 2u);
    const int a = port_of(first[0].fd.get()), b = port_of(first[1].fd.get());
    ASSERT_NE(a, b);
    std::vector<Listener> again;
    ASSERT_TRUE(
        bind_listeners({loopback(reuseport), loopback(reuseport)}, again, error, first, {}, 1))
        << error;
    ASSERT_EQ(again.size(), 2u);
    EXPECT_EQ(port_of(again[0].fd.get()), a) << reuseport;
    EXPECT_EQ(port_of(again[1].fd.get()), b) << reuseport;
  }
}

TEST(Listeners, ReuseportCannotChangeOnALiveListener) {
  std::vector<Listener> shared;
  std::string error;
  ASSERT_TRUE(bind_listeners({loopback(false)}, shared, error, {}, {}, 2)) << error;
  std::vector<Listener> out;
  EXPECT_FALSE(bind_listeners({loopback(true)}, out, error, shared, {}, 2));
  EXPECT_NE(error.find("listeners[0].reuseport: cannot change while the listener serves"),
            std::string::npos)
      << error;

  std::vector<Listener> group;
  ASSERT_TRUE(bind_listeners({loopback(true)}, group, error, {}, {}, 2)) << error;
  out.clear();
  error.clear();
  EXPECT_FALSE(bind_listeners({loopback(false)}, out, error, group, {}, 2));
  EXPECT_NE(error.find("listeners[0].reuseport"), std::string::npos) << error;
}

// A port another socket holds without SO_REUSEPORT cannot take a group.
TEST(Listeners, AGroupOnAPortHeldWithoutReuseportFailsNamingTheListener) {
  std::vector<Listener> other;
  std::string error;
  ASSERT_TRUE(bind_listeners({loopback(false)}, other, error, {}, {}, 1)) << error;
  ListenerConfig taken = loopback(true);
  taken.port = port_of(other[0].fd.get());
  std::vector<Listener> out;
  EXPECT_FALSE(bind_listeners({taken}, out, error, {}, {}, 2));
  EXPECT_EQ(error.rfind("listeners[0]: bind 127.0.0.1:", 0), 0u) << error;
}

// An IPv6 address is named as elsewhere in the log: in brackets.
TEST(Listeners, ABindErrorNamesAnIpv6AddressInBrackets) {
  ListenerConfig v6 = loopback(false);
  v6.address = "::1";
  std::vector<Listener> held;
  std::string error;
  if (!bind_listeners({v6}, held, error, {}, {}, 1)) GTEST_SKIP() << "no ::1 here: " << error;
  sockaddr_in6 a{};
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(held[0].fd.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  v6.port = ntohs(a.sin6_port);
  std::vector<Listener> out;
  EXPECT_FALSE(bind_listeners({v6}, out, error, {}, {}, 1));
  EXPECT_EQ(error.rfind("listeners[0]: bind [::1]:" + std::to_string(v6.port) + ": ", 0), 0u)
      << error;
}

TEST(Listeners, NoProcessGetsAGroupMemberWhenThereAreNone) {
  Listener l;
  l.member = 0;
  EXPECT_FALSE(listener_belongs(l, 0, 0));
  l.member = -1;
  EXPECT_TRUE(listener_belongs(l, 0, 0));
}

}  // namespace
}  // namespace ringhttpd::master
