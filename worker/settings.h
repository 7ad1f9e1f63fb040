// Settings the worker processes run with: plain structs, filled in by the
// supervisor's config loader (master/config.cc) and inherited across fork.
// A worker never sees JSON; it sees these.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ringhttpd::worker {

// Limits and timeouts of a network process (config key "network").
struct NetworkSettings {
  int processes = 0;                      // 0 = online CPUs
  uint32_t max_connections = 10000;       // per network process
  uint32_t keepalive_timeout_ms = 30000;  // idle keep-alive connection closes after this
  uint32_t request_timeout_ms = 10000;    // whole request must arrive within this
  uint32_t send_timeout_ms = 30000;       // a response making no write progress this long: close
  uint32_t drain_timeout_ms = 10000;      // stop or reload: connections finish within this
  uint32_t watchdog_ms = 30000;           // a loop that has not run this long is killed (0: off)
  uint32_t max_header_bytes = 16384;      // request line + header section
  uint32_t max_target_bytes = 8192;       // request-target (414 beyond)
  uint64_t max_body_bytes = 1048576;      // request body limit
  // Linux scheduling policy of the network processes: "batch" (SCHED_BATCH:
  // a wake-up does not preempt the process running on that CPU) or "normal".
  std::string scheduling = "batch";
};

// A "proxy" service's upstreams and how it talks to them.
// The Host a proxy's upstream gets (key `host_header`): the client's (""),
// the upstream's address as configured ("$upstream", as nginx's
// $proxy_host: without the default port 80, "localhost" for a unix
// socket), or this literal host[:port].
struct HostHeader {
  static constexpr std::string_view kUpstream = "$upstream";
  std::string value;
  bool keep() const { return value.empty(); }
  bool upstream() const { return value == kUpstream; }
  bool literal() const { return !keep() && !upstream(); }
};

struct ProxySettings {
  std::vector<std::string> upstreams;   // "host:port" (IPv4 or [IPv6]) or "unix:/path"
  std::string balance = "round_robin";  // or "least_conn"
  uint32_t connect_timeout_ms = 1000;   // connect, then 502 (and the upstream rests)
  uint32_t response_timeout_ms = 0;     // request sent -> response head, then 504
                                        // (0 in the file = the service's timeout_ms)
  uint32_t idle_timeout_ms = 60000;     // an idle kept-alive upstream connection closes
  uint32_t keepalive = 32;              // idle connections kept per upstream per process
  uint32_t fail_timeout_ms = 10000;     // a failed upstream is passed over this long
  // Requests in flight per upstream connection: above 1, a GET or HEAD
  // without a body may be sent behind others on a busy connection (HTTP/1.1
  // pipelining), several in one write. 1: one request per connection.
  uint32_t pipeline = 1;
  // With pipeline > 1: a request joins a busy connection only once the
  // upstream has answered, while its answers take less than this many ms
  // on average (from a request's coming first in line to its answer's
  // first byte), and not one whose front request has waited this long
  // (worker/handlers/answer_pace.h).
  uint32_t pipeline_fast_ms = 5;
  HostHeader host_header;
  // A GET with "Connection: upgrade" and an Upgrade header (a WebSocket
  // handshake) takes the client's connection over: the network process
  // passes it to a process of this service, which relays bytes both ways
  // after the upstream's 101 (worker/handlers/tunnel.h). False: Upgrade is
  // ignored and the request is proxied as plain HTTP.
  bool upgrade = true;
  uint32_t tunnel_idle_timeout_ms = 300000;  // a tunnel with no byte either way closes
};

// A "module" service: a shared object with the C ABI of
// include/ringhttpd/module.h.
struct ModuleSettings {
  std::string path;                // absolute path of the .so
  std::string config_json = "{}";  // services[i].config, as JSON text for the module
};

// One service pool (config "services[i]").
struct ServiceSettings {
  std::string name;
  std::string type = "echo";  // handler type (worker/handlers/registry.cc)
  int processes = 1;
  uint64_t ring_bytes = 1048576;      // each direction, per (network, service) pair
  uint32_t timeout_ms = 5000;         // a request not answered in time gets 504
  uint32_t kill_after_ms = 0;         // a request held this long: the process is replaced
                                      // (0 in the file = 2 x timeout_ms, resolved by the loader)
  uint32_t start_timeout_ms = 10000;  // a process (a module's init) must be ready within this
  // Linux scheduling policy of the service processes: "batch" (SCHED_BATCH:
  // its wake-up does not preempt the network process on that CPU) or "normal".
  std::string scheduling = "batch";
  ProxySettings proxy;    // type "proxy" only
  ModuleSettings module;  // type "module" only
};

// A fixed answer given by the network process itself (route "respond").
struct RespondSettings {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain";
};

// Files under a directory, answered by the network process (route "static").
struct StaticSettings {
  std::string root;                              // an absolute directory
  std::vector<std::string> index{"index.html"};  // tried, in order, for a directory
  // Extension (lowercase, no dot) -> media type, before the built-in table.
  std::map<std::string, std::string, std::less<>> types;
  uint64_t cache_entries = 1000;   // open files kept per network process; 0: no cache
  uint64_t cache_valid_ms = 1000;  // a cached file is used this long, then opened again
  bool listing = false;            // a directory without an index file: a listing, not 403
};

// One route (config "routes[i]"). Routes are tried in order; the first match
// wins. An empty methods list or host matches any.
struct RouteSettings {
  std::vector<std::string> methods;
  std::string host;        // exact, case-insensitive, port ignored; "" = any
  std::string path = "/";  // path prefix
  enum class Kind { respond, service, metrics, static_files } kind = Kind::respond;
  RespondSettings respond;      // valid when kind == respond
  StaticSettings static_files;  // valid when kind == static_files
  std::string service;          // valid when kind == service
  int service_index = -1;       // index into services[], resolved by the loader
};

}  // namespace ringhttpd::worker
