// The RLIMIT_NOFILE decision for network.max_connections.
#include "master/fd_limit.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace ringhttpd::master
