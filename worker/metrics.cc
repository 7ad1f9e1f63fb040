// The Prometheus text exposition of a generation's segment (see metrics.h).
//
// Every family is written whole (HELP, TYPE, then its samples) before the
// next one, as the format requires. Series are stable: every process, every
// status class and every route is written, zero or not, so that a scrape
// never sees a series appear (rate() needs its first sample to be 0).
#include "worker/metrics.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <set>
#include <type_traits>

namespace ringhttpd::worker {
namespace {

// A shared field as its writer wrote it: a relaxed atomic load. Aligned
// loads of up to 8 bytes are never torn on x86-64 anyway; atomic_ref says so
// to the compiler and to a reader. (C++20 has no atomic_ref<const T>.)
template <class T>
T load(const T& field) {
  static_assert(std::is_trivially_copyable_v<T>);
  return std::atomic_ref<T>(const_cast<T&>(field)).load(std::memory_order_relaxed);
}

constexpr std::array<const char*, 5> kClasses = {"1xx", "2xx", "3xx", "4xx", "5xx"};
constexpr std::array<const char*, 2> kPaths = {"fast", "service"};

// `units` / `per` as a decimal without trailing zeros: 500 us -> "0.0005",
// 1000000 us -> "1", 1500 ms -> "1.5". Exact (no floating point).
std::string decimal(uint64_t units, uint64_t per, int digits) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%" PRIu64 ".%0*" PRIu64, units / per, digits, units % per);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

std::string seconds_from_us(uint64_t us) { return decimal(us, 1000000, 6); }
std::string seconds_from_ms(uint64_t ms) { return decimal(ms, 1000, 3); }

class Writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;  // constant text: no backslash, no newline
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // `labels` is the inside of the braces, already escaped ("" = none).
  void sample(std::string_view name, std::string_view labels, std::string_view value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void sample(std::string_view name, std::string_view labels, uint64_t value) {
    sample(name, labels, std::to_string(value));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string label(std::string_view name, std::string_view value) {
  std::string s(name);
  s += "=\"";
  s += escape_label_value(value);
  s += '"';
  return s;
}

// One process of the segment and the labels that name it.
struct Process {
  const shm::ProcessSlot* slot;
  bool network;
  std::string labels;
};

std::vector<Process> processes(const shm::Segment& segment, const MetricsNames& names) {
  // The counts are the segment's private copy (Segment::header()): a child
  // that writes the shared header cannot size anything here.
  const uint32_t n_network = segment.header().n_network;
  const uint32_t n_service = segment.header().n_service;
  std::vector<Process> out;
  out.reserve(size_t{n_network} + n_service);
  // Roles and indexes follow from the slot's position (segment.h), not from
  // the slot's identity fields: a slot not taken yet still has its series.
  for (uint32_t i = 0; i < n_network; ++i) {
    out.push_back({&segment.slot(i), true,
                   label("role", "network") + "," + label("index", std::to_string(i))});
  }
  std::vector<std::string> service(n_service);
  for (uint32_t s = 0; s < n_service; ++s) {
    if (s < names.services.size()) {
      service[s] = names.services[s];
    } else {
      // (Not "#" + to_string(s): GCC 12 warns falsely there, -Wrestrict.)
      service[s] = std::to_string(s);
      service[s].insert(service[s].begin(), '#');
    }
    // The index within its service's pool: the processes of a service are
    // consecutive, so count the earlier ones with the same name.
    uint32_t index = 0;
    for (uint32_t j = s; j > 0 && service[j - 1] == service[s]; --j) ++index;
    out.push_back({&segment.slot(n_network + s), false,
                   label("role", "service") + "," + label("service", service[s]) + "," +
                       label("index", std::to_string(index))});
  }
  return out;
}

std::vector<std::string> route_labels(uint32_t n_routes, const MetricsNames& names) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (uint32_t r = 0; r < n_routes; ++r) {
    const std::string where = "routes[" + std::to_string(r) + "]";
    std::string l = r < names.routes.size() ? names.routes[r] : where;
    if (!seen.insert(l).second) {
      l += " (" + where + ")";
      seen.insert(l);
    }
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char ch : value) {
    switch (ch) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string route_label(const RouteSettings& route) { return route.host + route.path; }

MetricsNames metrics_names(const std::vector<ServiceSettings>& services,
                           const std::vector<RouteSettings>& routes) {
  MetricsNames names;
  for (const ServiceSettings& s : services) {
    for (int i = 0; i < s.processes; ++i) names.services.push_back(s.name);
  }
  for (const RouteSettings& r : routes) names.routes.push_back(route_label(r));
  return names;
}

std::string format_metrics(const shm::Segment& segment, const MetricsNames& names, int64_t now_ms) {
  const shm::SegmentShape& h = segment.header();
  const std::vector<Process> procs = processes(segment, names);
  Writer w;

  w.family("ringhttpd_generation", "gauge",
           "The generation these metrics are from (1, then +1 per reload).");
  w.sample("ringhttpd_generation", "", h.generation);
  w.family("ringhttpd_reloads_total", "counter",
           "Reloads since the server started, by result (ok: the new generation serves).");
  const shm::SupervisorCounters sup = segment.supervisor_counters();
  w.sample("ringhttpd_reloads_total", "result=\"ok\"", sup.reloads_ok);
  w.sample("ringhttpd_reloads_total", "result=\"failed\"", sup.reloads_failed);
  w.family("ringhttpd_handoffs_closed_total", "counter",
           "Connections handed over by a draining generation that the serving one had no room "
           "for (closed with a FIN).");
  w.sample("ringhttpd_handoffs_closed_total", "", sup.handoffs_closed);
  w.family("ringhttpd_takeovers_refused_total", "counter",
           "Upgraded connections no process of their service could take (answered 503).");
  w.sample("ringhttpd_takeovers_refused_total", "", sup.takeovers_refused);

  // ---- per process ----
  struct PerProcess {
    const char* name;
    const char* type;
    const char* help;
    bool network_only;
    std::string (*value)(const shm::ProcessSlot&, int64_t now_ms);
  };
  static const PerProcess kPerProcess[] = {
      {"ringhttpd_process_up", "gauge", "1 if the process is ready, else 0.", false,
       [](const shm::ProcessSlot& s, int64_t) {
         return std::string(load(s.state) == shm::ProcessState::ready ? "1" : "0");
       }},
      {"ringhttpd_process_uptime_seconds", "gauge",
       "Seconds since the slot's current process started (0 when no process holds it).", false,
       [](const shm::ProcessSlot& s, int64_t now) {
         const uint64_t started = load(s.started_at_ms);
         const bool held = load(s.state) != shm::ProcessState::empty && load(s.pid) != 0;
         const uint64_t ms = held && started != 0 && now > static_cast<int64_t>(started)
                                 ? static_cast<uint64_t>(now) - started
                                 : 0;
         return seconds_from_ms(ms);
       }},
      {"ringhttpd_process_heartbeat_age_seconds", "gauge",
       "Seconds since the process's event loop last ran; a healthy process runs it at least "
       "once a second (0 when no process holds the slot).",
       false,
       [](const shm::ProcessSlot& s, int64_t now) {
         const uint64_t beat = load(s.heartbeat_ms);
         const bool held = load(s.state) != shm::ProcessState::empty && load(s.pid) != 0;
         const uint64_t ms = held && beat != 0 && now > static_cast<int64_t>(beat)
                                 ? static_cast<uint64_t>(now) - beat
                                 : 0;
         return seconds_from_ms(ms);
       }},
      {"ringhttpd_process_restarts_total", "counter",
       "Processes the slot lost (crashed: replaced, or not in a draining generation or a stop) in "
       "this generation.",
       false, [](const shm::ProcessSlot& s, int64_t) { return std::to_string(load(s.restarts)); }},
      {"ringhttpd_process_requests_total", "counter", "Requests the slot's processes answered.",
       false, [](const shm::ProcessSlot& s, int64_t) { return std::to_string(load(s.requests)); }},
      {"ringhttpd_process_inflight", "gauge", "Requests queued to or being served by the process.",
       false, [](const shm::ProcessSlot& s, int64_t) { return std::to_string(load(s.inflight)); }},
      {"ringhttpd_connections_open", "gauge", "Client connections open (network processes).", true,
       [](const shm::ProcessSlot& s, int64_t) { return std::to_string(load(s.connections)); }},
      {"ringhttpd_connections_accepted_total", "counter",
       "Client connections accepted or adopted from an older generation (network processes).", true,
       [](const shm::ProcessSlot& s, int64_t) { return std::to_string(load(s.accepted)); }},
      {"ringhttpd_bytes_received_total", "counter", "Bytes read from clients (network processes).",
       true, [](const shm::ProcessSlot& s, int64_t) { return std::to_string(load(s.bytes_in)); }},
      {"ringhttpd_bytes_sent_total", "counter", "Bytes written to clients (network processes).",
       true, [](const shm::ProcessSlot& s, int64_t) { return std::to_string(load(s.bytes_out)); }},
      {"ringhttpd_access_log_lines_lost_total", "counter",
       "Access log lines lost to a failed write (a full disk); the requests were answered.", false,
       [](const shm::ProcessSlot& s, int64_t) {
         return std::to_string(load(s.access_lines_lost));
       }},
      {"ringhttpd_ring_full_total", "counter",
       "Requests refused with 503 because every ring of the service's pool was full (network "
       "processes).",
       true, [](const shm::ProcessSlot& s, int64_t) { return std::to_string(load(s.ring_full)); }},
  };
  for (const PerProcess& m : kPerProcess) {
    w.family(m.name, m.type, m.help);
    for (const Process& p : procs) {
      if (m.network_only && !p.network) continue;
      w.sample(m.name, p.labels, m.value(*p.slot, now_ms));
    }
  }
  // Ring depths: bytes waiting for each service process (requests) and for
  // the network processes to take from it (responses), summed over the
  // network processes.
  w.family("ringhttpd_tunnels_open", "gauge",
           "Client connections taken over (upgrades through the proxy) and still open (service "
           "processes).");
  for (const Process& p : procs) {
    if (!p.network) w.sample("ringhttpd_tunnels_open", p.labels, load(p.slot->connections));
  }
  w.family("ringhttpd_ring_queued_bytes", "gauge",
           "Bytes published into a service process's rings and not yet consumed, by direction.");
  const uint32_t networks = h.n_network;
  for (const Process& p : procs) {
    if (p.network) continue;
    const uint32_t s = static_cast<uint32_t>(p.slot - &segment.slot(networks));
    uint64_t queued[2] = {0, 0};
    for (uint32_t n = 0; n < networks; ++n) {
      queued[0] += segment.ring_used(n, s, shm::Direction::request);
      queued[1] += segment.ring_used(n, s, shm::Direction::response);
    }
    w.sample("ringhttpd_ring_queued_bytes", p.labels + ",direction=\"request\"",
             std::to_string(queued[0]));
    w.sample("ringhttpd_ring_queued_bytes", p.labels + ",direction=\"response\"",
             std::to_string(queued[1]));
  }

  // ---- responses, summed over every process: the network processes',
  // and the answers proxy processes wrote on connections they took over ----
  std::array<uint64_t, 5> by_class{};
  for (const Process& p : procs) {
    for (size_t c = 0; c < by_class.size(); ++c) by_class[c] += load(p.slot->responses[c]);
  }
  w.family("ringhttpd_responses_total", "counter",
           "Responses written, by status class (upgrades through the proxy included: 101).");
  for (size_t c = 0; c < by_class.size(); ++c) {
    w.sample("ringhttpd_responses_total", label("class", kClasses[c]), by_class[c]);
  }

  const uint32_t n_network = h.n_network;
  const uint32_t n_routes = h.n_routes;
  const std::vector<std::string> routes = route_labels(n_routes, names);
  w.family("ringhttpd_route_responses_total", "counter",
           "Responses written, by route (host and path prefix) and status class.");
  for (uint32_t r = 0; r < n_routes; ++r) {
    std::array<uint64_t, 5> sum{};
    for (uint32_t n = 0; n < n_network; ++n) {
      const uint64_t* row = segment.route_counters(n, r);
      for (size_t c = 0; c < sum.size(); ++c) sum[c] += load(row[c]);
    }
    const std::string route = label("route", routes[r]) + ",";
    for (size_t c = 0; c < sum.size(); ++c) {
      w.sample("ringhttpd_route_responses_total", route + label("class", kClasses[c]), sum[c]);
    }
  }

  // ---- latency histogram, summed over the network processes ----
  w.family("ringhttpd_request_duration_seconds", "histogram",
           "Request latency as the network processes measure it, by path (fast: answered by the "
           "network process itself; service: through a service process).");
  for (size_t path = 0; path < kPaths.size(); ++path) {
    std::array<uint64_t, shm::kLatencyBuckets> buckets{};
    uint64_t sum_us = 0, count = 0;
    for (const Process& p : procs) {
      if (!p.network) continue;
      for (size_t b = 0; b < buckets.size(); ++b)
        buckets[b] += load(p.slot->latency_buckets[path][b]);
      sum_us += load(p.slot->latency_sum_us[path]);
      count += load(p.slot->latency_count[path]);
    }
    const std::string pl = label("path", kPaths[path]);
    uint64_t cumulative = 0;
    for (size_t b = 0; b + 1 < buckets.size(); ++b) {
      cumulative += buckets[b];
      w.sample("ringhttpd_request_duration_seconds_bucket",
               pl + ",le=\"" + seconds_from_us(shm::kLatencyBoundsUs[b]) + "\"", cumulative);
    }
    cumulative += buckets.back();
    // The writer bumps a bucket and the count apart: a reader between the
    // two would see +Inf != _count. Both are the larger of the two, so the
    // histogram stays consistent (+Inf == _count, buckets non-decreasing).
    count = std::max(count, cumulative);
    w.sample("ringhttpd_request_duration_seconds_bucket", pl + ",le=\"+Inf\"", count);
    w.sample("ringhttpd_request_duration_seconds_sum", pl, seconds_from_us(sum_us));
    w.sample("ringhttpd_request_duration_seconds_count", pl, count);
  }
  return w.take();
}

}  // namespace ringhttpd::worker
