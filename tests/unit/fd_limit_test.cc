// The RLIMIT_NOFILE decision for network.max_connections.
#include "master/fd_limit.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

namespace ringhttpd::master {
namespace {

TEST(FdLimit, EnoughAlreadyChangesNothing) {
  const FdLimitPlan p = plan_fd_limit(1000, 1, 4, 65536, 65536, false, 1048576);
  EXPECT_FALSE(p.change);
  EXPECT_TRUE(p.error.empty());
}

TEST(FdLimit, RaisesTheSoftLimitUpToTheHardOne) {
  const FdLimitPlan p = plan_fd_limit(10000, 1, 4, 1024, 524288, false, 1048576);
  EXPECT_TRUE(p.change);
  EXPECT_EQ(p.soft, 10000u + 1 + 8 + kFdOverhead);
  EXPECT_EQ(p.hard, 524288u);
}

TEST(FdLimit, RaisesTheHardLimitWhenPrivileged) {
  const FdLimitPlan p = plan_fd_limit(100000, 2, 2, 1024, 4096, true, 1048576);
  EXPECT_TRUE(p.change);
  EXPECT_EQ(p.hard, p.soft);
  EXPECT_GE(p.soft, 100000u);
}

TEST(FdLimit, ClearErrorNamingTheKeyWhenItCannot) {
  const FdLimitPlan p = plan_fd_limit(100000, 1, 2, 1024, 4096, false, 1048576);
  EXPECT_FALSE(p.change);
  EXPECT_NE(p.error.find("network.max_connections: 100000 needs"), std::string::npos) << p.error;
  EXPECT_NE(p.error.find("hard 4096"), std::string::npos) << p.error;
  const FdLimitPlan over = plan_fd_limit(2000000, 1, 2, 1024, 4096, true, 1048576);
  EXPECT_FALSE(over.error.empty());
}

// With many processes and few connections the supervisor needs more than a
// network process: during a reload it holds two generations' eventfds,
// control sockets and listener copies. Enough to start must be enough to
// reload (a limit of 1024 passed check for 128 + 128 processes, and every
// reload then failed with "socketpair: Too many open files").
TEST(FdLimit, CoversTheSupervisorHoldingTwoGenerations) {
  EXPECT_EQ(fd_need(1, 1, 256), 2 * (1 + 2 * 256) + kFdOverhead);
  EXPECT_EQ(fd_need(10000, 1, 4), 10000 + 1 + 8 + kFdOverhead);  // the network process's
  const FdLimitPlan raised = plan_fd_limit(1, 1, 256, 1024, 4096, false, 1048576);
  EXPECT_TRUE(raised.change);
  EXPECT_EQ(raised.soft, 2 * (1 + 2 * 256) + kFdOverhead);
  const FdLimitPlan refused = plan_fd_limit(1, 1, 256, 1024, 1024, false, 1048576);
  EXPECT_FALSE(refused.change);
  EXPECT_EQ(refused.error.rfind("network.processes, services[].processes: 256 processes and 1 "
                                "listening sockets need 1090 open files in the supervisor",
                                0),
            0u)
      << refused.error;
}

// A reload while older generations still drain holds more than the two
// the limit was planned for: it is refused at once, naming the limit and
// the way out, rather than fail half-way through forking ("network g3
// #21: socketpair: Too many open files", found by a tester).
TEST(FdLimit, AReloadBesideDrainingGenerationsIsCheckedAgainstWhatIsLeft) {
  EXPECT_EQ(reload_fd_problem(100, 322, 64, 2), "");  // 100 + 2 x 64 + 8 = 236
  EXPECT_EQ(reload_fd_problem(186, 322, 64, 2), "");  // 322: just fits
  const std::string e = reload_fd_problem(187, 322, 64, 3);
  EXPECT_EQ(e.rfind("the supervisor has 187 of its 322 open files (RLIMIT_NOFILE) in use with 3 "
                    "generations running, and another of 64 processes needs 136 more",
                    0),
            0u)
      << e;
  EXPECT_NE(e.find("LimitNOFILE="), std::string::npos) << e;
}

TEST(FdLimit, OpenDescriptorsAreCounted) {
  const uint64_t before = open_fd_count();
  ASSERT_GT(before, 2u);  // stdin, stdout, stderr at least
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(open_fd_count(), before + 1);
  ::close(fd);
  EXPECT_EQ(open_fd_count(), before);
  EXPECT_GT(fd_soft_limit(), 0u);
}

}  // namespace
}  // namespace ringhttpd::master
