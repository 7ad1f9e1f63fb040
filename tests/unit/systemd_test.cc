// The decisions of master/systemd.h and master/privileges.h without systemd
// and without processes: which passed socket is which listener, the
// watchdog rule, the STATUS= line, and the `user`/`group` keys.
#include "master/systemd.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstring>

#include "master/config.h"
#include "master/privileges.h"

namespace ringhttpd::master {
namespace {

sockaddr_storage v4(const char* address, int port) {
  sockaddr_storage ss{};
  auto& a = reinterpret_cast<sockaddr_in&>(ss);
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, address, &a.sin_addr);
  return ss;
}

sockaddr_storage v6(const char* address, int port) {
  sockaddr_storage ss{};
  auto& a = reinterpret_cast<sockaddr_in6&>(ss);
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET6, address, &a.sin6_addr);
  return ss;
}

const std::vector<ListenerConfig> kListeners = {
    {"127.0.0.1", 8080}, {"::1", 8080}, {"0.0.0.0", 443}, {"127.0.0.1", 0}};

TEST(SystemdMatch, ByBoundAddress) {
  EXPECT_EQ(match_passed_socket(kListeners, v4("127.0.0.1", 8080), "unknown"), 0);
  EXPECT_EQ(match_passed_socket(kListeners, v6("::1", 8080), "unknown"), 1);
  EXPECT_EQ(match_passed_socket(kListeners, v6("0:0::1", 8080), "unknown"), 1);
  EXPECT_EQ(match_passed_socket(kListeners, v4("0.0.0.0", 443), "unknown"), 2);
  // Another port, another address, another family: no match.
  EXPECT_EQ(match_passed_socket(kListeners, v4("127.0.0.1", 8081), "unknown"), -1);
  EXPECT_EQ(match_passed_socket(kListeners, v4("127.0.0.2", 8080), "unknown"), -1);
  EXPECT_EQ(match_passed_socket(kListeners, v6("::", 443), "unknown"), -1);
}

TEST(SystemdMatch, PortZeroNeverMatchesAnAddress) {
  const std::vector<ListenerConfig> any = {{"127.0.0.1", 0}};
  EXPECT_EQ(match_passed_socket(any, v4("127.0.0.1", 0), "unknown"), -1);
  EXPECT_EQ(match_passed_socket(any, v4("127.0.0.1", 5000), "unknown"), -1);
  EXPECT_EQ(match_passed_socket(any, v4("127.0.0.1", 5000), "127.0.0.1_0"), 0);
}

TEST(SystemdMatch, ByFileDescriptorName) {
  EXPECT_EQ(descriptor_name({"127.0.0.1", 8080}), "127.0.0.1_8080");
  EXPECT_EQ(descriptor_name({"::1", 443}), "__1_443");
  // systemd refuses ':' in a descriptor name: the name never has one.
  EXPECT_EQ(descriptor_name({"fe80::1", 80}).find(':'), std::string::npos);
  // Bound elsewhere (systemd's ListenStream=443 is [::]:443), named for a listener.
  EXPECT_EQ(match_passed_socket(kListeners, v6("::", 443), "0.0.0.0_443"), 2);
  EXPECT_EQ(match_passed_socket(kListeners, v6("::", 443), "__1_8080"), 1);
  EXPECT_EQ(match_passed_socket(kListeners, v6("::", 443), "0.0.0.0:443"), -1);
  // The address wins over the name.
  EXPECT_EQ(match_passed_socket(kListeners, v4("127.0.0.1", 8080), "0.0.0.0_443"), 0);
}

TEST(SystemdWatchdog, HealthyOnlyWhileServingAndNoLongCrashLoop) {
  const int64_t interval = 30000;
  EXPECT_FALSE(watchdog_healthy(false, {}, 1000, interval)) << "nothing serves yet";
  EXPECT_TRUE(watchdog_healthy(true, {}, 1000, interval));
  // A crash loop younger than the interval is tolerated (back-off works on it).
  EXPECT_TRUE(watchdog_healthy(true, {100000}, 100000 + interval, interval));
  EXPECT_FALSE(watchdog_healthy(true, {100000}, 100001 + interval, interval));
  EXPECT_FALSE(watchdog_healthy(true, {200000, 100000}, 140000, interval)) << "any slot";
}

TEST(SystemdWatchdog, NotifierWithoutNotifySocketDoesNothing) {
  ::unsetenv("NOTIFY_SOCKET");
  SystemdNotifier n;
  EXPECT_FALSE(n.enabled());
  EXPECT_EQ(n.watchdog_interval_ms(), 0);
  EXPECT_FALSE(n.watchdog_due(0));
  EXPECT_EQ(n.watchdog_due_ms(), std::numeric_limits<int64_t>::max());
  n.ready("x");  // no socket: nothing to send, nothing fails
}

TEST(SystemdStatus, OneLine) {
  EXPECT_EQ(status_line("a\nb\rc"), "a b c");
  EXPECT_EQ(status_line(std::string(500, 'x')).size(), 200u);
}

TEST(RunAs, ResolvesNobodyAndNogroup) {
  ConfigResult r = parse_config(R"({"user": "nobody", "group": "nogroup"})");
  ASSERT_TRUE(r.ok()) << r.errors.front();
  EXPECT_EQ(r.config.run_as.uid, 65534u);
  EXPECT_EQ(r.config.run_as.gid, 65534u);
  EXPECT_NE(std::find(r.config.run_as.groups.begin(), r.config.run_as.groups.end(), 65534u),
            r.config.run_as.groups.end());
  // Without "group": the user's primary group.
  r = parse_config(R"({"user": "root"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.run_as.uid, 0u);
  EXPECT_EQ(r.config.run_as.gid, 0u);
  // Absent: nothing changes.
  r = parse_config("{}");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.config.run_as.user.empty());
}

TEST(RunAs, ErrorsNameTheKey) {
  auto errors = [](const char* text) { return parse_config(text).errors; };
  EXPECT_EQ(
      errors(R"({"user": "no-such-user-ringhttpd"})"),
      std::vector<std::string>{"user: no user named \"no-such-user-ringhttpd\" on this machine"});
  EXPECT_EQ(errors(R"({"user": "nobody", "group": "no-such-group-ringhttpd"})"),
            std::vector<std::string>{
                "group: no group named \"no-such-group-ringhttpd\" on this machine"});
  EXPECT_EQ(errors(R"({"group": "nogroup"})"),
            std::vector<std::string>{"group: needs \"user\" (whose group to change)"});
  EXPECT_EQ(errors(R"({"user": 65534})"), std::vector<std::string>{"user: must be a string"});
  EXPECT_EQ(errors(R"({"user": ""})"), std::vector<std::string>{"user: must not be empty"});
  EXPECT_EQ(errors(R"({"user": "nobody\u0000x"})").size(), 1u);
}

TEST(RunAs, OnlyRootDrops) {
  RunAsConfig run_as;
  EXPECT_FALSE(will_drop_privileges(run_as, 0));
  run_as.user = "nobody";
  EXPECT_TRUE(will_drop_privileges(run_as, 0));
  EXPECT_FALSE(will_drop_privileges(run_as, 1000));
}

}  // namespace
}  // namespace ringhttpd::master
