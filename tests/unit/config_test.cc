// Unit tests for the configuration loader (master/config.cc): the embedded
// default parses cleanly, absent keys take the struct defaults, and every kind
// of problem is reported with its exact key path, all of them at once.
#include "master/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "worker/ring_channel.h"

namespace ringhttpd::master {
namespace {

using Errors = std::vector<std::string>;
using nlohmann::json;
using worker::RouteSettings;

Errors errors_of(std::string_view text) { return parse_config(text).errors; }

// The config of a text that must be valid (a failed parse shows its errors).
Config valid(std::string_view text) {
  ConfigResult r = parse_config(text);
  EXPECT_EQ(r.errors, Errors{}) << text;
  return r.config;
}

TEST(Config, EmbeddedDefaultParsesWithExpectedValues) {
  ConfigResult r = parse_config(default_config_text());
  ASSERT_EQ(r.errors, Errors{});
  ASSERT_TRUE(r.ok());
  const Config& c = r.config;

  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].address, "127.0.0.1");
  EXPECT_EQ(c.listeners[0].port, 8080);

  EXPECT_EQ(c.network.processes, 0);
  EXPECT_EQ(c.network.max_connections, 10000u);
  EXPECT_EQ(c.network.keepalive_timeout_ms, 30000u);
  EXPECT_EQ(c.network.request_timeout_ms, 10000u);
  EXPECT_EQ(c.network.send_timeout_ms, 30000u);
  EXPECT_EQ(c.network.watchdog_ms, 30000u);
  EXPECT_EQ(c.network.max_target_bytes, 8192u);
  EXPECT_EQ(c.network.max_header_bytes, 16384u);
  EXPECT_EQ(c.network.max_body_bytes, 1048576u);

  ASSERT_EQ(c.services.size(), 1u);
  EXPECT_EQ(c.services[0].name, "app");
  EXPECT_EQ(c.services[0].type, "echo");
  EXPECT_EQ(c.services[0].processes, 2);
  EXPECT_EQ(c.services[0].ring_bytes, 1048576u);
  EXPECT_EQ(c.services[0].timeout_ms, 5000u);

  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_EQ(c.routes[0].path, "/healthz");
  EXPECT_EQ(c.routes[0].kind, RouteSettings::Kind::respond);
  EXPECT_EQ(c.routes[0].respond.status, 200);
  EXPECT_EQ(c.routes[0].respond.body, "ok\n");
  EXPECT_EQ(c.routes[0].respond.content_type, "text/plain");
  EXPECT_TRUE(c.routes[0].methods.empty());
  EXPECT_EQ(c.routes[0].host, "");
  EXPECT_EQ(c.routes[0].service_index, -1);
  EXPECT_EQ(c.routes[1].path, "/");
  EXPECT_EQ(c.routes[1].kind, RouteSettings::Kind::service);
  EXPECT_EQ(c.routes[1].service, "app");
  EXPECT_EQ(c.routes[1].service_index, 0);

  EXPECT_EQ(c.admin.socket, "run/ringhttpd.sock");
  EXPECT_EQ(c.admin.mode, 0600u);
  EXPECT_EQ(c.log.access, "off");
  EXPECT_EQ(c.log.format, "combined");
  EXPECT_EQ(c.log.level, "info");
}

TEST(Config, EmptyObjectTakesAllDefaults) {
  Config c = valid("{}");
  ASSERT_EQ(c.listeners.size(), 1u);  // absent listeners: one on 127.0.0.1:8080
  EXPECT_EQ(c.listeners[0].address, "127.0.0.1");
  EXPECT_EQ(c.listeners[0].port, 8080);
  worker::NetworkSettings n;
  EXPECT_EQ(c.network.processes, n.processes);
  EXPECT_EQ(c.network.max_connections, n.max_connections);
  EXPECT_EQ(c.network.keepalive_timeout_ms, n.keepalive_timeout_ms);
  EXPECT_EQ(c.network.request_timeout_ms, n.request_timeout_ms);
  EXPECT_EQ(c.network.send_timeout_ms, n.send_timeout_ms);
  EXPECT_EQ(c.network.max_header_bytes, n.max_header_bytes);
  EXPECT_EQ(c.network.max_body_bytes, n.max_body_bytes);
  EXPECT_TRUE(c.services.empty());
  EXPECT_TRUE(c.routes.empty());  // no routes: every request gets 404
  EXPECT_EQ(c.admin.socket, "run/ringhttpd.sock");
  EXPECT_EQ(c.admin.mode, 0600u);
  EXPECT_EQ(c.log.access, "off");
  EXPECT_EQ(c.log.format, "combined");
  EXPECT_EQ(c.log.level, "info");
}

TEST(Config, NestedObjectsTakeDefaultsForAbsentKeys) {
  Config c = valid(R"({"listeners": [{}], "network": {}, "admin": {}, "log": {},
                       "services": [{"name": "s"}],
                       "routes": [{"host": "r.test", "respond": {}}, {"service": "s"}]})");
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].address, "127.0.0.1");
  EXPECT_EQ(c.listeners[0].port, 8080);
  ASSERT_EQ(c.services.size(), 1u);
  EXPECT_EQ(c.services[0].type, "echo");
  EXPECT_EQ(c.services[0].processes, 1);
  EXPECT_EQ(c.services[0].ring_bytes, 1048576u);
  EXPECT_EQ(c.services[0].timeout_ms, 5000u);
  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_EQ(c.routes[0].kind, RouteSettings::Kind::respond);
  EXPECT_EQ(c.routes[0].path, "/");
  EXPECT_EQ(c.routes[0].respond.status, 200);
  EXPECT_EQ(c.routes[0].respond.body, "");
  EXPECT_EQ(c.routes[0].respond.content_type, "text/plain");
  EXPECT_EQ(c.routes[1].path, "/");
  EXPECT_EQ(c.routes[1].service_index, 0);
}

// Routes are tried in order: one that an earlier route takes every request
// of (its methods, host and path prefix each covered) is never used, an
// error naming both, as nginx refuses a repeated location.
TEST(Config, ARouteAnEarlierOneCoversIsAnError) {
  const auto shadowed = [](std::string_view routes) {
    return errors_of(std::string(R"({"services": [{"name": "s"}], "routes": )") +
                     std::string(routes) + "}");
  };
  EXPECT_EQ(shadowed(R"([{"path": "/", "service": "s"}, {"path": "/healthz", "respond": {}}])"),
            Errors{"routes[1]: never used: routes[0] (path \"/\") comes first and takes every "
                   "request it would; routes are tried in order, so put the longer path first"});
  EXPECT_EQ(shadowed(R"([{"path": "/a", "respond": {}}, {"path": "/a", "service": "s"}])").size(),
            1u);
  EXPECT_EQ(shadowed(R"([{"path": "/a", "respond": {}}, {"path": "/a/b", "service": "s"}])").size(),
            1u);
  EXPECT_EQ(shadowed(R"([{"path": "/a", "methods": ["GET", "HEAD"], "respond": {}},
                         {"path": "/a", "methods": ["HEAD"], "service": "s"}])")
                .size(),
            1u);
  EXPECT_EQ(shadowed(R"([{"path": "/a", "respond": {}},
                         {"path": "/a", "host": "x.test", "service": "s"}])")
                .size(),
            1u);
  // Not covered: a longer path first, other methods, a host the later one
  // does not name, a prefix that is not at a segment boundary.
  EXPECT_EQ(shadowed(R"([{"path": "/healthz", "respond": {}}, {"path": "/", "service": "s"}])"),
            Errors{});
  EXPECT_EQ(shadowed(R"([{"path": "/a", "methods": ["GET"], "respond": {}},
                         {"path": "/a", "service": "s"}])"),
            Errors{});
  EXPECT_EQ(shadowed(R"([{"path": "/a", "host": "x.test", "respond": {}},
                         {"path": "/a", "service": "s"}])"),
            Errors{});
  EXPECT_EQ(shadowed(R"([{"path": "/a/", "respond": {}}, {"path": "/a", "service": "s"}])"),
            Errors{});
  EXPECT_EQ(shadowed(R"([{"path": "/ab", "respond": {}}, {"path": "/a", "service": "s"}])"),
            Errors{});
}

TEST(Config, ExplicitValuesAreStored) {
  Config c = valid(R"({
    "listeners": [{"address": "::1", "port": 0}, {"address": "0.0.0.0", "port": 443}],
    "network": {"processes": 4, "max_connections": 1, "keepalive_timeout_ms": 1,
                "request_timeout_ms": 3600000, "max_header_bytes": 1024,
                "max_body_bytes": 1073741824},
    "services": [{"name": "a", "processes": 256, "ring_bytes": 8192, "timeout_ms": 1},
                 {"name": "b-2_X", "ring_bytes": 1073741824}],
    "routes": [{"methods": ["GET", "HEAD", "M-SEARCH"], "host": "Example.com", "path": "/b",
                "service": "b-2_X"},
               {"path": "/a", "service": "a"},
               {"respond": {"status": 404, "body": "{}", "content_type": "application/json"}}],
    "admin": {"socket": "/run/x.sock", "mode": "0660"},
    "log": {"access": "/var/log/ringhttpd/access.log", "format": "json", "level": "debug"}
  })");
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].address, "::1");
  EXPECT_EQ(c.listeners[0].port, 0);
  EXPECT_EQ(c.listeners[1].port, 443);
  EXPECT_EQ(c.network.processes, 4);
  EXPECT_EQ(c.network.max_connections, 1u);
  EXPECT_EQ(c.network.request_timeout_ms, 3600000u);
  EXPECT_EQ(c.network.max_header_bytes, 1024u);
  EXPECT_EQ(c.network.max_body_bytes, uint64_t{1} << 30);
  ASSERT_EQ(c.services.size(), 2u);
  EXPECT_EQ(c.services[0].processes, 256);
  EXPECT_EQ(c.services[0].ring_bytes, 8192u);
  EXPECT_EQ(c.services[0].timeout_ms, 1u);
  EXPECT_EQ(c.services[1].ring_bytes, uint64_t{1} << 30);
  ASSERT_EQ(c.routes.size(), 3u);
  EXPECT_EQ(c.routes[0].methods, (std::vector<std::string>{"GET", "HEAD", "M-SEARCH"}));
  EXPECT_EQ(c.routes[0].host, "Example.com");
  EXPECT_EQ(c.routes[0].path, "/b");
  EXPECT_EQ(c.routes[0].service_index, 1);
  EXPECT_EQ(c.routes[1].service_index, 0);
  EXPECT_EQ(c.routes[2].respond.status, 404);
  EXPECT_EQ(c.routes[2].respond.body, "{}");
  EXPECT_EQ(c.routes[2].respond.content_type, "application/json");
  EXPECT_EQ(c.admin.socket, "/run/x.sock");
  EXPECT_EQ(c.admin.mode, 0660u);
  EXPECT_EQ(c.log.access, "/var/log/ringhttpd/access.log");
  EXPECT_EQ(c.log.format, "json");
  EXPECT_EQ(c.log.level, "debug");
}

TEST(Config, SyntaxErrorIsOneErrorWithBytePosition) {
  EXPECT_EQ(errors_of(R"({"a":})"),
            Errors{"config: parse error at byte 6: line 1, column 6: syntax error while parsing "
                   "value - unexpected '}'; expected '[', '{', or a literal"});
  Errors e = errors_of(R"({"network": {"processes": 1,}})");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].rfind("config: parse error at byte 29: ", 0), 0u) << e[0];
  e = errors_of("");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].rfind("config: parse error at byte 1: ", 0), 0u) << e[0];
  e = errors_of("{} trailing");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].rfind("config: parse error at byte 6: ", 0), 0u) << e[0];
}

TEST(Config, SyntaxErrorReplacesEarlierFindings) {
  // The duplicate key is seen before the syntax error; only the latter counts.
  Errors e = errors_of(R"({"log": {}, "log": {}, )");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].rfind("config: parse error at byte ", 0), 0u) << e[0];
}

TEST(Config, InvalidUtf8IsASyntaxErrorWithPrintableMessage) {
  Errors e = errors_of("{\"log\": {\"access\": \"\xff\"}}");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].rfind("config: parse error at byte 21: ", 0), 0u) << e[0];
  for (char ch : e[0]) EXPECT_LT(static_cast<unsigned char>(ch), 0x80) << e[0];
}

TEST(Config, DuplicateJsonKeysAreReportedWithPath) {
  EXPECT_EQ(errors_of(R"({"network": {"processes": 1, "processes": 2}})"),
            Errors{"network.processes: duplicate key"});
  EXPECT_EQ(errors_of(R"({"listeners": [{"port": 1}, {"port": 1, "port": 2}]})"),
            Errors{"listeners[1].port: duplicate key"});
  EXPECT_EQ(errors_of(R"({"log": {}, "log": {}})"), Errors{"log: duplicate key"});
}

TEST(Config, TopLevelMustBeAnObject) {
  for (const char* text : {"[]", "42", "\"x\"", "null", "true"}) {
    EXPECT_EQ(errors_of(text), Errors{"config: the top level must be a JSON object"}) << text;
  }
}

TEST(Config, UnknownKeysNameTheirPath) {
  EXPECT_EQ(errors_of(R"({"bogus": 1})"), Errors{"bogus: unknown key"});
  EXPECT_EQ(errors_of(R"({"listeners": [{"address": "127.0.0.1", "bogus": 1}]})"),
            Errors{"listeners[0].bogus: unknown key"});
  EXPECT_EQ(errors_of(R"({"network": {"max_conections": 5}})"),
            Errors{"network.max_conections: unknown key"});
  EXPECT_EQ(errors_of(R"({"services": [{"name": "a", "ring": 4096}]})"),
            Errors{"services[0].ring: unknown key"});
  EXPECT_EQ(errors_of(R"({"routes": [{"respond": {"stauts": 200}}]})"),
            Errors{"routes[0].respond.stauts: unknown key"});
  EXPECT_EQ(errors_of(R"({"admin": {"user": "www"}})"), Errors{"admin.user: unknown key"});
  EXPECT_EQ(errors_of(R"({"log": {"error": "stderr"}})"), Errors{"log.error: unknown key"});
}

TEST(Config, UnknownKeyDoesNotHideOtherProblemsInTheSameObject) {
  EXPECT_EQ(errors_of(R"({"network": {"procesess": 3, "processes": 300}})"),
            (Errors{"network.procesess: unknown key",
                    "network.processes: must be an integer between 0 and 256"}));
}

TEST(Config, WrongTypesNameTheirPath) {
  const std::string body = "network.max_body_bytes: must be an integer between 0 and 1073741824";
  for (const char* v : {"\"1M\"", "1.5", "1e3", "-1", "true", "null", "[]", "{}"}) {
    EXPECT_EQ(errors_of(std::string(R"({"network": {"max_body_bytes": )") + v + "}}"), Errors{body})
        << v;
  }
  EXPECT_EQ(errors_of(R"({"network": []})"), Errors{"network: must be an object"});
  EXPECT_EQ(errors_of(R"({"admin": 1})"), Errors{"admin: must be an object"});
  EXPECT_EQ(errors_of(R"({"log": null})"), Errors{"log: must be an object"});
  EXPECT_EQ(errors_of(R"({"listeners": {}})"),
            Errors{"listeners: must be a non-empty array of objects"});
  EXPECT_EQ(errors_of(R"({"listeners": [1]})"), Errors{"listeners[0]: must be an object"});
  EXPECT_EQ(errors_of(R"({"listeners": [{"address": 1}]})"),
            Errors{"listeners[0].address: must be a string"});
  EXPECT_EQ(errors_of(R"({"listeners": [{"port": "80"}]})"),
            Errors{"listeners[0].port: must be an integer between 0 and 65535"});
  EXPECT_EQ(errors_of(R"({"services": {}})"), Errors{"services: must be an array of objects"});
  EXPECT_EQ(errors_of(R"({"services": ["app"]})"), Errors{"services[0]: must be an object"});
  EXPECT_EQ(errors_of(R"({"services": [{"name": 7}]})"),
            Errors{"services[0].name: must be a string"});
  EXPECT_EQ(errors_of(R"({"routes": "x"})"), Errors{"routes: must be an array of objects"});
  EXPECT_EQ(errors_of(R"({"routes": [{"path": 1, "respond": {}}]})"),
            Errors{"routes[0].path: must be a string"});
  EXPECT_EQ(errors_of(R"({"routes": [{"host": [], "respond": {}}]})"),
            Errors{"routes[0].host: must be a string"});
  EXPECT_EQ(errors_of(R"({"routes": [{"respond": "ok"}]})"),
            Errors{"routes[0].respond: must be an object"});
  EXPECT_EQ(errors_of(R"({"routes": [{"respond": {"body": 1}}]})"),
            Errors{"routes[0].respond.body: must be a string"});
  EXPECT_EQ(errors_of(R"({"routes": [{"service": 1}]})"),
            Errors{"routes[0].service: must be a string"});
  EXPECT_EQ(errors_of(R"({"admin": {"socket": false}})"), Errors{"admin.socket: must be a string"});
  EXPECT_EQ(errors_of(R"({"log": {"format": 3}})"),
            Errors{R"(log.format: must be one of "combined", "json")"});
  EXPECT_EQ(errors_of(R"({"log": {"access": 0}})"), Errors{"log.access: must be a string"});
}

// Every numeric setting: its bounds are accepted, one past them is not.
TEST(Config, NumericRangesAreEnforcedAtBothEnds) {
  struct Case {
    std::string prefix;  // JSON up to the value
    std::string suffix;  // JSON after it
    std::string path;
    uint64_t min;
    uint64_t max;
  };
  auto net = [](std::string key, uint64_t min, uint64_t max) {
    return Case{R"({"network": {")" + key + "\": ", "}}", "network." + key, min, max};
  };
  auto svc = [](std::string key, uint64_t min, uint64_t max) {
    return Case{R"({"services": [{"name": "s", ")" + key + "\": ", "}]}", "services[0]." + key, min,
                max};
  };
  const std::vector<Case> cases = {
      net("processes", 0, 256),
      net("max_connections", 1, 1000000),
      net("keepalive_timeout_ms", 1, 3600000),
      net("request_timeout_ms", 1, 3600000),
      net("send_timeout_ms", 1, 3600000),
      net("max_header_bytes", 1024, 1048576),
      net("max_body_bytes", 0, 1073741824),
      svc("processes", 1, 256),
      svc("timeout_ms", 1, 3600000),
      Case{R"({"listeners": [{"port": )", "}]}", "listeners[0].port", 0, 65535},
      Case{R"({"routes": [{"respond": {"status": )", "}}]}", "routes[0].respond.status", 200, 599},
  };
  for (const Case& c : cases) {
    auto text = [&](uint64_t v) { return c.prefix + std::to_string(v) + c.suffix; };
    const Errors range{c.path + ": must be an integer between " + std::to_string(c.min) + " and " +
                       std::to_string(c.max)};
    EXPECT_EQ(errors_of(text(c.min)), Errors{}) << text(c.min);
    EXPECT_EQ(errors_of(text(c.max)), Errors{}) << text(c.max);
    EXPECT_EQ(errors_of(text(c.max + 1)), range) << text(c.max + 1);
    if (c.min > 0) {
      EXPECT_EQ(errors_of(text(c.min - 1)), range) << text(c.min - 1);
    }
  }
  // Beyond 64 bits the number is a float, still reported as out of range.
  EXPECT_EQ(errors_of(R"({"network": {"max_body_bytes": 99999999999999999999999}})"),
            Errors{"network.max_body_bytes: must be an integer between 0 and 1073741824"});
}

// A request head's encoding can be 2.25 times its text (many "a:" lines:
// proto::max_request_head_bytes), and it travels whole in one record of at
// most ring_bytes / 2 - 16: the smallest ring that always holds it is
// worker::min_ring_bytes (8 x max_header_bytes for a power of two), and
// the next smaller power of two is refused, naming the key and the minimum.
TEST(Config, RingsMustHoldTheLargestRequestHead) {
  // The tester's config: the default max_header_bytes and a 64 KiB ring.
  EXPECT_EQ(errors_of(R"({"services": [{"name": "app", "type": "echo", "ring_bytes": 65536}]})"),
            Errors{"services[0].ring_bytes: must be at least 131072 with "
                   "network.max_header_bytes 16384 (got 65536): a request head encodes to up "
                   "to 37207 bytes and must fit in one record of at most ring_bytes / 2 - 16"});
  EXPECT_TRUE(parse_config(R"({"services": [{"name": "app", "ring_bytes": 131072}]})").ok());
  EXPECT_EQ(errors_of(R"({"network": {"max_header_bytes": 1024},
                          "services": [{"name": "ok", "ring_bytes": 8192},
                                       {"name": "app", "ring_bytes": 4096}]})"),
            Errors{"services[1].ring_bytes: must be at least 8192 with "
                   "network.max_header_bytes 1024 (got 4096): a request head encodes to up "
                   "to 2647 bytes and must fit in one record of at most ring_bytes / 2 - 16"});
  // For every max_header_bytes, the minimum passes and half of it does not
  // (ring_bytes is a power of two, so half is the next smaller value; one
  // byte less is not a power of two).
  for (const uint64_t max : {1024u, 1500u, 3000u, 16384u, 65537u, 1048576u}) {
    const uint64_t min = worker::min_ring_bytes(max);
    auto text = [max](uint64_t ring) {
      return R"({"network": {"max_header_bytes": )" + std::to_string(max) +
             R"(}, "services": [{"name": "app", "ring_bytes": )" + std::to_string(ring) + "}]}";
    };
    EXPECT_EQ(errors_of(text(min)), Errors{}) << max;
    const Errors half = errors_of(text(min / 2));
    ASSERT_EQ(half.size(), 1u) << max;
    EXPECT_EQ(half[0].rfind("services[0].ring_bytes: must be at least " + std::to_string(min) +
                                " with network.max_header_bytes " + std::to_string(max) + " ",
                            0),
              0u)
        << half[0];
    EXPECT_EQ(errors_of(text(min - 1)),
              Errors{"services[0].ring_bytes: must be a power of two (got " +
                     std::to_string(min - 1) + ")"});
  }
}

TEST(Config, TargetLimitIsConfigurable) {
  EXPECT_EQ(valid(R"({"network": {"max_target_bytes": 256}})").network.max_target_bytes, 256u);
  EXPECT_EQ(errors_of(R"({"network": {"max_target_bytes": 255}})"),
            Errors{"network.max_target_bytes: must be an integer between 256 and 1048576"});
}

TEST(Config, RespondStatusMustBeFinal) {
  EXPECT_EQ(errors_of(R"({"routes": [{"respond": {"status": 101}}]})"),
            Errors{"routes[0].respond.status: must be an integer between 200 and 599"});
}

TEST(Config, RouteHostHasNoPort) {
  EXPECT_EQ(
      errors_of(R"({"routes": [{"host": "example.com:80", "respond": {"status": 200}}]})"),
      Errors{
          R"(routes[0].host: must be a host name without port (the port is ignored when matching; got "example.com:80"))"});
  EXPECT_TRUE(parse_config(R"({"routes": [{"host": "[::1]", "respond": {"status": 200}}]})").ok());
}

TEST(Config, RingBytesMustBeAPowerOfTwoInRange) {
  EXPECT_EQ(errors_of(R"({"services": [{"name": "app", "ring_bytes": 5000}]})"),
            Errors{"services[0].ring_bytes: must be a power of two (got 5000)"});
  EXPECT_EQ(errors_of(R"({"services": [{"name": "app", "ring_bytes": 2048}]})"),
            Errors{"services[0].ring_bytes: must be an integer between 4096 and 1073741824"});
  EXPECT_EQ(errors_of(R"({"services": [{"name": "app", "ring_bytes": 2147483648}]})"),
            Errors{"services[0].ring_bytes: must be an integer between 4096 and 1073741824"});
  EXPECT_EQ(
      valid(R"({"services": [{"name": "app", "ring_bytes": 131072}]})").services[0].ring_bytes,
      131072u);
}

TEST(Config, DanglingServiceReferenceNamesRouteAndService) {
  EXPECT_EQ(errors_of(R"({"services": [{"name": "app"}],
                          "routes": [{"path": "/healthz", "respond": {"body": "ok"}},
                                     {"path": "/", "service": "ap"}]})"),
            Errors{R"(routes[1].service: no service named "ap")"});
  EXPECT_EQ(errors_of(R"({"routes": [{"service": "app"}]})"),
            Errors{R"(routes[0].service: no service named "app")"});
}

TEST(Config, DuplicateServiceName) {
  ConfigResult r = parse_config(R"({"services": [{"name": "app"}, {"name": "app"}],
                                    "routes": [{"service": "app"}]})");
  EXPECT_EQ(r.errors, Errors{R"(services[1].name: duplicate service name "app")"});
  EXPECT_EQ(r.config.routes[0].service_index, 0);  // no second, cascading error
}

TEST(Config, ServiceNameRules) {
  const std::string rule =
      "services[0].name: must be 1 to 32 characters of A-Z, a-z, 0-9, '_' "
      "or '-' (got ";
  EXPECT_EQ(errors_of(R"({"services": [{}]})"), Errors{"services[0].name: is required"});
  EXPECT_EQ(errors_of(R"({"services": [{"name": ""}]})"), Errors{rule + "\"\")"});
  EXPECT_EQ(errors_of(R"({"services": [{"name": "my app"}]})"), Errors{rule + "\"my app\")"});
  EXPECT_EQ(errors_of(R"({"services": [{"name": "a\"b"}]})"), Errors{rule + R"("a\"b"))"});
  const std::string n32(32, 'n');
  EXPECT_EQ(errors_of(R"({"services": [{"name": ")" + n32 + "n\"}]}"),
            Errors{rule + "\"" + n32 + "n\")"});
  EXPECT_EQ(valid(R"({"services": [{"name": ")" + n32 + "\"}]}").services[0].name, n32);
}

TEST(Config, UnknownServiceType) {
  EXPECT_EQ(errors_of(R"({"services": [{"name": "a", "type": "php"}]})"),
            Errors{R"(services[0].type: must be one of "echo", "module", "proxy" (got "php"))"});
}

TEST(Config, ServiceSchedulingIsBatchOrNormal) {
  EXPECT_EQ(valid(R"({"services": [{"name": "a"}]})").services[0].scheduling, "batch");
  EXPECT_EQ(
      valid(R"({"services": [{"name": "a", "scheduling": "normal"}]})").services[0].scheduling,
      "normal");
  EXPECT_EQ(valid(R"({"services": [{"name": "a", "type": "proxy", "upstreams": ["127.0.0.1:1"],
                              "scheduling": "normal"}]})")
                .services[0]
                .scheduling,
            "normal");
  EXPECT_EQ(errors_of(R"({"services": [{"name": "a", "scheduling": "fifo"}]})"),
            Errors{R"(services[0].scheduling: must be one of "batch", "normal" (got "fifo"))"});
}

TEST(Config, NetworkSchedulingIsBatchOrNormal) {
  EXPECT_EQ(valid(R"({})").network.scheduling, "batch");
  EXPECT_EQ(valid(R"({"network": {"scheduling": "normal"}})").network.scheduling, "normal");
  EXPECT_EQ(errors_of(R"({"network": {"scheduling": "idle"}})"),
            Errors{R"(network.scheduling: must be one of "batch", "normal" (got "idle"))"});
  EXPECT_EQ(errors_of(R"({"network": {"scheduling": 1}})").size(), 1u);
}

TEST(Config, ProxyKeysAreCheckedAndNamed) {
  const ConfigResult ok = parse_config(
      R"({"services": [{"name": "api", "type": "proxy", "timeout_ms": 7000,
          "upstreams": ["127.0.0.1:9000", "[::1]:9001", "unix:/run/app.sock"],
          "balance": "least_conn", "keepalive": 8, "pipeline": 8, "pipeline_fast_ms": 20}]})");
  ASSERT_TRUE(ok.ok()) << ok.errors.front();
  const worker::ProxySettings& p = ok.config.services[0].proxy;
  EXPECT_EQ(p.upstreams.size(), 3u);
  EXPECT_EQ(p.balance, "least_conn");
  EXPECT_EQ(p.keepalive, 8u);
  EXPECT_EQ(p.pipeline, 8u);
  EXPECT_EQ(p.pipeline_fast_ms, 20u);
  EXPECT_EQ(valid(R"({"services": [{"name": "a", "type": "proxy", "upstreams": ["127.0.0.1:1"]}]})")
                .services[0]
                .proxy.pipeline,
            1u);  // one request per connection unless asked
  EXPECT_EQ(valid(R"({"services": [{"name": "a", "type": "proxy", "upstreams": ["127.0.0.1:1"]}]})")
                .services[0]
                .proxy.pipeline_fast_ms,
            5u);
  EXPECT_EQ(errors_of(R"({"services": [{"name": "a", "type": "proxy", "upstreams": ["127.0.0.1:1"],
                 "pipeline_fast_ms": 0}]})"),
            Errors{"services[0].pipeline_fast_ms: must be an integer between 1 and 3600000"});
  EXPECT_EQ(errors_of(R"({"services": [{"name": "a", "type": "proxy", "upstreams": ["127.0.0.1:1"],
                 "pipeline": 0}]})"),
            Errors{"services[0].pipeline: must be an integer between 1 and 64"});
  EXPECT_EQ(errors_of(R"({"services": [{"name": "a", "type": "proxy", "upstreams": ["127.0.0.1:1"],
                 "pipeline": 65}]})"),
            Errors{"services[0].pipeline: must be an integer between 1 and 64"});
  EXPECT_EQ(p.response_timeout_ms, 7000u);  // defaults to the service's timeout
  EXPECT_TRUE(p.host_header.keep());        // the client's Host unless asked
  for (const char* good : {"$upstream", "api.internal", "api.internal:8080", "10.0.0.1:80", "[::1]",
                           "[2001:db8::1]:443"}) {
    const ConfigResult r = parse_config(
        std::string(R"({"services": [{"name": "a", "type": "proxy", "upstreams": ["127.0.0.1:1"],
                 "host_header": ")") +
        good + "\"}]}");
    ASSERT_TRUE(r.ok()) << good << ": " << r.errors.front();
    EXPECT_EQ(r.config.services[0].proxy.host_header.value, good);
  }
  EXPECT_EQ(
      errors_of(R"({"services": [{"name": "a", "type": "proxy", "upstreams": ["127.0.0.1:1"],
                 "host_header": "a b"}]})"),
      Errors{
          R"(services[0].host_header: must be "" (the client's Host), "$upstream" or a host name, an IPv4 address or an IPv6 address in brackets like "[::1]", with an optional port (got "a b"))"});
  EXPECT_EQ(
      errors_of(R"({"services": [{"name": "a", "type": "proxy", "upstreams": ["127.0.0.1:1"],
                 "host_header": "api:0"}]})"),
      Errors{
          R"(services[0].host_header: must be "", "$upstream" or host[:port] with a port of 1 to 65535 (got "api:0"))"});
  EXPECT_EQ(errors_of(R"({"services": [{"name": "a", "type": "proxy", "upstreams": ["127.0.0.1:1"],
                 "host_header": ")" +
                      std::string(262, 'a') + "\"}]}"),
            Errors{"services[0].host_header: must be at most 261 bytes (got 262)"});
  for (const char* bad : {":80", "[::1", "::1", "api:", "$upstreams", "a\\r\\nX: y", "a b"}) {
    EXPECT_EQ(errors_of(std::string(R"({"services": [{"name": "a", "type": "proxy",
                 "upstreams": ["127.0.0.1:1"], "host_header": ")") +
                        bad + "\"}]}")
                  .size(),
              1u)
        << bad;
  }
  EXPECT_EQ(errors_of(R"({"services": [{"name": "a", "type": "proxy"}]})"),
            Errors{"services[0].upstreams: is required for a proxy service"});
  EXPECT_EQ(
      errors_of(R"({"services": [{"name": "a", "type": "proxy",
                 "upstreams": ["127.0.0.1:9000", "nohost", "h:70000"], "balance": "random"}]})"),
      (Errors{
          R"(services[0].upstreams[1]: must be "host:port" or "unix:/path": the port is required (got "nohost"))",
          R"(services[0].upstreams[2]: must be "host:port" or "unix:/path": the port must be 1 to 65535 (got "h:70000"))",
          R"(services[0].balance: must be one of "round_robin", "least_conn" (got "random"))"}));
  // Keys of another type are unknown here, and proxy keys elsewhere.
  EXPECT_EQ(errors_of(R"({"services": [{"name": "a", "type": "proxy",
                 "upstreams": ["127.0.0.1:1"], "path": "/x.so"}]})"),
            Errors{"services[0].path: unknown key"});
  EXPECT_EQ(errors_of(R"({"services": [{"name": "a", "type": "echo", "upstreams": []}]})"),
            Errors{"services[0].upstreams: unknown key"});
}

// Upstream strings that could never work are errors naming the entry, with
// what to write instead; a host name must resolve when the file is read.
TEST(Config, UpstreamsThatCannotWorkAreRefusedWithAHint) {
  auto error_for = [](std::string_view upstream) {
    std::string text = R"({"services": [{"name": "a", "type": "proxy", "upstreams": [")";
    text.append(upstream);
    text.append(R"("]}]})");
    const Errors e = errors_of(text);
    if (e.size() == 1) return e.front();
    std::string count = "(";
    count.append(std::to_string(e.size()));
    count.append(" errors)");
    return count;
  };
  EXPECT_EQ(error_for("http://127.0.0.1:9000"),
            R"(services[0].upstreams[0]: must be "host:port" or "unix:/path": no scheme (write)"
            R"( host:port or unix:/path; only HTTP is spoken) (got "http://127.0.0.1:9000"))");
  EXPECT_EQ(error_for(" 127.0.0.1:9000"),
            R"(services[0].upstreams[0]: must be "host:port" or "unix:/path": no spaces or)"
            R"( control characters (got " 127.0.0.1:9000"))");
  EXPECT_EQ(error_for("::1:80"), R"(services[0].upstreams[0]: must be "host:port" or)"
                                 R"( "unix:/path": an IPv6 address goes in brackets, as [::1]:80)"
                                 R"( (got "::1:80"))");
  EXPECT_EQ(error_for("127.0.0.1:80/api"),
            R"(services[0].upstreams[0]: must be "host:port" or "unix:/path": no path (the)"
            R"( request's own target is sent) (got "127.0.0.1:80/api"))");
  EXPECT_EQ(error_for("[zz]:80").find("in brackets"), error_for("::1:80").find("in brackets"));
  EXPECT_EQ(error_for("unix:").find("absolute path") != std::string::npos, true);
  const std::string unresolved = error_for("nosuchhost.invalid:80");
  EXPECT_TRUE(unresolved.starts_with(
      R"(services[0].upstreams[0]: host "nosuchhost.invalid" does not resolve)"))
      << unresolved;
  EXPECT_EQ(error_for("localhost:80"), "(0 errors)");
  EXPECT_EQ(error_for("[::1]:80"), "(0 errors)");
  EXPECT_EQ(error_for("unix:/run/app.sock"), "(0 errors)");
}

// The network process answers 504 at timeout_ms: a proxy timer set longer
// is an error; left out, it is clamped to timeout_ms.
TEST(Config, ProxyTimeoutsAreAtMostTheServiceTimeout) {
  EXPECT_EQ(errors_of(R"({"services": [{"name": "a", "type": "proxy", "timeout_ms": 2000,
                 "upstreams": ["127.0.0.1:1"], "response_timeout_ms": 30000,
                 "connect_timeout_ms": 2001}]})"),
            (Errors{"services[0].connect_timeout_ms: must be at most timeout_ms (2000): the "
                    "client gets 504 at timeout_ms first",
                    "services[0].response_timeout_ms: must be at most timeout_ms (2000): the "
                    "client gets 504 at timeout_ms first"}));
  const worker::ProxySettings p = valid(R"({"services": [{"name": "a", "type": "proxy",
                 "timeout_ms": 400, "upstreams": ["127.0.0.1:1"]}]})")
                                      .services[0]
                                      .proxy;
  EXPECT_EQ(p.connect_timeout_ms, 400u);  // the default 1000, clamped
  EXPECT_EQ(p.response_timeout_ms, 400u);
}

// Upgrades (WebSocket) are taken over by default, as HAProxy does; both keys
// are checked and named.
TEST(Config, ProxyUpgradeKeys) {
  const worker::ProxySettings d = valid(R"({"services": [{"name": "a", "type": "proxy",
                 "upstreams": ["127.0.0.1:1"]}]})")
                                      .services[0]
                                      .proxy;
  EXPECT_TRUE(d.upgrade);
  EXPECT_EQ(d.tunnel_idle_timeout_ms, 300000u);
  const worker::ProxySettings p = valid(R"({"services": [{"name": "a", "type": "proxy",
                 "upstreams": ["127.0.0.1:1"], "upgrade": false,
                 "tunnel_idle_timeout_ms": 1500}]})")
                                      .services[0]
                                      .proxy;
  EXPECT_FALSE(p.upgrade);
  EXPECT_EQ(p.tunnel_idle_timeout_ms, 1500u);
  EXPECT_EQ(errors_of(R"({"services": [{"name": "a", "type": "proxy",
                 "upstreams": ["127.0.0.1:1"], "upgrade": 1, "tunnel_idle_timeout_ms": 0}]})"),
            (Errors{"services[0].tunnel_idle_timeout_ms: must be an integer between 1 and 3600000",
                    "services[0].upgrade: must be true or false"}));
  EXPECT_EQ(errors_of(R"({"services": [{"name": "a", "upgrade": true}]})"),
            Errors{"services[0].upgrade: unknown key"});
}

TEST(Config, AMetricsRouteIsTrueAndAlone) {
  const ConfigResult ok = parse_config(R"({"routes": [{"path": "/metrics", "metrics": true}]})");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.config.routes[0].kind, worker::RouteSettings::Kind::metrics);
  EXPECT_EQ(errors_of(R"({"routes": [{"path": "/m", "metrics": false}]})"),
            Errors{R"(routes[0].metrics: must be true (a route that serves the metrics))"});
  EXPECT_EQ(
      errors_of(R"({"routes": [{"path": "/m", "metrics": true, "respond": {}}]})"),
      Errors{
          R"(routes[0]: a route needs exactly one of "respond", "service", "static" or "metrics")"});
}

TEST(Config, RouteNeedsExactlyOneOfRespondOrService) {
  EXPECT_EQ(
      errors_of(R"({"services": [{"name": "app"}],
                          "routes": [{"path": "/", "respond": {}, "service": "app"},
                                     {"path": "/x"}]})"),
      (Errors{
          R"(routes[0]: a route needs exactly one of "respond", "service", "static" or "metrics")",
          R"(routes[1]: a route needs exactly one of "respond", "service", "static" or "metrics")"}));
}

TEST(Config, RouteFields) {
  EXPECT_EQ(errors_of(R"({"routes": [{"path": "x", "respond": {}}]})"),
            Errors{R"(routes[0].path: must start with "/" (got "x"))"});
  EXPECT_EQ(errors_of(R"({"routes": [{"methods": "GET", "respond": {}}]})"),
            Errors{"routes[0].methods: must be an array of method names"});
  EXPECT_EQ(
      errors_of(R"({"routes": [{"methods": ["GET", "get", 1, ""], "respond": {}}]})"),
      (Errors{R"(routes[0].methods[1]: must be an uppercase method name like "GET" (got "get"))",
              R"(routes[0].methods[2]: must be an uppercase method name like "GET")",
              R"(routes[0].methods[3]: must be an uppercase method name like "GET" (got ""))"}));
  EXPECT_TRUE(valid(R"({"routes": [{"methods": [], "respond": {}}]})").routes[0].methods.empty());
}

// Routes match the normalized path without its query (proto/normalize_path.h),
// so a route path in any other form could never match: `check` says so.
TEST(Config, ARoutePathMustBeInNormalForm) {
  const auto error = [](std::string_view route_path) {
    json cfg = {{"routes", {{{"path", route_path}, {"respond", json::object()}}}}};
    const Errors errors = errors_of(cfg.dump());
    return errors.size() == 1 ? errors[0] : "errors: " + std::to_string(errors.size());
  };
  const std::string not_normal =
      R"(routes[0].path: must be in normal form (no "//", no "." or ".." segment, no )"
      R"(percent-escape): routes match the normalized request path, so this one never would)";
  EXPECT_EQ(error("/a//b"), not_normal + R"( (got "/a//b"))");
  EXPECT_EQ(error("/a/../b"), not_normal + R"( (got "/a/../b"))");
  EXPECT_EQ(error("/a/./b"), not_normal + R"( (got "/a/./b"))");
  EXPECT_EQ(error("/a/.."), not_normal + R"( (got "/a/.."))");
  EXPECT_EQ(error("/caf%C3%A9"), not_normal + R"( (got "/caf%C3%A9"))");
  const std::string query =
      R"(routes[0].path: must not contain "?" or "#": routes match the path without the query)";
  EXPECT_EQ(error("/a?b"), query + R"( (got "/a?b"))");
  EXPECT_EQ(error("/a#b"), query + R"( (got "/a#b"))");
  // (A NUL is refused before, as in every string: "must not contain a NUL byte".)
  for (std::string_view bad : {"/a\nb", "/a\tb", "/a\x7f", "/a\rb"}) {
    EXPECT_TRUE(error(bad).starts_with("routes[0].path: must not contain control characters"))
        << error(bad);
  }
  for (std::string_view fine : {"/", "/a", "/a/", "/a/b.c/", "/.well-known/x", "/a..b", "/a b"}) {
    EXPECT_EQ(valid(json{{"routes", {{{"path", fine}, {"respond", json::object()}}}}}.dump())
                  .routes[0]
                  .path,
              fine);
  }
}

TEST(Config, RespondChecks) {
  EXPECT_EQ(errors_of(R"({"routes": [{"respond": {"status": 204, "body": "x"}}]})"),
            Errors{"routes[0].respond.body: must be empty for status 204"});
  EXPECT_EQ(errors_of(R"({"routes": [{"respond": {"status": 304, "body": "x"}}]})"),
            Errors{"routes[0].respond.body: must be empty for status 304"});
  // RFC 9110 15.3.6: a 205 MUST NOT have content.
  EXPECT_EQ(errors_of(R"({"routes": [{"respond": {"status": 205, "body": "hello"}}]})"),
            Errors{"routes[0].respond.body: must be empty for status 205"});
  EXPECT_EQ(valid(R"({"routes": [{"respond": {"status": 205}}]})").routes[0].respond.status, 205);
  EXPECT_EQ(errors_of(R"({"routes": [{"respond": {"content_type": "text/plain\r\nX: y"}}]})"),
            Errors{"routes[0].respond.content_type: must not contain control characters"});
  EXPECT_EQ(valid(R"({"routes": [{"respond": {"status": 204}}]})").routes[0].respond.status, 204);
}

TEST(Config, ReuseportIsABooleanPerListener) {
  Config c = valid(R"({"listeners": [{"port": 1}, {"port": 2, "reuseport": true}]})");
  EXPECT_FALSE(c.listeners[0].reuseport);
  EXPECT_TRUE(c.listeners[1].reuseport);
  EXPECT_EQ(errors_of(R"({"listeners": [{"reuseport": 1}]})"),
            Errors{"listeners[0].reuseport: must be true or false"});
  EXPECT_EQ(errors_of(R"({"listeners": [{"reuseport": "yes"}]})"),
            Errors{R"(listeners[0].reuseport: must be true or false (got "yes"))"});
}

TEST(Config, BadAddressesAreRejected) {
  for (const char* a :
       {"localhost", "1.2.3", "256.0.0.1", "::g", "", " 127.0.0.1", "[::1]", "fe80::1%eth0"}) {
    EXPECT_EQ(errors_of(std::string(R"({"listeners": [{"address": ")") + a + "\"}]}"),
              Errors{std::string("listeners[0].address: must be an IPv4 or IPv6 address literal "
                                 "(got \"") +
                     a + "\")"})
        << a;
  }
  EXPECT_EQ(errors_of(R"({"listeners": [{"address": "127.0.0.1\u0000x"}]})").size(), 1u);
  for (const char* a : {"127.0.0.1", "0.0.0.0", "::", "::1", "fe80::1", "::ffff:10.0.0.1"}) {
    EXPECT_EQ(errors_of(std::string(R"({"listeners": [{"address": ")") + a + "\"}]}"), Errors{})
        << a;
  }
}

TEST(Config, DuplicateListeners) {
  EXPECT_EQ(errors_of(R"({"listeners": [{"address": "127.0.0.1", "port": 8080}, {}]})"),
            Errors{"listeners[1]: duplicate listener 127.0.0.1:8080 (same as listeners[0])"});
  EXPECT_EQ(errors_of(R"({"listeners": [{"address": "::1", "port": 80},
                                        {"address": "0:0::1", "port": 81},
                                        {"address": "0:0:0:0:0:0:0:1", "port": 80}]})"),
            Errors{"listeners[2]: duplicate listener [::1]:80 (same as listeners[0])"});
  // Port 0 means any free port: those never collide.
  EXPECT_EQ(valid(R"({"listeners": [{"port": 0}, {"port": 0}]})").listeners.size(), 2u);
}

TEST(Config, AdminModeAndSocket) {
  auto mode = [](const std::string& v) {
    return parse_config(R"({"admin": {"mode": )" + v + "}}");
  };
  EXPECT_EQ(mode("\"0600\"").config.admin.mode, 0600u);
  EXPECT_EQ(mode("\"644\"").config.admin.mode, 0644u);
  EXPECT_EQ(mode("\"0\"").config.admin.mode, 0u);
  EXPECT_EQ(mode("384").config.admin.mode, 0600u);  // an integer is the numeric mode
  EXPECT_EQ(mode("511").config.admin.mode, 0777u);
  const Errors bad{
      R"(admin.mode: must be an octal string like "0600" or an integer between 0 and 511)"};
  for (const char* v :
       {"\"0800\"", "\"rw\"", "\"\"", "\"01000\"", "\"00600\"", "512", "-1", "1.5", "null"}) {
    EXPECT_EQ(mode(v).errors, bad) << v;
  }
  // "" is how the admin socket is turned off.
  EXPECT_EQ(valid(R"({"admin": {"socket": ""}})").admin.socket, "");
  const std::string p107(107, 's');
  EXPECT_EQ(valid(R"({"admin": {"socket": ")" + p107 + "\"}}").admin.socket, p107);
  EXPECT_EQ(errors_of(R"({"admin": {"socket": ")" + p107 + "s\"}}"),
            Errors{R"(admin.socket: must be "" (no admin socket) or a path of at most 107 bytes)"});
  // What `serve` would refuse (AdminServer::open), `check` refuses too.
  for (std::string_view dir : {"run/", "/tmp/x/", ".", "..", "run/.", "run/.."}) {
    EXPECT_EQ(
        errors_of(json{{"admin", {{"socket", dir}}}}.dump()),
        Errors{"admin.socket: \"" + std::string(dir) + "\" names a directory, not a socket file"})
        << dir;
  }
  EXPECT_EQ(valid(R"({"admin": {"socket": "run/a.sock"}})").admin.socket, "run/a.sock");
}

TEST(Config, LogSettings) {
  EXPECT_EQ(valid(R"({"log": {"access": "stderr"}})").log.access, "stderr");
  EXPECT_EQ(errors_of(R"({"log": {"access": ""}})"),
            Errors{R"(log.access: must be "off", "stderr" or a file path)"});
  EXPECT_EQ(
      errors_of(R"({"log": {"level": "verbose"}})"),
      Errors{R"(log.level: must be one of "debug", "info", "warn", "error" (got "verbose"))"});
  EXPECT_EQ(errors_of(R"({"log": {"format": "xml"}})"),
            Errors{R"(log.format: must be one of "combined", "json" (got "xml"))"});
}

TEST(Config, AllErrorsAreReportedInOrder) {
  EXPECT_EQ(
      errors_of(R"({
    "listeners": [{"address": "localhost", "port": 70000}],
    "network": {"max_body_bytes": -1},
    "services": [{"name": "app", "ring_bytes": 5000}, {"name": "app"}],
    "routes": [{"service": "ap"}, {"path": "/x"}],
    "admin": {"mode": "999"},
    "log": {"level": "loud"},
    "extra": true
  })"),
      (Errors{
          "extra: unknown key",
          R"(listeners[0].address: must be an IPv4 or IPv6 address literal (got "localhost"))",
          "listeners[0].port: must be an integer between 0 and 65535",
          "network.max_body_bytes: must be an integer between 0 and 1073741824",
          "services[0].ring_bytes: must be a power of two (got 5000)",
          R"(services[1].name: duplicate service name "app")",
          R"(routes[0].service: no service named "ap")",
          R"(routes[1]: a route needs exactly one of "respond", "service", "static" or "metrics")",
          R"(admin.mode: must be an octal string like "0600" or an integer between 0 and 511)",
          R"(log.level: must be one of "debug", "info", "warn", "error" (got "loud"))",
      }));
}

TEST(Config, NestingDepthIsBounded) {
  auto arrays = [](size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_EQ(errors_of(arrays(64)), Errors{"config: the top level must be a JSON object"});
  EXPECT_EQ(errors_of(arrays(65)), Errors{"config: JSON nested deeper than 64 levels"});
  EXPECT_EQ(errors_of(R"({"log": )" + arrays(63) + "}"), Errors{"log: must be an object"});
  EXPECT_EQ(errors_of(arrays(1000000)), Errors{"config: JSON nested deeper than 64 levels"});
}

TEST(Config, LoadConfigFile) {
  EXPECT_EQ(load_config_file("/nonexistent-ringhttpd-dir/ringhttpd.json").errors,
            Errors{"config: cannot read /nonexistent-ringhttpd-dir/ringhttpd.json: No such file or "
                   "directory"});
  const std::string dir = ::testing::TempDir();
  EXPECT_EQ(load_config_file(dir).errors,
            Errors{"config: cannot read " + dir + ": not a regular file (a directory)"});

  const std::string path = dir + "ringhttpd_config_test.json";
  {
    std::ofstream out(path);
    out << R"({"listeners": [{"port": 9090}], "services": [{"name": "x"}],
               "routes": [{"service": "x"}]})";
  }
  ConfigResult r = load_config_file(path);
  ASSERT_EQ(r.errors, Errors{});
  ASSERT_EQ(r.config.listeners.size(), 1u);
  EXPECT_EQ(r.config.listeners[0].port, 9090);
  EXPECT_EQ(r.config.routes.at(0).service_index, 0);

  { std::ofstream(path) << "{\"network\": 1}"; }
  EXPECT_EQ(load_config_file(path).errors, Errors{"network: must be an object"});
  std::remove(path.c_str());
}

// A NUL ends the input for the JSON reader: "{}" NUL "garbage" would pass as
// "{}". Any NUL is refused, with its position (counted from 1).
TEST(Config, NulByteInTheTextIsRejectedWithItsPosition) {
  EXPECT_EQ(errors_of(std::string("{}\0garbage", 10)),
            Errors{"config: parse error at byte 3: NUL byte (a config is JSON text)"});
  EXPECT_EQ(errors_of(std::string("{\"log\": {\"level\": \"info\0\"}}", 27)),
            Errors{"config: parse error at byte 24: NUL byte (a config is JSON text)"});
  EXPECT_EQ(errors_of(std::string("\0", 1)),
            Errors{"config: parse error at byte 1: NUL byte (a config is JSON text)"});
  // The escape \u0000 is JSON text, not a NUL byte: the key decides.
  EXPECT_EQ(valid(R"({"routes": [{"respond": {"body": "a\u0000b"}}]})").routes[0].respond.body,
            std::string("a\0b", 3));
}

TEST(Config, KeyNamesInMessagesAreEscaped) {
  // A newline in a key must not forge a second error line, nor an escape
  // sequence reach the terminal; bytes >= 0x7f are spelled out too.
  EXPECT_EQ(errors_of("{\"x\\nconfig: forged\": 1}"), Errors{"x\\nconfig: forged: unknown key"});
  EXPECT_EQ(errors_of(R"({"network": {"\u001b[31mred": 1}})"),
            Errors{"network.\\x1b[31mred: unknown key"});
  EXPECT_EQ(errors_of(R"({"log": {"lev\u007fel\r\t\"\\é": 1}})"),
            Errors{R"(log.lev\x7fel\r\t\"\\\xc3\xa9: unknown key)"});
  EXPECT_EQ(errors_of(R"({"routes": [{"respond": {}, "a\nb": 1}]})"),
            Errors{"routes[0].a\\nb: unknown key"});
  // Paths built by the JSON reader (duplicate keys) are escaped as well.
  EXPECT_EQ(errors_of(R"({"x\ny": {"k": 1, "k": 2}})"),
            (Errors{"x\\ny.k: duplicate key", "x\\ny: unknown key"}));
  for (const std::string& e : errors_of(R"({"\u0000\u0085\u2028": {"\n": 1, "\n": 2}})")) {
    for (char ch : e) {
      EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << e;
    }
  }
}

TEST(Config, QuotedValuesInMessagesAreEscaped) {
  EXPECT_EQ(
      errors_of(R"({"log": {"level": "x\ny\u001b\u00ff"}})"),
      Errors{
          R"(log.level: must be one of "debug", "info", "warn", "error" (got "x\ny\x1b\xc3\xbf"))"});
  EXPECT_EQ(errors_of(R"({"routes": [{"service": "a\r\nb"}]})"),
            Errors{R"(routes[0].service: no service named "a\r\nb")"});
  EXPECT_EQ(
      errors_of(R"({"listeners": [{"address": "1.2.3.4\n"}]})"),
      Errors{R"(listeners[0].address: must be an IPv4 or IPv6 address literal (got "1.2.3.4\n"))"});
  EXPECT_EQ(errors_of(R"({"routes": [{"path": "x\u007f", "respond": {}}]})"),
            Errors{R"(routes[0].path: must start with "/" (got "x\x7f"))"});
}

// services[i].start_timeout_ms: any type of service, 10 s by default,
// refused out of range with the key named.
TEST(Config, AServiceIsGivenItsStartTimeout) {
  EXPECT_EQ(valid(R"({"services": [{"name": "s"}]})").services[0].start_timeout_ms, 10000u);
  const Config c = valid(R"({"services": [
      {"name": "e", "start_timeout_ms": 1},
      {"name": "p", "type": "proxy", "upstreams": ["127.0.0.1:9"], "start_timeout_ms": 3600000}]})");
  EXPECT_EQ(c.services[0].start_timeout_ms, 1u);
  EXPECT_EQ(c.services[1].start_timeout_ms, 3600000u);
  for (const char* bad : {"0", "3600001", "-1", "\"10\"", "1.5"}) {
    EXPECT_EQ(
        errors_of(std::string(R"({"services": [{"name": "s", "start_timeout_ms": )") + bad + "}]}"),
        Errors{"services[0].start_timeout_ms: must be an integer between 1 and 3600000"})
        << bad;
  }
}

TEST(Config, ParseErrorsQuoteInputEscaped) {
  // The parser's "last read" echo of the input: no raw control byte or DEL.
  Errors e = errors_of("{\"a\": \x7f\x1b}");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].rfind("config: parse error at byte ", 0), 0u) << e[0];
  for (char ch : e[0]) EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << e[0];
}

TEST(Config, NegativeZeroIsNotACountOrPort) {
  // A JSON -0 is an integer, and would read as 0 without this check.
  EXPECT_EQ(errors_of(R"({"network": {"processes": -0}})"),
            Errors{"network.processes: must be an integer between 0 and 256"});
  EXPECT_EQ(errors_of(R"({"network": {"max_body_bytes": -0}})"),
            Errors{"network.max_body_bytes: must be an integer between 0 and 1073741824"});
  EXPECT_EQ(errors_of(R"({"listeners": [{"port": -0}]})"),
            Errors{"listeners[0].port: must be an integer between 0 and 65535"});
  EXPECT_EQ(errors_of(R"({"services": [{"name": "s", "kill_after_ms": -0}]})"),
            Errors{"services[0].kill_after_ms: must be an integer between 0 and 3600000"});
  EXPECT_EQ(
      errors_of(R"({"admin": {"mode": -0}})"),
      Errors{R"(admin.mode: must be an octal string like "0600" or an integer between 0 and 511)"});
  EXPECT_EQ(valid(R"({"network": {"processes": 0}})").network.processes, 0);
}

// A number the JSON reader cannot hold stops the parse; the message names
// the key in the project's words, not the library's exception.
TEST(Config, NumberOverflowNamesItsKey) {
  EXPECT_EQ(errors_of(R"({"network": {"max_connections": 1e500}})"),
            Errors{"network.max_connections: number out of range"});
  EXPECT_EQ(errors_of(R"({"listeners": [{"port": 80}, {"port": -1e400}]})"),
            Errors{"listeners[1].port: number out of range"});
  EXPECT_EQ(errors_of(R"({"routes": [{"methods": ["GET", 1e999]}]})"),
            Errors{"routes[0].methods[1]: number out of range"});
  EXPECT_EQ(errors_of("1e500"), Errors{"config: number out of range"});
  EXPECT_EQ(errors_of(R"({"x\n": 1e500})"), Errors{"x\\n: number out of range"});
  for (const char* text : {R"({"network": {"max_connections": 1e500}})", R"({"a":})", "[1,",
                           "\"\\uD800\"", "{\"a\": 1, \"a\" 2}"}) {
    for (const std::string& e : errors_of(text)) {
      EXPECT_EQ(e.find("json.exception"), std::string::npos) << e;
    }
  }
}

TEST(Config, AdminSocketWithNulIsRejected) {
  EXPECT_EQ(errors_of(R"({"admin": {"socket": "run/a\u0000b.sock"}})"),
            Errors{R"(admin.socket: must not contain a NUL byte (got "run/a\x00b.sock"))"});
  EXPECT_EQ(errors_of(R"({"admin": {"socket": "\u0000"}})"),
            Errors{R"(admin.socket: must not contain a NUL byte (got "\x00"))"});
}

// Every text key refuses a NUL byte (libc and the kernel would read up to it:
// another file, another directory, another user); a fixed body may hold one.
TEST(Config, NulByteInAnyTextKeyIsRejectedNamingTheKey) {
  EXPECT_EQ(errors_of(R"({"log": {"access": "/tmp/acc\u0000.log"}})"),
            Errors{R"(log.access: must not contain a NUL byte (got "/tmp/acc\x00.log"))"});
  EXPECT_EQ(errors_of(R"({"routes": [{"path": "/a\u0000", "respond": {}}]})"),
            Errors{R"(routes[0].path: must not contain a NUL byte (got "/a\x00"))"});
  EXPECT_EQ(errors_of(R"({"routes": [{"path": "/", "static": {"root": "/tmp\u0000zz"}}]})"),
            Errors{R"(routes[0].static.root: must not contain a NUL byte (got "/tmp\x00zz"))"});
  EXPECT_EQ(errors_of(R"({"services": [{"name": "m", "type": "module", "path": "/x\u0000.so"}]})"),
            Errors{R"(services[0].path: must not contain a NUL byte (got "/x\x00.so"))"});
  EXPECT_EQ(
      errors_of(
          R"({"routes": [{"path": "/", "static": {"root": "/tmp", "index": ["i\u0000.x"]}}]})"),
      Errors{"routes[0].static.index[0]: must be a file name without '/' or a NUL byte"});
  EXPECT_EQ(errors_of(R"({"user": "no\u0000body"})"),
            Errors{R"(user: must not contain a NUL byte (got "no\x00body"))"});
  EXPECT_EQ(errors_of(R"({"services": [{"name": "p", "type": "proxy",)"
                      R"( "upstreams": ["unix:/a\u0000b"]}]})")
                .size(),
            1u);
  EXPECT_EQ(errors_of(R"({"routes": [{"path": "/", "respond": {"body": "a\u0000b"}}]})"), Errors{});
}

TEST(Config, RouteHostMustBeAHost) {
  auto host = [](const std::string& h) {
    return errors_of(R"({"routes": [{"host": ")" + h + R"(", "respond": {}}]})");
  };
  const std::string bad =
      R"(routes[0].host: must be a host name, an IPv4 address or an IPv6 address in brackets )"
      R"(like "[::1]" (got ")";
  const std::string port =
      R"(routes[0].host: must be a host name without port (the port is ignored when matching; )"
      R"(got ")";
  for (const char* h : {"example.com", "Example.COM", "a-b_c~d.example", "10.0.0.1", "[::1]",
                        "[fe80::1:2]", "xn--bcher-kva.example", "a%2Db", "!$&'()*+,;="}) {
    EXPECT_EQ(host(h), Errors{}) << h;
  }
  EXPECT_EQ(host("a\\r\\nb"), Errors{bad + R"(a\r\nb"))"});
  EXPECT_EQ(host("a\\nb"), Errors{bad + R"(a\nb"))"});
  EXPECT_EQ(host("a b"), Errors{bad + R"(a b"))"});
  EXPECT_EQ(
      host("a\\u0000b"),
      Errors{std::string(R"(routes[0].host: must not contain a NUL byte (got ")") + R"(a\x00b"))"});
  EXPECT_EQ(host("a\\tb"), Errors{bad + R"(a\tb"))"});
  EXPECT_EQ(host("a/b"), Errors{bad + R"(a/b"))"});
  EXPECT_EQ(host("user@a"), Errors{bad + R"(user@a"))"});
  EXPECT_EQ(host("caf\\u00e9"), Errors{bad + R"(caf\xc3\xa9"))"});
  EXPECT_EQ(host("a%2"), Errors{bad + R"(a%2"))"});
  EXPECT_EQ(host("::1"), Errors{bad + R"(::1"))"});
  EXPECT_EQ(host("[::g]"), Errors{bad + R"([::g]"))"});
  EXPECT_EQ(host("[::1\\u0000]"),
            Errors{std::string(R"(routes[0].host: must not contain a NUL byte (got ")") +
                   R"([::1\x00]"))"});
  EXPECT_EQ(host("[127.0.0.1]"), Errors{bad + R"([127.0.0.1]"))"});
  EXPECT_EQ(host("example.com:80"), Errors{port + R"(example.com:80"))"});
  EXPECT_EQ(host("10.0.0.1:8080"), Errors{port + R"(10.0.0.1:8080"))"});
  EXPECT_EQ(host("[::1]:443"), Errors{port + R"([::1]:443"))"});
  EXPECT_EQ(host("a b:80"), Errors{bad + R"(a b:80"))"});
}

// Only a regular file is read: a FIFO would block the open until a writer
// came, a device could be acted on.
TEST(Config, LoadConfigFileRefusesWhatIsNotARegularFile) {
  const std::string fifo = ::testing::TempDir() + "ringhttpd_config_test.fifo";
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(load_config_file(fifo).errors,
            Errors{"config: cannot read " + fifo + ": not a regular file (a FIFO)"});
  ::unlink(fifo.c_str());
  EXPECT_EQ(load_config_file("/dev/null").errors,
            Errors{"config: cannot read /dev/null: not a regular file (a device)"});
  EXPECT_EQ(load_config_file("/dev/zero").errors,
            Errors{"config: cannot read /dev/zero: not a regular file (a device)"});
  // A symlink to a regular file is read.
  const std::string file = ::testing::TempDir() + "ringhttpd_config_test_target.json";
  const std::string link = ::testing::TempDir() + "ringhttpd_config_test_link.json";
  { std::ofstream(file) << "{}"; }
  ::unlink(link.c_str());
  ASSERT_EQ(::symlink(file.c_str(), link.c_str()), 0);
  EXPECT_EQ(load_config_file(link).errors, Errors{});
  ::unlink(link.c_str());
  std::remove(file.c_str());
}

TEST(Config, LoadConfigFileEscapesThePath) {
  const std::string path = ::testing::TempDir() + "no\nsuch\x1b.json";
  EXPECT_EQ(load_config_file(path).errors,
            Errors{"config: cannot read " + ::testing::TempDir() +
                   "no\\nsuch\\x1b.json: No such file or directory"});
}

TEST(Config, EscapeText) {
  EXPECT_EQ(escape_text("plain ASCII ~!"), "plain ASCII ~!");
  EXPECT_EQ(escape_text(std::string("\0\x01\n\r\t\x7f\x80\xff\"\\", 10)),
            R"(\x00\x01\n\r\t\x7f\x80\xff\"\\)");
}

// The static route's cache keys and media types: defaults, values, ranges,
// and each bad type named by its key path.
TEST(Config, StaticCacheAndTypes) {
  Config c = valid(R"({"routes": [{"static": {"root": "/"}}]})");
  EXPECT_EQ(c.routes[0].static_files.cache_entries, 1000u);
  EXPECT_EQ(c.routes[0].static_files.cache_valid_ms, 1000u);
  EXPECT_TRUE(c.routes[0].static_files.types.empty());
  EXPECT_FALSE(c.routes[0].static_files.listing);  // 403 for a directory without an index
  EXPECT_TRUE(valid(R"({"routes": [{"static": {"root": "/", "listing": true}}]})")
                  .routes[0]
                  .static_files.listing);
  EXPECT_EQ(errors_of(R"({"routes": [{"static": {"root": "/", "listing": "yes"}}]})"),
            Errors{R"(routes[0].static.listing: must be true or false (got "yes"))"});
  c = valid(R"({"routes": [{"static": {"root": "/", "cache_entries": 0, "cache_valid_ms": 250,
      "types": {"WASM": "application/wasm", "txt": "text/plain; charset=utf-8"}}}]})");
  EXPECT_EQ(c.routes[0].static_files.cache_entries, 0u);
  EXPECT_EQ(c.routes[0].static_files.cache_valid_ms, 250u);
  EXPECT_EQ(c.routes[0].static_files.types,
            (std::map<std::string, std::string, std::less<>>{
                {"wasm", "application/wasm"}, {"txt", "text/plain; charset=utf-8"}}));
  EXPECT_EQ(errors_of(R"({"routes": [{"static": {"root": "/", "cache_entries": 1000001,
                         "cache_valid_ms": -1}}]})"),
            (Errors{"routes[0].static.cache_entries: must be an integer between 0 and 1000000",
                    "routes[0].static.cache_valid_ms: must be an integer between 0 and 3600000"}));
  EXPECT_EQ(errors_of(R"({"routes": [{"static": {"root": "/", "types": ["wasm"]}}]})"),
            Errors{"routes[0].static.types: must be an object of extension -> media type"});
  EXPECT_EQ(
      errors_of(R"({"routes": [{"static": {"root": "/", "types": {".js": "a/b", "a/b": "c/d",
          "": "x/y", "ok": 1, "bad": "text/x\r\nSet-Cookie: a", "empty": "",
          "Txt": "text/a", "tXt": "text/b"}}}]})"),
      (Errors{
          R"(routes[0].static.types.: must be an extension without the dot (a token without '.' or '/'))",
          R"(routes[0].static.types..js: must be an extension without the dot (a token without '.' or '/'))",
          R"(routes[0].static.types.a/b: must be an extension without the dot (a token without '.' or '/'))",
          R"(routes[0].static.types.bad: must be a media type without control characters (got "text/x\r\nSet-Cookie: a"))",
          R"(routes[0].static.types.empty: must be a media type without control characters (got ""))",
          R"(routes[0].static.types.ok: must be a media type without control characters)",
          R"(routes[0].static.types.tXt: repeats an extension (extensions are compared case-insensitively))"}));
}

// The network watchdog: 0 turns it off; otherwise a few seconds at least,
// since an idle network process's loop runs once a second.
TEST(Config, NetworkWatchdogIsOffOrAtLeastThreeSeconds) {
  EXPECT_EQ(valid(R"({"network": {"watchdog_ms": 0}})").network.watchdog_ms, 0u);
  EXPECT_EQ(valid(R"({"network": {"watchdog_ms": 3000}})").network.watchdog_ms, 3000u);
  EXPECT_EQ(valid(R"({"network": {"watchdog_ms": 3600000}})").network.watchdog_ms, 3600000u);
  const Errors too_short{
      "network.watchdog_ms: must be 0 (off) or at least 3000 (a network process's loop may be "
      "quiet for a second)"};
  EXPECT_EQ(errors_of(R"({"network": {"watchdog_ms": 1}})"), too_short);
  EXPECT_EQ(errors_of(R"({"network": {"watchdog_ms": 2999}})"), too_short);
  EXPECT_EQ(errors_of(R"({"network": {"watchdog_ms": 3600001}})"),
            Errors{"network.watchdog_ms: must be an integer between 0 and 3600000"});
}

}  // namespace
}  // namespace ringhttpd::master
