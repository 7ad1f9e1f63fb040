// The Prometheus text exposition (format 0.0.4) of one generation, read from
// its shared-memory segment: the scoreboard (one slot per process), the
// responses by route, and the supervisor's reload counters in the header.
// Pure: it reads the segment (relaxed atomic loads, each field as its one
// writer writes it) and formats; no syscall, no allocation beyond the text.
// The number of processes and routes comes from the segment's private copy
// of its layout, never from the shared header a child can write.
// The admin command `metrics` (the supervisor) and a `"metrics": true` route
// (a network process) both call it. The metric list is in docs/operations.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shm/segment.h"
#include "worker/settings.h"

namespace ringhttpd::worker {

// The exposition's Content-Type.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

struct MetricsNames {
  // Per service process (0-based among service processes, segment order):
  // its service's name. A missing entry is labelled "#<index>".
  std::vector<std::string> services;
  // Per route index: a label (route_label()). A missing entry is labelled
  // "routes[<i>]"; a label equal to an earlier one gets " (routes[<i>])"
  // appended, so that every route is its own series.
  std::vector<std::string> routes;
};

// A route's label: its host, if set, then its path ("example.com/api/", "/").
std::string route_label(const RouteSettings& route);
// The names of a generation from its settings (services in config order,
// each repeated for its processes; routes in config order).
MetricsNames metrics_names(const std::vector<ServiceSettings>& services,
                           const std::vector<RouteSettings>& routes);

// The exposition text. `now_ms` is CLOCK_MONOTONIC milliseconds (the clock
// of ProcessSlot::started_at_ms), for the processes' uptime.
std::string format_metrics(const shm::Segment& segment, const MetricsNames& names, int64_t now_ms);

// A label value escaped for the text format: backslash, double quote and
// newline become \\, \" and \n.
std::string escape_label_value(std::string_view value);

}  // namespace ringhttpd::worker
