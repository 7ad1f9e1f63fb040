// The error log's line discipline (worker/log.cc): one event is one line,
// whatever bytes the message carries. stderr is pointed at a pipe for the
// duration of each test and restored after.
#include "worker/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace ringhttpd::worker {
namespace {

// Runs `emit` with stderr redirected to a pipe; returns what it wrote.
template <typename F>
std::string captured_stderr(F emit) {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(fds[1], STDERR_FILENO);
  emit();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, size_t(n));
  ::close(fds[0]);
  return out;
}

TEST(ErrorLog, ControlBytesCannotForgeALineOrReachTheTerminal) {
  std::string message = "module /tmp/x";
  message.push_back('\n');
  message.append("2026-01-01T00:00:00Z ringhttpd[1] supervisor notice: FORGED ");
  message.push_back('\x1b');
  message.append("[31mred");
  message.push_back('\0');
  message.append("\r\x7f tab\tend caf\xc3\xa9");
  const std::string out = captured_stderr([&] { log_notice(message); });
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;  // exactly one line
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  EXPECT_NE(out.find(" notice: module /tmp/x\\x0a2026-01-01T00:00:00Z ringhttpd[1] supervisor "
                     "notice: FORGED \\x1b[31mred\\x00\\x0d\\x7f tab\\x09end caf\xc3\xa9\n"),
            std::string::npos)
      << out;
}

TEST(ErrorLog, PlainMessagesAreWrittenAsTheyAre) {
  const std::string out = captured_stderr([] { log_error("listen 127.0.0.1:80: in use"); });
  EXPECT_NE(out.find(" error: listen 127.0.0.1:80: in use\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace ringhttpd::worker
