// The Prometheus exposition (worker/metrics.h) from a segment filled by
// hand: exact lines of a few metrics, cumulative histogram buckets, label
// escaping, duplicate route labels, an all-zero segment, and the whole text
// accepted by a real parser (Debian's python3-prometheus-client, run as
// /usr/bin/python3 on the output; skipped only if it cannot be imported).
#include "worker/metrics.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "shm/segment.h"

namespace ringhttpd::worker {
namespace {

using shm::ProcessState;
using shm::Segment;
using shm::SegmentSpec;

// A segment with a unique name, removed at the end of the test.
class TestSegment {
 public:
  explicit TestSegment(const SegmentSpec& spec, const std::string& tag) {
    name_ = "ringhttpd-test-metrics-" + std::to_string(::getpid()) + "-" + tag;
    Segment::remove(name_);
    std::string error;
    segment_ = Segment::create(name_, spec, error);
    EXPECT_TRUE(segment_) << error;
  }
  ~TestSegment() { Segment::remove(name_); }
  Segment& operator*() { return *segment_; }
  Segment* operator->() { return &*segment_; }
  explicit operator bool() const { return segment_.has_value(); }
  // The supervisor's fields of the header (the test is its writer).
  shm::SegmentHeader& header() { return segment_->header_for_writer(); }

 private:
  std::string name_;
  std::optional<Segment> segment_;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const std::string& l : lines_of(text)) {
    if (l == line) return true;
  }
  return false;
}

// The samples of one metric name (the part before '{' or ' '), in order.
std::vector<std::string> samples_of(const std::string& text, const std::string& name) {
  std::vector<std::string> out;
  for (const std::string& l : lines_of(text)) {
    if (l.starts_with(name + "{") || l.starts_with(name + " ")) out.push_back(l);
  }
  return out;
}

std::string temp_file(const std::string& contents) {
  char path[] = "/tmp/ringhttpd-metrics-test-XXXXXX";
  const int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

bool parser_available() {
  return std::system("/usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1") == 0;
}

// Runs the real parser on `text`. On success the output is one line per
// family ("name type samples"), then one line per sample label `service`
// or `route` as JSON (to check that escaped values come back as they were).
struct Parsed {
  bool ok = false;
  std::string output;  // the parser's message when !ok
};

Parsed parse_with_prometheus_client(const std::string& text) {
  const std::string script = temp_file(
      "import sys, json\n"
      "from prometheus_client.parser import text_string_to_metric_families as p\n"
      "for f in p(sys.stdin.read()):\n"
      "    print(f.name, f.type, len(f.samples))\n"
      "    for s in f.samples:\n"
      "        for k in ('service', 'route'):\n"
      "            if k in s.labels: print(k, json.dumps(s.labels[k]))\n");
  const std::string input = temp_file(text);
  const std::string command = "/usr/bin/python3 " + script + " < " + input + " 2>&1";
  Parsed r;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return r.output = "popen failed", r;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) r.output.append(buf, n);
  const int status = ::pclose(pipe);
  r.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  ::unlink(script.c_str());
  ::unlink(input.c_str());
  return r;
}

// Every family has one HELP and one TYPE line, before its samples, and its
// samples are not interleaved with another family's.
void expect_well_formed(const std::string& text) {
  ASSERT_FALSE(text.empty());
  ASSERT_EQ(text.back(), '\n');
  std::map<std::string, std::string> types;  // family -> type
  std::set<std::string> closed;              // families whose samples ended
  std::string current;
  for (const std::string& l : lines_of(text)) {
    ASSERT_FALSE(l.empty());
    if (l.starts_with("# HELP ")) {
      const std::string name = l.substr(7, l.find(' ', 7) - 7);
      EXPECT_EQ(types.count(name), 0u) << "a second HELP for " << name;
      if (!current.empty()) closed.insert(current);
      current = name;
      continue;
    }
    if (l.starts_with("# TYPE ")) {
      const std::string rest = l.substr(7);
      const std::string name = rest.substr(0, rest.find(' '));
      EXPECT_EQ(name, current) << l;
      types[name] = rest.substr(rest.find(' ') + 1);
      continue;
    }
    const std::string name = l.substr(0, l.find_first_of("{ "));
    std::string family = name;
    if (types[current] == "histogram") {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        if (name.ends_with(suffix)) family = name.substr(0, name.size() - std::strlen(suffix));
      }
    }
    EXPECT_EQ(family, current) << "a sample outside its family: " << l;
    EXPECT_EQ(closed.count(family), 0u) << l;
  }
}

constexpr int64_t kNow = 100000;

MetricsNames names() {
  MetricsNames n;
  n.services = {"app", "app", "we\"ird\\na\nme"};
  n.routes = {"/healthz", "example.com/api/", "/healthz"};
  return n;
}

// 2 network processes, 3 service processes (app x2, then the oddly named
// one), 3 routes; generation 3 after 2 good reloads and a failed one.
void fill(TestSegment& seg) {
  seg.header().reloads_ok = 2;
  seg.header().reloads_failed = 1;
  seg.header().handoffs_closed = 4;
  seg.header().takeovers_refused = 6;
  shm::ProcessSlot& n0 = seg->slot(0);
  n0.pid = 101;
  n0.state = ProcessState::ready;
  n0.started_at_ms = kNow - 2500;
  n0.heartbeat_ms = kNow - 300;
  n0.requests = 10;
  n0.connections = 4;
  n0.accepted = 7;
  n0.bytes_in = 1000;
  n0.bytes_out = 2000;
  n0.ring_full = 1;
  n0.access_lines_lost = 12;
  n0.responses[1] = 8;
  n0.responses[4] = 2;
  n0.latency_buckets[0][0] = 3;   // <= 0.5 ms
  n0.latency_buckets[0][2] = 2;   // <= 2.5 ms
  n0.latency_buckets[0][11] = 1;  // > 1 s
  n0.latency_sum_us[0] = 1234567;
  n0.latency_count[0] = 6;
  n0.latency_buckets[1][5] = 4;  // <= 25 ms
  n0.latency_sum_us[1] = 40000;
  n0.latency_count[1] = 4;
  shm::ProcessSlot& n1 = seg->slot(1);
  n1.pid = 102;
  n1.state = ProcessState::starting;
  n1.responses[1] = 5;
  n1.latency_buckets[0][0] = 1;
  n1.latency_sum_us[0] = 100;
  n1.latency_count[0] = 1;
  seg->slot(2).state = ProcessState::ready;
  seg->slot(2).pid = 103;
  seg->slot(3).state = ProcessState::ready;
  seg->slot(3).pid = 104;
  seg->slot(3).restarts = 2;
  seg->slot(3).heartbeat_ms = kNow - 7250;  // a loop stuck for 7.25 s
  seg->slot(3).inflight = 1;
  seg->slot(3).requests = 9;
  seg->slot(3).responses[0] = 1;  // a tunnel's 101, counted by its proxy process
  seg->slot(3).responses[3] = 1;  // a tunnel's 403
  seg->slot(3).access_lines_lost = 3;
  seg->route_counters(0, 0)[1] = 4;
  seg->route_counters(1, 0)[1] = 5;
  seg->route_counters(0, 1)[4] = 2;
}

SegmentSpec spec() { return SegmentSpec{3, 2, {4096, 4096, 4096}, 3}; }

TEST(Metrics, ExactLines) {
  TestSegment seg(spec(), "exact");
  ASSERT_TRUE(seg);
  fill(seg);
  const std::string text = format_metrics(*seg, names(), kNow);
  expect_well_formed(text);
  const std::vector<std::string> expected = {
      "# HELP ringhttpd_generation The generation these metrics are from (1, then +1 per reload).",
      "# TYPE ringhttpd_generation gauge",
      "ringhttpd_generation 3",
      "# TYPE ringhttpd_reloads_total counter",
      R"(ringhttpd_reloads_total{result="ok"} 2)",
      R"(ringhttpd_reloads_total{result="failed"} 1)",
      "# TYPE ringhttpd_handoffs_closed_total counter",
      "ringhttpd_handoffs_closed_total 4",
      "# TYPE ringhttpd_takeovers_refused_total counter",
      "ringhttpd_takeovers_refused_total 6",
      "# TYPE ringhttpd_process_up gauge",
      R"(ringhttpd_process_up{role="network",index="0"} 1)",
      R"(ringhttpd_process_up{role="network",index="1"} 0)",
      R"(ringhttpd_process_up{role="service",service="app",index="0"} 1)",
      R"(ringhttpd_process_up{role="service",service="app",index="1"} 1)",
      R"(ringhttpd_process_up{role="service",service="we\"ird\\na\nme",index="0"} 0)",
      R"(ringhttpd_process_uptime_seconds{role="network",index="0"} 2.5)",
      R"(ringhttpd_process_uptime_seconds{role="network",index="1"} 0)",
      "# TYPE ringhttpd_process_heartbeat_age_seconds gauge",
      R"(ringhttpd_process_heartbeat_age_seconds{role="network",index="0"} 0.3)",
      R"(ringhttpd_process_heartbeat_age_seconds{role="network",index="1"} 0)",
      R"(ringhttpd_process_heartbeat_age_seconds{role="service",service="app",index="1"} 7.25)",
      R"(ringhttpd_process_restarts_total{role="service",service="app",index="1"} 2)",
      R"(ringhttpd_process_requests_total{role="network",index="0"} 10)",
      R"(ringhttpd_process_requests_total{role="service",service="app",index="1"} 9)",
      R"(ringhttpd_process_inflight{role="service",service="app",index="1"} 1)",
      "# TYPE ringhttpd_connections_open gauge",
      R"(ringhttpd_connections_open{role="network",index="0"} 4)",
      "# TYPE ringhttpd_connections_accepted_total counter",
      R"(ringhttpd_connections_accepted_total{role="network",index="0"} 7)",
      R"(ringhttpd_bytes_received_total{role="network",index="0"} 1000)",
      R"(ringhttpd_bytes_sent_total{role="network",index="0"} 2000)",
      R"(ringhttpd_access_log_lines_lost_total{role="network",index="0"} 12)",
      R"(ringhttpd_ring_full_total{role="network",index="0"} 1)",
      R"(ringhttpd_access_log_lines_lost_total{role="service",service="app",index="1"} 3)",
      R"(ringhttpd_responses_total{class="1xx"} 1)",  // service slots count too (tunnels)
      R"(ringhttpd_responses_total{class="2xx"} 13)",
      R"(ringhttpd_responses_total{class="4xx"} 1)",
      R"(ringhttpd_responses_total{class="5xx"} 2)",
      R"(ringhttpd_route_responses_total{route="/healthz",class="2xx"} 9)",
      R"(ringhttpd_route_responses_total{route="example.com/api/",class="5xx"} 2)",
      R"x(ringhttpd_route_responses_total{route="/healthz (routes[2])",class="2xx"} 0)x",
      "# TYPE ringhttpd_request_duration_seconds histogram",
      R"(ringhttpd_request_duration_seconds_sum{path="fast"} 1.234667)",  // 1234567 + 100 us
  };
  for (const std::string& line : expected) {
    EXPECT_TRUE(has_line(text, line)) << "missing: " << line << "\n" << text;
  }
  // Network-only metrics have no service rows.
  for (const char* name : {"ringhttpd_connections_open", "ringhttpd_connections_accepted_total",
                           "ringhttpd_bytes_received_total", "ringhttpd_bytes_sent_total",
                           "ringhttpd_ring_full_total"}) {
    EXPECT_EQ(samples_of(text, name).size(), 2u) << name;
  }
  EXPECT_EQ(samples_of(text, "ringhttpd_process_up").size(), 5u);
  EXPECT_EQ(samples_of(text, "ringhttpd_route_responses_total").size(),
            15u);  // every route, every class
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  TestSegment seg(spec(), "buckets");
  ASSERT_TRUE(seg);
  fill(seg);
  const std::string text = format_metrics(*seg, names(), kNow);
  const std::vector<std::string> fast = {
      R"(ringhttpd_request_duration_seconds_bucket{path="fast",le="0.0005"} 4)",
      R"(ringhttpd_request_duration_seconds_bucket{path="fast",le="0.001"} 4)",
      R"(ringhttpd_request_duration_seconds_bucket{path="fast",le="0.0025"} 6)",
      R"(ringhttpd_request_duration_seconds_bucket{path="fast",le="0.005"} 6)",
      R"(ringhttpd_request_duration_seconds_bucket{path="fast",le="0.01"} 6)",
      R"(ringhttpd_request_duration_seconds_bucket{path="fast",le="0.025"} 6)",
      R"(ringhttpd_request_duration_seconds_bucket{path="fast",le="0.05"} 6)",
      R"(ringhttpd_request_duration_seconds_bucket{path="fast",le="0.1"} 6)",
      R"(ringhttpd_request_duration_seconds_bucket{path="fast",le="0.25"} 6)",
      R"(ringhttpd_request_duration_seconds_bucket{path="fast",le="0.5"} 6)",
      R"(ringhttpd_request_duration_seconds_bucket{path="fast",le="1"} 6)",
      R"(ringhttpd_request_duration_seconds_bucket{path="fast",le="+Inf"} 7)",
      R"(ringhttpd_request_duration_seconds_sum{path="fast"} 1.234667)",
      R"(ringhttpd_request_duration_seconds_count{path="fast"} 7)",
  };
  std::vector<std::string> got;
  for (const std::string& l : lines_of(text)) {
    if (l.starts_with("ringhttpd_request_duration_seconds") &&
        l.find("path=\"fast\"") != std::string::npos) {
      got.push_back(l);
    }
  }
  EXPECT_EQ(got, fast) << text;
  EXPECT_TRUE(
      has_line(text, R"(ringhttpd_request_duration_seconds_bucket{path="service",le="0.01"} 0)"));
  EXPECT_TRUE(
      has_line(text, R"(ringhttpd_request_duration_seconds_bucket{path="service",le="0.025"} 4)"));
  EXPECT_TRUE(
      has_line(text, R"(ringhttpd_request_duration_seconds_bucket{path="service",le="+Inf"} 4)"));
  EXPECT_TRUE(has_line(text, R"(ringhttpd_request_duration_seconds_sum{path="service"} 0.04)"));
  EXPECT_TRUE(has_line(text, R"(ringhttpd_request_duration_seconds_count{path="service"} 4)"));
}

TEST(Metrics, ACountBehindItsBucketsStaysConsistent) {
  // A reader between a bucket's increment and the count's: +Inf and _count
  // are both the larger, so +Inf == _count and the buckets never decrease.
  TestSegment seg(SegmentSpec{1, 1, {}, 0}, "torn");
  ASSERT_TRUE(seg);
  seg->slot(0).latency_buckets[1][0] = 3;
  seg->slot(0).latency_count[1] = 2;
  const std::string text = format_metrics(*seg, {}, kNow);
  EXPECT_TRUE(
      has_line(text, R"(ringhttpd_request_duration_seconds_bucket{path="service",le="+Inf"} 3)"));
  EXPECT_TRUE(has_line(text, R"(ringhttpd_request_duration_seconds_count{path="service"} 3)"));
}

TEST(Metrics, LabelEscaping) {
  EXPECT_EQ(escape_label_value("plain /api/"), "plain /api/");
  EXPECT_EQ(escape_label_value("a\\b"), "a\\\\b");
  EXPECT_EQ(escape_label_value("say \"hi\""), "say \\\"hi\\\"");
  EXPECT_EQ(escape_label_value("two\nlines"), "two\\nlines");
  EXPECT_EQ(escape_label_value("\\n"), "\\\\n");  // a backslash then n, not a newline
}

TEST(Metrics, NamesFromTheSettings) {
  std::vector<ServiceSettings> services(2);
  services[0].name = "app";
  services[0].processes = 2;
  services[1].name = "img";
  services[1].processes = 1;
  std::vector<RouteSettings> routes(2);
  routes[0].path = "/healthz";
  routes[1].host = "example.com";
  routes[1].path = "/api/";
  const MetricsNames n = metrics_names(services, routes);
  EXPECT_EQ(n.services, (std::vector<std::string>{"app", "app", "img"}));
  EXPECT_EQ(n.routes, (std::vector<std::string>{"/healthz", "example.com/api/"}));
}

TEST(Metrics, AnEmptySegmentIsValidExposition) {
  TestSegment seg(SegmentSpec{1, 1, {4096}, 2}, "empty");
  ASSERT_TRUE(seg);
  const std::string text = format_metrics(*seg, {}, kNow);  // no names at all
  expect_well_formed(text);
  EXPECT_TRUE(has_line(text, "ringhttpd_generation 1"));
  EXPECT_TRUE(has_line(text, R"(ringhttpd_reloads_total{result="ok"} 0)"));
  EXPECT_TRUE(has_line(text, "ringhttpd_handoffs_closed_total 0"));
  EXPECT_TRUE(has_line(text, "ringhttpd_takeovers_refused_total 0"));
  EXPECT_TRUE(has_line(text, R"(ringhttpd_process_up{role="service",service="#0",index="0"} 0)"));
  EXPECT_TRUE(
      has_line(text, R"(ringhttpd_route_responses_total{route="routes[1]",class="5xx"} 0)"));
  EXPECT_TRUE(
      has_line(text, R"(ringhttpd_request_duration_seconds_bucket{path="fast",le="+Inf"} 0)"));
  EXPECT_TRUE(has_line(text, R"(ringhttpd_request_duration_seconds_sum{path="fast"} 0)"));
  if (!parser_available()) GTEST_SKIP() << "/usr/bin/python3 cannot import prometheus_client";
  const Parsed parsed = parse_with_prometheus_client(text);
  EXPECT_TRUE(parsed.ok) << parsed.output << "\n--- the text:\n" << text;
}

// A child can rewrite the header's counts and offsets (n_service
// 0xffffffff made the supervisor reserve 206 GB and abort): the exposition
// comes from the segment's own copy of its layout and does not change.
TEST(Metrics, ALayoutRewrittenInTheSharedHeaderChangesNothing) {
  TestSegment seg(spec(), "corrupt");
  ASSERT_TRUE(seg);
  fill(seg);
  const std::string before = format_metrics(*seg, names(), kNow);
  shm::SegmentHeader& h = seg.header();
  auto* table =
      reinterpret_cast<shm::RingEntry*>(reinterpret_cast<std::byte*>(&h) + h.rings_offset);
  table[0].offset = 0x100000000000ull;
  h.n_network = 0xffffffffu;
  h.n_service = 0xffffffffu;
  h.n_routes = 0xffffffffu;
  h.generation = 77;
  h.slots_offset = h.rings_offset = h.routes_offset = 1ull << 44;
  EXPECT_EQ(format_metrics(*seg, names(), kNow), before);
}

TEST(Metrics, TheRealParserAcceptsIt) {
  if (!parser_available()) {
    GTEST_SKIP() << "/usr/bin/python3 cannot import prometheus_client "
                    "(apt-get install python3-prometheus-client; scripts/setup does)";
  }
  TestSegment seg(spec(), "parser");
  ASSERT_TRUE(seg);
  fill(seg);
  const std::string text = format_metrics(*seg, names(), kNow);
  const Parsed parsed = parse_with_prometheus_client(text);
  ASSERT_TRUE(parsed.ok) << parsed.output << "\n--- the text:\n" << text;
  // prometheus_client names a counter family without "_total".
  const std::vector<std::string> out = lines_of(parsed.output);
  auto has = [&](const std::string& l) {
    return std::find(out.begin(), out.end(), l) != out.end();
  };
  EXPECT_TRUE(has("ringhttpd_generation gauge 1")) << parsed.output;
  EXPECT_TRUE(has("ringhttpd_reloads counter 2")) << parsed.output;
  EXPECT_TRUE(has("ringhttpd_process_up gauge 5")) << parsed.output;
  EXPECT_TRUE(has("ringhttpd_ring_full counter 2")) << parsed.output;
  EXPECT_TRUE(has("ringhttpd_route_responses counter 15")) << parsed.output;
  EXPECT_TRUE(has("ringhttpd_request_duration_seconds histogram 28")) << parsed.output;
  // Escaped label values come back as they were.
  EXPECT_TRUE(has(R"(service "we\"ird\\na\nme")")) << parsed.output;
  EXPECT_TRUE(has(R"x(route "/healthz (routes[2])")x")) << parsed.output;
}

}  // namespace
}  // namespace ringhttpd::worker
