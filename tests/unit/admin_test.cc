// Unit tests for the admin socket's pure parts: line framing and its 64 KiB
// bound (master/admin_protocol.h), request parsing, answers as single lines,
// the effective config as JSON (master/config_json.h), admin.group, and the
// `ctl status` table (master/ctl.h). No sockets, no processes.
#include <grp.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "master/admin_protocol.h"
#include "master/config.h"
#include "master/config_json.h"
#include "master/ctl.h"

namespace ringhttpd::master {
namespace {

using nlohmann::json;

TEST(AdminLineBuffer, SplitsLinesAcrossReadsAndStripsCr) {
  LineBuffer b;
  b.append("{\"command\":");
  EXPECT_EQ(b.next_line(), std::nullopt);
  b.append("\"status\"}\r\n{\"comm");
  EXPECT_EQ(b.next_line(), "{\"command\":\"status\"}");
  EXPECT_EQ(b.next_line(), std::nullopt);
  b.append("and\":\"help\"}\n\n");
  EXPECT_EQ(b.next_line(), "{\"command\":\"help\"}");
  EXPECT_EQ(b.next_line(), "");  // a blank line is a line (the server skips it)
  EXPECT_EQ(b.next_line(), std::nullopt);
  EXPECT_FALSE(b.overflowed());
}

TEST(AdminLineBuffer, EveryByteSplitGivesTheSameLines) {
  const std::string input = "a\nbb\r\n\nccc\n";
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    LineBuffer b;
    std::vector<std::string> lines;
    b.append(input.substr(0, cut));
    while (auto l = b.next_line()) lines.push_back(*l);
    b.append(input.substr(cut));
    while (auto l = b.next_line()) lines.push_back(*l);
    EXPECT_EQ(lines, (std::vector<std::string>{"a", "bb", "", "ccc"})) << cut;
  }
}

TEST(AdminLineBuffer, ALineLongerThan64KiBOverflows) {
  LineBuffer ok;
  ok.append(std::string(kMaxAdminLine, 'x') + "\n");
  EXPECT_FALSE(ok.overflowed());
  EXPECT_EQ(ok.next_line()->size(), kMaxAdminLine);

  LineBuffer bad;
  bad.append(std::string(kMaxAdminLine + 1, 'x'));  // no newline yet: already too long
  EXPECT_TRUE(bad.overflowed());
  bad.append("\n");
  EXPECT_EQ(bad.next_line(), std::nullopt);  // never handed out
  EXPECT_TRUE(bad.overflowed());
}

TEST(AdminLineBuffer, ManyShortLinesAreNotAnOverflow) {
  LineBuffer b;
  std::string many;
  for (int i = 0; i < 20000; ++i) many += "{}\n";  // 60000 bytes, then more
  b.append(many);
  b.append(many);
  EXPECT_FALSE(b.overflowed());
  int n = 0;
  while (b.next_line()) ++n;
  EXPECT_EQ(n, 40000);
  EXPECT_EQ(b.buffered(), 0u);
}

TEST(AdminLineBuffer, TheRestAtEofIsALastLine) {
  LineBuffer b;
  b.append("one\ntwo");
  EXPECT_EQ(b.next_line(), "one");
  EXPECT_EQ(b.next_line(), std::nullopt);
  EXPECT_EQ(b.take_rest(), "two");
  EXPECT_EQ(b.take_rest(), "");
}

TEST(AdminRequest, KnownCommands) {
  EXPECT_EQ(parse_admin_request(R"({"command": "status"})").command, AdminCommand::status);
  EXPECT_EQ(parse_admin_request(R"({"command": "reload"})").command, AdminCommand::reload);
  EXPECT_EQ(parse_admin_request(R"({"command": "config"})").command, AdminCommand::config);
  EXPECT_EQ(parse_admin_request(R"({"command": "metrics"})").command, AdminCommand::metrics);
  EXPECT_EQ(parse_admin_request(R"( {"command":"help", "extra": [1]} )").command,
            AdminCommand::help);
}

std::string error_of(std::string_view line) {
  const AdminRequest r = parse_admin_request(line);
  EXPECT_FALSE(r.command.has_value()) << line;
  EXPECT_EQ(r.error.value("ok", true), false) << line;
  return r.error.value("error", "");
}

TEST(AdminRequest, BadRequestsGetAnErrorObject) {
  EXPECT_NE(error_of("status").find("malformed JSON"), std::string::npos);
  EXPECT_NE(error_of("{\"command\": \"status\"").find("malformed JSON"), std::string::npos);
  EXPECT_NE(error_of("[1, 2]").find("must be a JSON object"), std::string::npos);
  EXPECT_NE(error_of("\"status\"").find("must be a JSON object"), std::string::npos);
  EXPECT_NE(error_of("{}").find("missing \"command\""), std::string::npos);
  EXPECT_NE(error_of(R"({"command": 1})").find("missing \"command\""), std::string::npos);
  EXPECT_EQ(error_of(R"({"command": "stats"})"),
            R"(unknown command "stats"; try {"command": "help"})");
  // Invalid UTF-8 is not JSON.
  EXPECT_NE(error_of("{\"command\": \"\xff\"}").find("malformed JSON"), std::string::npos);
  // A repeated key is refused, not resolved to its last value; a NUL is
  // refused, not taken as the end of the line.
  EXPECT_EQ(error_of(R"({"command": "help", "command": "status"})"),
            R"(duplicate key "command" in the request)");
  EXPECT_EQ(error_of(std::string("{\"command\": \"help\"}\0garbage", 27)),
            "a request line must not contain a NUL byte");
  // Only the request's own keys count: a nested object may use the same names.
  EXPECT_TRUE(parse_admin_request(R"({"command": "status", "x": {"command": 1}})").command);
}

TEST(AdminRequest, AnUnknownCommandIsEchoedEscapedAndShort) {
  const std::string e = error_of("{\"command\": \"\\u001b[31m" + std::string(500, 'a') + "\"}");
  EXPECT_EQ(e.find('\x1b'), std::string::npos);
  EXPECT_NE(e.find("\\x1b[31m"), std::string::npos);
  EXPECT_LT(e.size(), 150u);
}

TEST(AdminRequest, DeepNestingWithinTheLineLimitDoesNotCrash) {
  const std::string deep =
      std::string(kMaxAdminLine / 2, '[') + std::string(kMaxAdminLine / 2, ']');
  EXPECT_NE(error_of(deep).find("must be a JSON object"), std::string::npos);
  const std::string open_only(kMaxAdminLine, '[');
  EXPECT_NE(error_of(open_only).find("malformed JSON"), std::string::npos);
}

TEST(AdminLine, OneLineEvenWithNewlinesAndInvalidUtf8) {
  const std::string line = admin_line(json{{"ok", false}, {"error", "a\nb \xff\xfe c"}});
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  const json back = json::parse(line);
  EXPECT_EQ(back["error"], "a\nb \xEF\xBF\xBD\xEF\xBF\xBD c");  // U+FFFD for each bad byte
}

TEST(AdminHelp, ListsTheCommands) {
  const json help = admin_help();
  ASSERT_TRUE(help["ok"].get<bool>());
  std::vector<std::string> names;
  for (const json& c : help["commands"]) names.push_back(c["command"]);
  EXPECT_EQ(names, (std::vector<std::string>{"status", "reload", "config", "metrics", "help"}));
}

TEST(AdminConfigJson, RoundTripsTheEmbeddedDefault) {
  const ConfigResult first = parse_config(default_config_text());
  ASSERT_TRUE(first.ok());
  const json once = config_to_json(first.config);
  const ConfigResult again = parse_config(once.dump());
  ASSERT_TRUE(again.ok()) << again.errors.front();
  EXPECT_EQ(config_to_json(again.config), once);
  EXPECT_EQ(once["admin"]["mode"], "0600");
  EXPECT_EQ(once["services"][0]["kill_after_ms"], 10000);  // resolved: 2 x timeout_ms
}

TEST(AdminConfigJson, RoundTripsEveryKindOfRoute) {
  const ConfigResult r = parse_config(R"({
    "listeners": [{"address": "::1", "port": 0}],
    "services": [{"name": "a", "processes": 3, "start_timeout_ms": 45000}],
    "routes": [{"methods": ["GET"], "host": "x.test", "path": "/a", "service": "a"},
               {"path": "/", "respond": {"status": 404, "body": "no\n", "content_type": "text/x"}}],
    "admin": {"socket": "", "mode": "0660", "group": "root"},
    "log": {"level": "warn"}})");
  ASSERT_TRUE(r.ok()) << r.errors.front();
  const json j = config_to_json(r.config);
  const ConfigResult again = parse_config(j.dump());
  ASSERT_TRUE(again.ok()) << again.errors.front();
  EXPECT_EQ(config_to_json(again.config), j);
  EXPECT_EQ(j["admin"]["group"], "root");
  EXPECT_EQ(j["routes"][1]["respond"]["status"], 404);
  EXPECT_EQ(j["services"][0]["start_timeout_ms"], 45000);
}

TEST(AdminConfig, GroupMustExist) {
  const ConfigResult r = parse_config(R"({"admin": {"group": "root"}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.admin.group_gid, 0u);
  EXPECT_EQ(
      parse_config(R"({"admin": {"group": "no-such-group-for-ringhttpd"}})").errors,
      std::vector<std::string>{R"(admin.group: no group named "no-such-group-for-ringhttpd")"});
  EXPECT_EQ(parse_config(R"({"admin": {"group": 0}})").errors,
            std::vector<std::string>{"admin.group: must be a string"});
}

// `ctl reload` waits twice the longest start_timeout_ms of the serving
// config (at least a network process's 10 s) plus 10 s; an answer that
// says nothing usable gives the least wait, and no value overflows it.
TEST(CtlReload, WaitsAsLongAsTheServingConfigLetsAReloadTake) {
  const auto config_answer = [](std::vector<json> services) {
    return json{{"ok", true}, {"config", {{"services", json(std::move(services))}}}};
  };
  const auto service = [](json start_timeout_ms) {
    json s = json::object();
    s["start_timeout_ms"] = std::move(start_timeout_ms);
    return s;
  };
  EXPECT_EQ(reload_wait_ms(json::object()), 30000);
  EXPECT_EQ(reload_wait_ms(config_answer({})), 30000);
  EXPECT_EQ(reload_wait_ms(config_answer({service(2000)})), 30000);
  EXPECT_EQ(reload_wait_ms(config_answer({service(45000), service(10000)})), 100000);
  EXPECT_EQ(reload_wait_ms(config_answer({service(3600000)})), 7210000);
  // What another process wrote: wrong types are passed over, huge values bounded.
  EXPECT_EQ(reload_wait_ms(config_answer(
                {service("99999"), service(-5), json::array(), service(1e300), json(7)})),
            30000);
  EXPECT_EQ(reload_wait_ms(config_answer({service(18446744073709551615ull)})), 7210000);
  EXPECT_EQ(reload_wait_ms(json{{"config", "x"}}), 30000);
  EXPECT_EQ(reload_wait_ms(json{{"config", {{"services", 7}}}}), 30000);
}

TEST(CtlFormat, Durations) {
  EXPECT_EQ(format_duration(-5), "0ms");
  EXPECT_EQ(format_duration(850), "850ms");
  EXPECT_EQ(format_duration(12'400), "12s");
  EXPECT_EQ(format_duration(312'000), "5m 12s");
  EXPECT_EQ(format_duration(3 * 3'600'000 + 5 * 60'000), "3h 05m");
  EXPECT_EQ(format_duration(52 * 3'600'000), "2d 4h");
}

json status_fixture() {
  return json::parse(R"({"ok": true, "version": "0.1.0", "pid": 100, "uptime_ms": 312000,
    "generation": 2, "reload_in_progress": false, "reload_pending": false,
    "last_reload": {"ok": true, "error": "", "at_ms": 1000000, "ms": 85, "generation": 2},
    "listeners": ["127.0.0.1:8080"],
    "processes": [
      {"role": "network", "service": null, "generation": 2, "index": 0, "pid": 101,
       "state": "ready", "uptime_ms": 63000, "requests": 1042, "connections": 3,
       "inflight": null, "restarts": 0, "streak": 0, "restart_in_ms": null},
      {"role": "service", "service": "app", "generation": 2, "index": 1, "pid": null,
       "state": "gone", "uptime_ms": null, "requests": 7, "connections": null,
       "inflight": 0, "restarts": 3, "streak": 3, "restart_in_ms": 200}]})");
}

TEST(CtlFormat, StatusTable) {
  const std::string out = format_status(status_fixture(), 1'063'000);
  EXPECT_EQ(out,
            "ringhttpd 0.1.0 (pid 100), up 5m 12s\n"
            "generation 2 serving on 127.0.0.1:8080\n"
            "last reload: ok 1m 3s ago (generation 2 in 85ms)\n"
            "\n"
            "ROLE     SERVICE  GEN  IDX  PID  STATE  UPTIME  REQUESTS  CONNS  INFLIGHT  RESTARTS\n"
            "network  -        2    0    101  ready  1m 3s   1042      3      -         0\n"
            "service  app      2    1    -    gone   -       7         -      0         3\n"
            "\n"
            "service app g2 #1: crash loop (3 failures in a row); replacement in 200ms\n");
}

TEST(CtlFormat, AProcessWhoseLoopHasNotRunIsPointedOut) {
  json s = status_fixture();
  s["processes"][0]["heartbeat_age_ms"] = 800;  // quiet, not stuck: no note
  s["processes"].push_back(json::parse(R"({"role": "service", "service": "app", "generation": 2,
    "index": 0, "pid": 102, "state": "ready", "uptime_ms": 63000, "requests": 5,
    "connections": null, "inflight": 1, "restarts": 0, "streak": 0, "restart_in_ms": null,
    "heartbeat_age_ms": 12400})"));
  const std::string out = format_status(s, 1'063'000);
  EXPECT_NE(out.find("\nservice app g2 #0: its loop has not run for 12s\n"), std::string::npos)
      << out;
  EXPECT_EQ(out.find("network  g2 #0"), std::string::npos) << out;
  EXPECT_EQ(out.find("network g2"), std::string::npos) << out;
}

TEST(CtlFormat, AFailedReloadAndHostileStrings) {
  json s = status_fixture();
  s["last_reload"] = {{"ok", false}, {"error", "c.json: routes[1].service: \x1b[2J"}, {"at_ms", 0}};
  s["processes"][1]["service"] = "a\nb";
  s["reload_in_progress"] = true;
  const std::string out = format_status(s, 5000);
  EXPECT_NE(out.find("last reload: FAILED 5s ago: c.json: routes[1].service: ?[2J\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("a?b"), std::string::npos) << out;
  EXPECT_NE(out.find("reload in progress\n"), std::string::npos) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
}

TEST(CtlFormat, NotAStatusAnswerDoesNotCrash) {
  for (const char* text : {"null", "[]", "{}", R"({"processes": [1, null, {"pid": "x"}]})",
                           R"({"last_reload": {"at_ms": "soon"}})"}) {
    EXPECT_FALSE(format_status(json::parse(text), 0).empty()) << text;
  }
}

// An answer nested deeper than the bound is refused while it is parsed
// (copying or printing it would recurse once per level: the reviewer's
// `ctl config` overflowed the stack); a real answer's depth passes.
TEST(CtlAnswer, DeepNestingIsRefusedWithAClearError) {
  for (size_t depth : {size_t{kMaxAnswerDepth}, size_t{200000}}) {
    const std::string deep =
        R"({"ok":true,"config":)" + std::string(depth, '[') + std::string(depth, ']') + "}";
    std::string error;
    EXPECT_FALSE(parse_answer(deep, error)) << depth;
    EXPECT_NE(error.find("nests deeper than " + std::to_string(kMaxAnswerDepth)), std::string::npos)
        << error;
  }
  const size_t fits = kMaxAnswerDepth - 1;  // plus the answer object itself
  const std::string ok =
      R"({"ok":true,"config":)" + std::string(fits, '[') + std::string(fits, ']') + "}";
  std::string error;
  const std::optional<json> answer = parse_answer(ok, error);
  ASSERT_TRUE(answer) << error;
  EXPECT_TRUE((*answer)["ok"].get<bool>());
  EXPECT_FALSE(parse_answer("[1]", error));
  EXPECT_NE(error.find("not JSON"), std::string::npos) << error;
  EXPECT_FALSE(parse_answer("{", error));
}

}  // namespace
}  // namespace ringhttpd::master
