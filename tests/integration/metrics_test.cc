// The metrics of a running server: `ringhttpd ctl metrics` after a few
// requests, a reload and a failed reload, and a `"metrics": true` route,
// checked line by line and accepted by a real parser (Debian's python3-prometheus-client, as
// /usr/bin/python3; the parse is skipped only when it cannot be imported).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/server_harness.h"

namespace ringhttpd::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

std::string config(const std::string& socket, const std::string& service = "app") {
  return json{{"listeners", {{{"address", "127.0.0.1"}, {"port", 0}}}},
              {"network", {{"processes", 2}}},
              {"services", {{{"name", "app"}, {"processes", 2}}}},
              {"routes",
               {{{"path", "/healthz"}, {"respond", {{"status", 200}, {"body", "ok\n"}}}},
                {{"path", "/"}, {"service", service}}}},
              {"admin", {{"socket", socket}}}}
      .dump();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The value of the sample whose name and labels are exactly `series`
// (`name{labels}` or `name`), or nullopt.
std::optional<double> value_of(const std::string& text, const std::string& series) {
  for (const std::string& l : lines_of(text)) {
    if (l.starts_with(series + " ")) return std::stod(l.substr(series.size() + 1));
  }
  return std::nullopt;
}

// The sum of every sample of `name` whose labels contain `with`.
double sum_of(const std::string& text, const std::string& name, const std::string& with) {
  double sum = 0;
  for (const std::string& l : lines_of(text)) {
    if (l.starts_with(name + "{") && l.find(with) != std::string::npos) {
      sum += std::stod(l.substr(l.rfind(' ') + 1));
    }
  }
  return sum;
}

bool parser_available() {
  return std::system("/usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1") == 0;
}

// Runs prometheus_client's parser on `text`: "" when it accepts it, else
// its message.
std::string parse_error(const std::string& text) {
  TempFile input(text);
  const std::string command =
      "/usr/bin/python3 -c 'import sys; from prometheus_client.parser import "
      "text_string_to_metric_families as p; list(p(sys.stdin.read()))' < " +
      input.path() + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return "popen failed";
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  const int status = ::pclose(pipe);
  if (exit_code(status) == 0) return "";
  return out.empty() ? "the parser failed without a message" : out;
}

std::string ctl_metrics(const std::string& sock) {
  std::string out;
  EXPECT_EQ(exit_code(run_binary({"ctl", "--socket", sock, "metrics"}, out)), 0) << out;
  return out;
}

TEST(MetricsCtl, AfterRequestsAndReloadsTheRealParserAcceptsIt) {
  WorkDir dir;
  const std::string sock = dir.path() + "/run/admin.sock";
  Server server(config(sock));
  ASSERT_TRUE(server.ready()) << server.log();

  // Generation 1.
  std::string text = ctl_metrics(sock);
  EXPECT_EQ(value_of(text, "ringhttpd_generation"), 1) << text;
  EXPECT_EQ(value_of(text, R"(ringhttpd_reloads_total{result="ok"})"), 0) << text;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(http_get(server.port(), "/healthz"));
    ASSERT_TRUE(http_get(server.port(), "/before"));
  }

  // A reload, then requests to generation 2.
  std::string out;
  ASSERT_EQ(exit_code(run_binary({"ctl", "--socket", sock, "reload"}, out)), 0) << out;
  for (int i = 0; i < 3; ++i) {
    const auto fast = http_get(server.port(), "/healthz");
    ASSERT_TRUE(fast);
    EXPECT_EQ(fast->status, 200);
    const auto echo = http_get(server.port(), "/after?i=" + std::to_string(i));
    ASSERT_TRUE(echo);
    EXPECT_EQ(echo->status, 200);
  }
  // A service process counts a request once its answer is written: the
  // last one may still be on its way when the client has the response.
  for (const auto deadline = Clock::now() + 5s; Clock::now() < deadline;) {
    text = ctl_metrics(sock);
    if (sum_of(text, "ringhttpd_process_requests_total", R"(role="service")") >= 3 &&
        value_of(text, R"(ringhttpd_responses_total{class="2xx"})") >= 6) {
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(value_of(text, "ringhttpd_generation"), 2) << text;
  EXPECT_EQ(value_of(text, R"(ringhttpd_reloads_total{result="ok"})"), 1) << text;
  EXPECT_EQ(value_of(text, R"(ringhttpd_reloads_total{result="failed"})"), 0) << text;
  // Generation 2's own counters: the requests made to generation 1 are not in them.
  EXPECT_EQ(sum_of(text, "ringhttpd_process_requests_total", R"(role="service")"), 3) << text;
  for (const std::string series :
       {R"(ringhttpd_process_up{role="network",index="0"})",
        R"(ringhttpd_process_up{role="network",index="1"})",
        R"(ringhttpd_process_up{role="service",service="app",index="0"})",
        R"(ringhttpd_process_up{role="service",service="app",index="1"})"}) {
    EXPECT_EQ(value_of(text, series), 1) << series << "\n" << text;
  }
  EXPECT_EQ(
      value_of(text, R"(ringhttpd_process_restarts_total{role="service",service="app",index="0"})"),
      0);
  EXPECT_EQ(value_of(text, R"(ringhttpd_responses_total{class="2xx"})"), 6) << text;
  EXPECT_EQ(value_of(text, R"(ringhttpd_responses_total{class="5xx"})"), 0) << text;
  EXPECT_EQ(value_of(text, R"(ringhttpd_route_responses_total{route="/healthz",class="2xx"})"), 3)
      << text;
  EXPECT_EQ(value_of(text, R"(ringhttpd_route_responses_total{route="/",class="2xx"})"), 3) << text;
  EXPECT_EQ(value_of(text, R"(ringhttpd_route_responses_total{route="/",class="5xx"})"), 0) << text;
  EXPECT_EQ(value_of(text, R"(ringhttpd_request_duration_seconds_count{path="fast"})"), 3) << text;
  EXPECT_EQ(
      value_of(text, R"(ringhttpd_request_duration_seconds_bucket{path="service",le="+Inf"})"), 3)
      << text;
  EXPECT_EQ(sum_of(text, "ringhttpd_connections_accepted_total", R"(role="network")"), 6) << text;
  if (parser_available()) {
    const std::string error = parse_error(text);
    EXPECT_EQ(error, "") << "\n--- the text:\n" << text;
  } else {
    std::cout << "[ SKIPPED  ] the real parser: /usr/bin/python3 cannot import prometheus_client\n";
  }

  // A failed reload is counted; generation 2 keeps serving.
  server.rewrite_config(config(sock, "ap"));
  out.clear();
  EXPECT_EQ(exit_code(run_binary({"ctl", "--socket", sock, "reload"}, out)), 1) << out;
  text = ctl_metrics(sock);
  EXPECT_EQ(value_of(text, "ringhttpd_generation"), 2) << text;
  EXPECT_EQ(value_of(text, R"(ringhttpd_reloads_total{result="ok"})"), 1) << text;
  EXPECT_EQ(value_of(text, R"(ringhttpd_reloads_total{result="failed"})"), 1) << text;

  // --json: the answer line, the text in "metrics".
  std::string raw;
  ASSERT_EQ(exit_code(run_binary({"ctl", "--socket", sock, "metrics", "--json"}, raw)), 0) << raw;
  const json answer = json::parse(raw);
  EXPECT_EQ(answer["ok"], true);
  EXPECT_EQ(answer["generation"], 2);
  ASSERT_TRUE(answer["metrics"].is_string());
  EXPECT_NE(answer["metrics"].get<std::string>().find("# TYPE ringhttpd_responses_total counter\n"),
            std::string::npos);
  if (!parser_available()) GTEST_SKIP() << "/usr/bin/python3 cannot import prometheus_client";
}

// ---- the route {"path": "/metrics", "metrics": true} ----------------------------

std::string route_config() {
  return json{
      {"listeners", {{{"address", "127.0.0.1"}, {"port", 0}}}},
      {"network", {{"processes", 2}}},
      {"services", {{{"name", "app"}, {"processes", 1}}}},
      {"routes", {{{"path", "/metrics"}, {"metrics", true}}, {{"path", "/"}, {"service", "app"}}}}}
      .dump();
}

TEST(MetricsRoute, ANetworkProcessServesTheExposition) {
  Server server(route_config());
  ASSERT_TRUE(server.ready()) << server.log();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(http_get(server.port(), "/x"));
  std::optional<Client::Response> r;
  for (const auto deadline = Clock::now() + 5s; Clock::now() < deadline;) {
    r = http_get(server.port(), "/metrics");
    ASSERT_TRUE(r);
    if (value_of(r->body, R"(ringhttpd_route_responses_total{route="/",class="2xx"})") >= 3) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(value_of(r->body, "ringhttpd_generation"), 1) << r->body;
  EXPECT_EQ(value_of(r->body, R"(ringhttpd_route_responses_total{route="/",class="2xx"})"), 3)
      << r->body;
  EXPECT_EQ(value_of(r->body, R"(ringhttpd_process_up{role="service",service="app",index="0"})"), 1)
      << r->body;
  if (parser_available()) {
    EXPECT_EQ(parse_error(r->body), "") << "\n--- the text:\n" << r->body;
  }

  // After a reload the route reads the new generation.
  std::string out;
  ASSERT_EQ(
      exit_code(run_binary({"ctl", "--socket", server.workdir().admin_socket(), "reload"}, out)), 0)
      << out;
  r = http_get(server.port(), "/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(value_of(r->body, "ringhttpd_generation"), 2) << r->body;
  EXPECT_EQ(value_of(r->body, R"(ringhttpd_reloads_total{result="ok"})"), 1) << r->body;
  if (!parser_available()) GTEST_SKIP() << "/usr/bin/python3 cannot import prometheus_client";
  EXPECT_EQ(parse_error(r->body), "") << "\n--- the text:\n" << r->body;
}

// An answer the parser decides (400 here) is timed from when it was decided:
// its slot once had no start, and each such answer added the machine's
// uptime to the histogram. A connection over max_connections gets a 503
// before any request: counted as accepted and as a 5xx response.
TEST(MetricsRoute, ErrorAnswersAndRefusedConnectionsAreCountedAsTheyHappened) {
  json cfg = json::parse(route_config());
  cfg["network"] = {{"processes", 1}, {"max_connections", 1}};
  Server server(cfg.dump());
  ASSERT_TRUE(server.ready()) << server.log();
  {
    Client bad(server.port());
    ASSERT_TRUE(bad.send("GET / HTTP/1.1\r\n\r\n"));  // no Host
    auto r = bad.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_TRUE(bad.closed_by_peer());
  }
  // The one connection the process takes; each 503 met on the way (the 400's
  // connection may linger a moment) is counted.
  int refused = 0;
  std::unique_ptr<Client> held;
  for (const auto deadline = Clock::now() + 5s; Clock::now() < deadline;) {
    held = std::make_unique<Client>(server.port());
    ASSERT_TRUE(held->send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto r = held->read_response();
    ASSERT_TRUE(r);
    if (r->status == 200) break;
    ++refused;
    std::this_thread::sleep_for(10ms);
  }
  {
    Client over(server.port());
    auto r = over.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
    ++refused;
  }
  held.reset();
  std::optional<Client::Response> r;
  for (const auto deadline = Clock::now() + 5s; Clock::now() < deadline; ++refused) {
    r = http_get(server.port(), "/metrics");  // 503 until the held connection is gone
    ASSERT_TRUE(r);
    if (r->status == 200) break;
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(r->status, 200) << server.log();
  EXPECT_EQ(value_of(r->body, R"(ringhttpd_responses_total{class="4xx"})"), 1) << r->body;
  EXPECT_EQ(value_of(r->body, R"(ringhttpd_responses_total{class="5xx"})"), refused) << r->body;
  EXPECT_EQ(sum_of(r->body, "ringhttpd_connections_accepted_total", "network"), 3 + refused)
      << r->body;
  EXPECT_EQ(value_of(r->body, R"(ringhttpd_request_duration_seconds_count{path="fast"})"), 1)
      << r->body;
  EXPECT_LT(value_of(r->body, R"(ringhttpd_request_duration_seconds_sum{path="fast"})"), 1.0)
      << r->body;
}

}  // namespace
}  // namespace ringhttpd::testing
