// Access log lines (worker/access_log.h): the combined format as nginx and
// Apache write it, JSON that a parser accepts, and fields from the request
// that can never forge a line or a field.
#include "worker/access_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace ringhttpd::worker {
namespace {

AccessEntry entry() {
  AccessEntry e;
  e.remote = "127.0.0.1";
  e.method = "GET";
  e.target = "/a?b=1";
  e.status = 200;
  e.body_bytes = 42;
  e.referer = "http://x/";
  e.user_agent = "curl/7.88.1";
  e.duration_ms = 1.5;
  return e;
}

TEST(AccessLog, CombinedFormat) {
  std::string out;
  AccessLog::format_combined(entry(), "30/Nov/2026:12:00:00 +0000", out);
  EXPECT_EQ(out,
            "127.0.0.1 - - [30/Nov/2026:12:00:00 +0000] \"GET /a?b=1 HTTP/1.1\" 200 42 "
            "\"http://x/\" \"curl/7.88.1\"\n");
}

TEST(AccessLog, ARequestThatDidNotParseAndMissingHeadersAreDashes) {
  AccessEntry e;
  e.remote = "::1";
  e.status = 400;
  std::string out;
  AccessLog::format_combined(e, "t", out);
  EXPECT_EQ(out, "::1 - - [t] \"-\" 400 0 \"-\" \"-\"\n");
}

TEST(AccessLog, RequestBytesCannotForgeALineOrAField) {
  AccessEntry e = entry();
  e.target = "/x\" 200 1 \"\n127.0.0.2 - - [forged";
  e.user_agent = "a\\b\x1b[31m\xff";
  std::string out;
  AccessLog::format_combined(e, "t", out);
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
  EXPECT_NE(out.find("/x\\x22 200 1 \\x22\\x0A127"), std::string::npos) << out;
  EXPECT_NE(out.find("a\\x5Cb\\x1B[31m\\xFF"), std::string::npos) << out;

  std::string json;
  AccessLog::format_json(e, "2026-11-30T12:00:00Z", json);
  EXPECT_EQ(json.find('\n'), json.size() - 1);
  const auto j = nlohmann::json::parse(json);
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["target"].get<std::string>().find('\n'), 11u);
}

TEST(AccessLog, JsonFieldsParse) {
  std::string json;
  AccessLog::format_json(entry(), "2026-11-30T12:00:00Z", json);
  const auto j = nlohmann::json::parse(json);
  EXPECT_EQ(j["time"], "2026-11-30T12:00:00Z");
  EXPECT_EQ(j["remote"], "127.0.0.1");
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["target"], "/a?b=1");
  EXPECT_EQ(j["version"], "1.1");
  EXPECT_EQ(j["bytes"], 42);
  EXPECT_EQ(j["user_agent"], "curl/7.88.1");
  EXPECT_DOUBLE_EQ(j["duration_ms"].get<double>(), 1.5);
}

TEST(AccessLog, BufferedUntilFlushedAndReopenedAfterARotation) {
  char dir[] = "/tmp/ringhttpd-alog-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/access.log";
  AccessLog log;
  ASSERT_EQ(log.open(path, AccessLog::Format::combined), "");
  log.record(entry(), 0);
  std::ifstream before(path);
  std::stringstream text;
  text << before.rdbuf();
  EXPECT_EQ(text.str(), "") << "written before a flush";
  log.flush(0, true);
  std::ifstream after(path);
  std::string line;
  ASSERT_TRUE(std::getline(after, line));
  EXPECT_NE(line.find("\"GET /a?b=1 HTTP/1.1\" 200 42"), std::string::npos);
  ASSERT_EQ(::rename(path.c_str(), (path + ".1").c_str()), 0);
  ASSERT_EQ(log.reopen(), "");
  log.record(entry(), 0);
  log.flush(0, true);
  std::ifstream fresh(path);
  ASSERT_TRUE(std::getline(fresh, line)) << "the new file got the new line";
  ::unlink(path.c_str());
  ::unlink((path + ".1").c_str());
  ::rmdir(dir);
  EXPECT_EQ(log.lines_lost(), 0u);
}

TEST(AccessLog, AnUnwritablePathIsAnErrorNamingTheKey) {
  AccessLog log;
  const std::string e = log.open("/nonexistent-dir/x.log", AccessLog::Format::json);
  EXPECT_NE(e.find("log.access"), std::string::npos) << e;
}

// A file that could not be opened (its directory moved away) is tried
// again at each flush; until it opens, the lines are lost, counted, and
// the report says the open failed.
TEST(AccessLog, AFileThatDidNotOpenIsTriedAgainAtEachFlush) {
  char dir[] = "/tmp/ringhttpd-alog-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string sub = std::string(dir) + "/logs";
  const std::string path = sub + "/access.log";
  AccessLog log;
  EXPECT_NE(log.open(path, AccessLog::Format::combined), "");
  log.record(entry(), 0);
  log.flush(0, true);
  EXPECT_EQ(log.lines_lost(), 1u);
  EXPECT_EQ(log.loss_report(0), "log.access: " + path +
                                    ": 1 lines lost (open: No such file or directory); the "
                                    "requests were answered");
  ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
  log.record(entry(), 0);
  log.flush(0, true);
  std::ifstream in(path);
  std::string line;
  EXPECT_TRUE(std::getline(in, line)) << "written once the file opened";
  EXPECT_FALSE(std::getline(in, line)) << "the lost line stays lost";
  EXPECT_EQ(log.lines_lost(), 1u);
  ::unlink(path.c_str());
  ::rmdir(sub.c_str());
  ::rmdir(dir);
}

// Lines a failed write loses are counted and reported, at most once per
// kLossReportEveryMs, each report naming what was lost since the last one.
TEST(AccessLog, LinesLostToAFullDiskAreReportedAtMostEveryTenSeconds) {
  ASSERT_EQ(::access("/dev/full", W_OK), 0) << "Linux's /dev/full fails every write with ENOSPC";
  AccessLog log;
  ASSERT_EQ(log.open("/dev/full", AccessLog::Format::combined), "");
  EXPECT_EQ(log.loss_report(0), "");
  log.record(entry(), 1000);
  log.record(entry(), 1000);
  log.flush(0, true);
  EXPECT_EQ(log.lines_lost(), 2u);
  EXPECT_EQ(log.loss_report(1000),
            "log.access: /dev/full: 2 lines lost (write: No space left on device); the requests "
            "were answered");
  log.record(entry(), 1000);
  log.flush(0, true);
  EXPECT_EQ(log.loss_report(2000), "");  // within 10 s of the last report
  EXPECT_EQ(log.loss_report(11000),
            "log.access: /dev/full: 1 lines lost (write: No space left on device); the requests "
            "were answered");
  EXPECT_EQ(log.loss_report(30000), "");  // nothing new
  EXPECT_EQ(log.lines_lost(), 3u);
}

}  // namespace
}  // namespace ringhttpd::worker
