// The configuration loader: the one place that turns JSON text into the plain
// structs of master/config.h and worker/settings.h and checks every value, so
// no other part of the server ever sees JSON or an unchecked setting.
//
// Every problem is reported as "key.path: problem" and all of them are
// collected (not just the first), so one `ringhttpd check` shows everything
// to fix. Shape, nginx-style: a strict JSON reader (a SAX builder that also
// rejects duplicate keys, which plain json::parse silently resolves), then one
// small reader per section built on generic helpers (check_object, read_uint,
// read_string, read_enum) and tables of numeric limits. Sections are read in
// a fixed order so that routes can be resolved against the services.

#include "master/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <new>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "master/lifecycle.h"
#include "proto/http_response.h"
#include "proto/normalize_path.h"
#include "proto/ring_codec.h"
#include "worker/handler.h"
#include "worker/ring_channel.h"
#include "worker/router.h"

namespace ringhttpd::master {
namespace {

using nlohmann::json;
using worker::NetworkSettings;
using worker::RespondSettings;
using worker::RouteSettings;
using worker::ServiceSettings;
using Errors = std::vector<std::string>;
using Keys = std::span<const std::string_view>;

// ---- Key paths and messages ------------------------------------------------

void fail(Errors* errors, std::string_view path, std::string_view problem) {
  errors->push_back(std::string(path) + ": " + std::string(problem));
}

// Key names come from the file: escaped here, once, so that every path built
// from them is safe to print.
std::string join(std::string_view path, std::string_view key) {
  if (path.empty()) return escape_text(key);
  return std::string(path) + "." + escape_text(key);
}

std::string index_path(std::string_view path, size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

// A value from the file, in double quotes, for messages.
// (Appended, not "\"" + ...: GCC 12 warns -Wrestrict on that form.)
std::string quote(std::string_view s) {
  std::string out = "\"";
  out += escape_text(s);
  out += '"';
  return out;
}

std::string quote_list(Keys values) {
  std::string out;
  for (std::string_view v : values) out += (out.empty() ? "" : ", ") + quote(v);
  return out;
}

// " (got "value")" when the offending value is a string, else nothing.
std::string got(const json& v) {
  return v.is_string() ? " (got " + quote(v.get_ref<const std::string&>()) + ")" : "";
}

bool contains(Keys keys, std::string_view key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

// ---- Strict JSON reading ---------------------------------------------------

// "[json.exception.parse_error.101] parse error at line 1, column 6: syntax
// error ..." -> "line 1, column 6: syntax error ...": the library's exception
// name means nothing to an operator. The "last read: '...'" part quotes raw
// input: control bytes and bytes >= 0x7f become \xNN, so the message stays
// one printable ASCII line (it may end up in a terminal or a JSON reply)
// whatever the input holds.
std::string parse_error_detail(std::string detail) {
  if (detail.starts_with("[json.exception.")) {
    if (size_t end = detail.find("] "); end != std::string::npos) detail.erase(0, end + 2);
  }
  for (std::string_view prefix : {"parse error at ", "parse error: ", "parse error"}) {
    if (detail.starts_with(prefix)) {
      detail.erase(0, prefix.size());
      break;
    }
  }
  std::string out;
  for (char ch : detail) {
    const auto c = static_cast<unsigned char>(ch);
    out += c >= 0x20 && c < 0x7f ? std::string(1, ch) : escape_text(std::string_view(&ch, 1));
  }
  return out;
}

// The one error id of a number the parser reads but cannot represent
// (nlohmann's out_of_range.406, "number overflow", e.g. 1e500).
constexpr int kNumberOverflow = 406;

// Builds the document like json::parse, but reports each duplicate object key
// with its path (the last value wins, as in json::parse). A syntax error
// replaces everything collected so far with the one parse error.
class StrictReader {
 public:
  StrictReader(json* root, Errors* errors) : root_(root), errors_(errors) {}

  bool null() { return add(nullptr); }
  bool boolean(bool v) { return add(v); }
  // The parser reports only numbers written with a minus sign here. A JSON -0
  // would become integer 0 and pass as a valid count or port; every number
  // setting is unsigned, so it is kept as the float -0.0, which no integer
  // setting accepts.
  bool number_integer(json::number_integer_t v) {
    return v == 0 ? add(json::number_float_t{-0.0}) : add(v);
  }
  bool number_unsigned(json::number_unsigned_t v) { return add(v); }
  bool number_float(json::number_float_t v, const json::string_t&) { return add(v); }
  bool string(json::string_t& v) { return add(std::move(v)); }
  bool binary(json::binary_t& v) { return add(json::binary(std::move(v))); }
  bool start_object(std::size_t) { return open(json::object()); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(json::string_t& k) {
    Frame& f = stack_.back();
    if (f.node->contains(k)) fail(errors_, join(f.path, k), "duplicate key");
    f.key = std::move(k);
    return true;
  }

  // Like a syntax error, a number too large to hold stops the parse; it is
  // named by the key it was meant for.
  bool parse_error(std::size_t byte, const std::string&, const json::exception& e) {
    if (e.id == kNumberOverflow) {
      errors_->assign(1, (stack_.empty() ? "config" : child_path()) + ": number out of range");
    } else {
      errors_->assign(1, "config: parse error at byte " + std::to_string(byte) + ": " +
                             parse_error_detail(e.what()));
    }
    return false;
  }

 private:
  struct Frame {
    json* node;        // the open object or array
    std::string path;  // its key path
    std::string key;   // the last key read (objects)
  };

  std::string child_path() const {
    const Frame& f = stack_.back();
    return f.node->is_array() ? index_path(f.path, f.node->size()) : join(f.path, f.key);
  }

  // Stores v where the document expects the next value; returns where it went.
  json* place(json v) {
    if (stack_.empty()) {
      *root_ = std::move(v);
      return root_;
    }
    json& parent = *stack_.back().node;
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    json& slot = parent[stack_.back().key];
    slot = std::move(v);
    return &slot;
  }

  bool add(json v) {
    place(std::move(v));
    return true;
  }

  bool open(json v) {
    if (stack_.size() == kMaxDepth) {
      errors_->assign(1,
                      "config: JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
      return false;
    }
    std::string path = stack_.empty() ? std::string() : child_path();
    stack_.push_back({place(std::move(v)), std::move(path), {}});
    return true;
  }

  bool close() {
    stack_.pop_back();
    return true;
  }

  // A config needs about 5 levels; the bound keeps the paths copied into
  // each frame cheap on hostile input (a megabyte of '[').
  static constexpr size_t kMaxDepth = 64;

  json* root_;
  Errors* errors_;
  std::vector<Frame> stack_;
};

bool parse_json(std::string_view text, json* root, Errors* errors) {
  StrictReader reader(root, errors);
  if (json::sax_parse(text, &reader)) return true;
  if (errors->empty()) errors->push_back("config: parse error");
  return false;
}

// ---- Generic readers -------------------------------------------------------
// Each reads obj[key] when present (absent keys keep the struct default) and
// returns false only when it reported an error.

const json* member(const json& obj, std::string_view key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

// True when v is an object; reports every key of it not in `allowed`.
bool check_object(const json& v, std::string_view path, Keys allowed, Errors* errors) {
  if (!v.is_object()) {
    fail(errors, path, "must be an object");
    return false;
  }
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!contains(allowed, it.key())) fail(errors, join(path, it.key()), "unknown key");
  }
  return true;
}

// A JSON integer (not 1.0, not "1") in [min, max].
bool integer_in(const json& v, uint64_t min, uint64_t max, uint64_t* out) {
  if (!v.is_number_integer()) return false;
  if (!v.is_number_unsigned() && v.get<int64_t>() < 0) return false;
  uint64_t n = v.get<uint64_t>();
  if (n < min || n > max) return false;
  *out = n;
  return true;
}

template <typename T>
bool read_uint(const json& obj, std::string_view key, std::string_view path, uint64_t min,
               uint64_t max, T* out, Errors* errors) {
  const json* v = member(obj, key);
  if (v == nullptr) return true;
  uint64_t n = 0;
  if (!integer_in(*v, min, max, &n)) {
    fail(errors, join(path, key),
         "must be an integer between " + std::to_string(min) + " and " + std::to_string(max));
    return false;
  }
  *out = static_cast<T>(n);
  return true;
}

// Bytes: any string, NUL included (a fixed answer's body).
bool read_bytes(const json& obj, std::string_view key, std::string_view path, std::string* out,
                Errors* errors) {
  const json* v = member(obj, key);
  if (v == nullptr) return true;
  if (!v->is_string()) {
    fail(errors, join(path, key), "must be a string");
    return false;
  }
  *out = v->get<std::string>();
  return true;
}

// Text: a name, a path, an address. A NUL byte is refused for all of them:
// the kernel and libc read such a string only up to the NUL, so "/srv\0x"
// would quietly mean "/srv", and a log file "a\0.log" would be "a".
bool read_string(const json& obj, std::string_view key, std::string_view path, std::string* out,
                 Errors* errors) {
  std::string text;
  if (!read_bytes(obj, key, path, &text, errors)) return false;
  if (text.find('\0') != std::string::npos) {
    fail(errors, join(path, key), "must not contain a NUL byte (got " + quote(text) + ")");
    return false;
  }
  if (member(obj, key) != nullptr) *out = std::move(text);
  return true;
}

// true or false (not 1, not "true").
bool read_bool(const json& obj, std::string_view key, std::string_view path, bool* out,
               Errors* errors) {
  const json* v = member(obj, key);
  if (v == nullptr) return true;
  if (!v->is_boolean()) {
    fail(errors, join(path, key), "must be true or false" + got(*v));
    return false;
  }
  *out = v->get<bool>();
  return true;
}

// A string that must be one of `choices`.
bool read_enum(const json& obj, std::string_view key, std::string_view path, Keys choices,
               std::string* out, Errors* errors) {
  const json* v = member(obj, key);
  if (v == nullptr) return true;
  if (!v->is_string() || !contains(choices, v->get_ref<const std::string&>())) {
    fail(errors, join(path, key), "must be one of " + quote_list(choices) + got(*v));
    return false;
  }
  *out = v->get<std::string>();
  return true;
}

// A table row: an unsigned integer setting of struct S and its allowed range.
template <typename S>
struct UintField {
  std::string_view key;
  uint64_t min;
  uint64_t max;
  std::variant<int S::*, uint32_t S::*, uint64_t S::*> member;
};

template <typename S, size_t N>
void read_uint_fields(const json& obj, std::string_view path,
                      const std::array<UintField<S>, N>& fields, S* out, Errors* errors) {
  for (const UintField<S>& f : fields) {
    std::visit([&](auto m) { read_uint(obj, f.key, path, f.min, f.max, &(out->*m), errors); },
               f.member);
  }
}

template <typename S, size_t N>
constexpr std::array<std::string_view, N> keys_of(const std::array<UintField<S>, N>& fields) {
  std::array<std::string_view, N> keys{};
  for (size_t i = 0; i < N; ++i) keys[i] = fields[i].key;
  return keys;
}

// The keys of a field table and one key more.
template <size_t N>
constexpr std::array<std::string_view, N + 1> plus_key(const std::array<std::string_view, N>& keys,
                                                       std::string_view key) {
  std::array<std::string_view, N + 1> out{};
  for (size_t i = 0; i < N; ++i) out[i] = keys[i];
  out[N] = key;
  return out;
}

// Two key lists as one.
template <size_t N, size_t M>
constexpr std::array<std::string_view, N + M> join_keys(const std::array<std::string_view, N>& a,
                                                        const std::array<std::string_view, M>& b) {
  std::array<std::string_view, N + M> out{};
  for (size_t i = 0; i < N; ++i) out[i] = a[i];
  for (size_t i = 0; i < M; ++i) out[N + i] = b[i];
  return out;
}

// network.scheduling and services[].scheduling.
constexpr std::array<std::string_view, 2> kSchedulingPolicies = {"batch", "normal"};

constexpr uint64_t kMaxTimeoutMs = 3600000;  // one hour
constexpr uint64_t kGiB = uint64_t{1} << 30;

// ---- "listeners" -----------------------------------------------------------

// The address in canonical form, bracketed if IPv6 ("0::1" -> "[::1]"), or ""
// when it is not an IP literal.
std::string canonical_host(const std::string& address) {
  if (address.find('\0') != std::string::npos) return "";
  unsigned char bytes[sizeof(in6_addr)];
  char text[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, address.c_str(), bytes) == 1 &&
      inet_ntop(AF_INET, bytes, text, sizeof text) != nullptr) {
    return text;
  }
  if (inet_pton(AF_INET6, address.c_str(), bytes) == 1 &&
      inet_ntop(AF_INET6, bytes, text, sizeof text) != nullptr) {
    return "[" + std::string(text) + "]";
  }
  return "";
}

void read_listener(const json& v, std::string_view path, ListenerConfig* l, Errors* errors) {
  static constexpr std::array<std::string_view, 3> kKeys = {"address", "port", "reuseport"};
  if (!check_object(v, path, kKeys, errors)) return;
  if (read_string(v, "address", path, &l->address, errors) && canonical_host(l->address).empty()) {
    fail(errors, join(path, "address"),
         "must be an IPv4 or IPv6 address literal (got " + quote(l->address) + ")");
  }
  read_uint(v, "port", path, 0, 65535, &l->port, errors);  // 0 = any free port
  read_bool(v, "reuseport", path, &l->reuseport, errors);
}

// Two listeners on the same address and port cannot both bind. Port 0 (any
// free port) never collides.
void check_duplicate_listeners(const std::vector<ListenerConfig>& listeners, Errors* errors) {
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < listeners.size(); ++i) {
    std::string host = canonical_host(listeners[i].address);
    if (host.empty() || listeners[i].port == 0) continue;
    std::string endpoint = host + ":" + std::to_string(listeners[i].port);
    auto [it, inserted] = seen.emplace(endpoint, i);
    if (!inserted) {
      fail(errors, index_path("listeners", i),
           "duplicate listener " + endpoint + " (same as " + index_path("listeners", it->second) +
               ")");
    }
  }
}

// Absent "listeners" means one listener on 127.0.0.1:8080 (see validate()).
void read_listeners(const json& v, Config* c, Errors* errors) {
  if (!v.is_array() || v.empty()) {
    fail(errors, "listeners", "must be a non-empty array of objects");
    return;
  }
  c->listeners.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    read_listener(v[i], index_path("listeners", i), &c->listeners[i], errors);
  }
  check_duplicate_listeners(c->listeners, errors);
}

// ---- "network" -------------------------------------------------------------

constexpr std::array<UintField<NetworkSettings>, 10> kNetworkFields = {{
    {"processes", 0, 256, &NetworkSettings::processes},  // 0 = online CPUs
    {"max_connections", 1, 1000000, &NetworkSettings::max_connections},
    {"keepalive_timeout_ms", 1, kMaxTimeoutMs, &NetworkSettings::keepalive_timeout_ms},
    {"request_timeout_ms", 1, kMaxTimeoutMs, &NetworkSettings::request_timeout_ms},
    {"send_timeout_ms", 1, kMaxTimeoutMs, &NetworkSettings::send_timeout_ms},
    {"drain_timeout_ms", 1, kMaxTimeoutMs, &NetworkSettings::drain_timeout_ms},
    {"watchdog_ms", 0, kMaxTimeoutMs, &NetworkSettings::watchdog_ms},  // 0 or >= kMinWatchdogMs
    {"max_header_bytes", 1024, 1048576, &NetworkSettings::max_header_bytes},
    {"max_target_bytes", 256, 1048576, &NetworkSettings::max_target_bytes},
    {"max_body_bytes", 0, kGiB, &NetworkSettings::max_body_bytes},
}};

void read_network(const json& v, Config* c, Errors* errors) {
  static constexpr auto kKeys = plus_key(keys_of(kNetworkFields), "scheduling");
  if (check_object(v, "network", kKeys, errors)) {
    read_uint_fields(v, "network", kNetworkFields, &c->network, errors);
    const uint32_t watchdog = c->network.watchdog_ms;
    if (watchdog != 0 && watchdog < kMinWatchdogMs) {
      fail(errors, "network.watchdog_ms",
           "must be 0 (off) or at least " + std::to_string(kMinWatchdogMs) +
               " (a network process's loop may be quiet for a second)");
    }
    read_enum(v, "scheduling", "network", kSchedulingPolicies, &c->network.scheduling, errors);
  }
}

// ---- "services" ------------------------------------------------------------

constexpr std::array<UintField<ServiceSettings>, 5> kServiceFields = {{
    {"processes", 1, 256, &ServiceSettings::processes},
    {"ring_bytes", 4096, kGiB, &ServiceSettings::ring_bytes},  // and a power of two
    {"timeout_ms", 1, kMaxTimeoutMs, &ServiceSettings::timeout_ms},
    {"kill_after_ms", 0, kMaxTimeoutMs, &ServiceSettings::kill_after_ms},  // 0 = 2 x timeout_ms
    {"start_timeout_ms", 1, kMaxTimeoutMs, &ServiceSettings::start_timeout_ms},
}};

constexpr size_t kMaxServiceNameLength = 32;

bool is_name_char(char ch) {
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
         ch == '_' || ch == '-';
}

bool valid_service_name(std::string_view name) {
  return !name.empty() && name.size() <= kMaxServiceNameLength &&
         std::all_of(name.begin(), name.end(), is_name_char);
}

// "name" is the one key without a default: routes refer to services by it.
void read_service_name(const json& v, std::string_view path, std::string* name, Errors* errors) {
  if (member(v, "name") == nullptr) {
    fail(errors, join(path, "name"), "is required");
    return;
  }
  if (read_string(v, "name", path, name, errors) && !valid_service_name(*name)) {
    fail(errors, join(path, "name"),
         "must be 1 to " + std::to_string(kMaxServiceNameLength) +
             " characters of A-Z, a-z, 0-9, '_' or '-' (got " + quote(*name) + ")");
  }
}

constexpr std::array<UintField<worker::ProxySettings>, 8> kProxyFields = {{
    {"connect_timeout_ms", 1, kMaxTimeoutMs, &worker::ProxySettings::connect_timeout_ms},
    {"response_timeout_ms", 0, kMaxTimeoutMs, &worker::ProxySettings::response_timeout_ms},
    {"idle_timeout_ms", 1, kMaxTimeoutMs, &worker::ProxySettings::idle_timeout_ms},
    {"keepalive", 0, 100000, &worker::ProxySettings::keepalive},
    {"fail_timeout_ms", 0, kMaxTimeoutMs, &worker::ProxySettings::fail_timeout_ms},
    {"pipeline", 1, 64, &worker::ProxySettings::pipeline},
    {"pipeline_fast_ms", 1, kMaxTimeoutMs, &worker::ProxySettings::pipeline_fast_ms},
    {"tunnel_idle_timeout_ms", 1, kMaxTimeoutMs, &worker::ProxySettings::tunnel_idle_timeout_ms},
}};

std::string host_header_problem(std::string_view value);  // below, with the route's host

// A host name or IPv4 address as a upstream's host: letters, digits, '-',
// '.' and '_' (no scheme, no path, no space).
bool is_host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

// "127.0.0.1:9000", "app.internal:9000", "[::1]:9000" or
// "unix:/run/app.sock". "" if `u` is one; else what is wrong, with a hint.
std::string upstream_problem(std::string_view u) {
  constexpr std::string_view kForm = "must be \"host:port\" or \"unix:/path\"";
  if (u.find('\0') != std::string_view::npos) return std::string(kForm);
  if (u.starts_with("unix:")) {
    if (u.size() > 6 && u[5] == '/' && u.size() <= 5 + 107) return "";
    return std::string(kForm) + " (unix: takes an absolute path of at most 107 bytes)";
  }
  if (u.find("://") != std::string_view::npos) {
    return std::string(kForm) + ": no scheme (write host:port or unix:/path; only HTTP is spoken)";
  }
  if (std::any_of(u.begin(), u.end(), [](char c) {
        return std::isspace(static_cast<unsigned char>(c)) ||
               std::iscntrl(static_cast<unsigned char>(c));
      })) {
    return std::string(kForm) + ": no spaces or control characters";
  }
  if (u.find('/') != std::string_view::npos) {
    return std::string(kForm) + ": no path (the request's own target is sent)";
  }
  const size_t colon = u.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == u.size()) {
    return std::string(kForm) + ": the port is required";
  }
  const std::string_view port = u.substr(colon + 1);
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) ||
      std::stoi(std::string(port)) < 1 || std::stoi(std::string(port)) > 65535) {
    return std::string(kForm) + ": the port must be 1 to 65535";
  }
  const std::string_view host = u.substr(0, colon);
  if (host.front() == '[') {
    in6_addr a{};
    const std::string inner(host.substr(1, host.size() - 2));
    if (host.size() > 2 && host.back() == ']' && ::inet_pton(AF_INET6, inner.c_str(), &a) == 1) {
      return "";
    }
    return std::string(kForm) + ": an IPv6 address goes in brackets, as [::1]:80";
  }
  if (host.find(':') != std::string_view::npos) {
    return std::string(kForm) + ": an IPv6 address goes in brackets, as [::1]:80";
  }
  if (!std::all_of(host.begin(), host.end(), is_host_char)) {
    return std::string(kForm) + ": the host is a name or an address";
  }
  return "";
}

// A host name is resolved here, once, as nginx does at start: a name that
// does not resolve is a config error (the service processes resolve it
// again when they start, and pass over one that no longer does).
std::string resolve_problem(std::string_view u) {
  if (u.starts_with("unix:")) return "";
  const size_t colon = u.rfind(':');
  std::string host(u.substr(0, colon));
  if (host.front() == '[') host = host.substr(1, host.size() - 2);
  const std::string port(u.substr(colon + 1));
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int r = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
  if (found != nullptr) ::freeaddrinfo(found);
  if (r == 0) return "";
  return "host " + quote(host) + " does not resolve (getaddrinfo: " + ::gai_strerror(r) + ")";
}

void read_proxy(const json& v, std::string_view path, ServiceSettings* s, Errors* errors) {
  worker::ProxySettings& p = s->proxy;
  const json* ups = member(v, "upstreams");
  if (ups == nullptr) {
    fail(errors, join(path, "upstreams"), "is required for a proxy service");
  } else if (!ups->is_array() || ups->empty()) {
    fail(errors, join(path, "upstreams"),
         "must be a non-empty array of \"host:port\" or \"unix:/path\"");
  } else {
    for (size_t i = 0; i < ups->size(); ++i) {
      const json& u = (*ups)[i];
      const std::string problem = u.is_string() ? upstream_problem(u.get_ref<const std::string&>())
                                                : "must be \"host:port\" or \"unix:/path\"";
      if (!problem.empty()) {
        fail(errors, index_path(join(path, "upstreams"), i), problem + got(u));
        continue;
      }
      if (const std::string bad = resolve_problem(u.get_ref<const std::string&>()); !bad.empty()) {
        fail(errors, index_path(join(path, "upstreams"), i), bad);
        continue;
      }
      p.upstreams.push_back(u.get<std::string>());
    }
  }
  static constexpr std::array<std::string_view, 2> kBalance = {"round_robin", "least_conn"};
  read_enum(v, "balance", path, kBalance, &p.balance, errors);
  read_uint_fields(v, path, kProxyFields, &p, errors);
  if (read_string(v, "host_header", path, &p.host_header.value, errors)) {
    if (std::string bad = host_header_problem(p.host_header.value); !bad.empty()) {
      fail(errors, join(path, "host_header"), bad);
    }
  }
  if (const json* up = member(v, "upgrade"); up != nullptr) {
    if (up->is_boolean()) {
      p.upgrade = up->get<bool>();
    } else {
      fail(errors, join(path, "upgrade"), "must be true or false" + got(*up));
    }
  }
  // The network process answers 504 at the service's timeout_ms (and
  // cancels the request): a proxy timer set longer could never fire.
  // Given longer, it is an error; left out, it is clamped to timeout_ms.
  if (p.response_timeout_ms == 0) p.response_timeout_ms = s->timeout_ms;
  for (auto [key, value] : {std::pair{"connect_timeout_ms", &p.connect_timeout_ms},
                            std::pair{"response_timeout_ms", &p.response_timeout_ms}}) {
    if (*value <= s->timeout_ms) continue;
    if (member(v, key) == nullptr) {
      *value = s->timeout_ms;
    } else {
      fail(errors, join(path, key),
           "must be at most timeout_ms (" + std::to_string(s->timeout_ms) +
               "): the client gets 504 at timeout_ms first");
    }
  }
}

void read_module(const json& v, std::string_view path, ServiceSettings* s, Errors* errors) {
  if (member(v, "path") == nullptr) {
    fail(errors, join(path, "path"), "is required for a module service");
  } else if (read_string(v, "path", path, &s->module.path, errors) &&
             !s->module.path.starts_with('/')) {
    fail(errors, join(path, "path"),
         "must be an absolute path (got " + quote(s->module.path) + ")");
  }
  if (const json* config = member(v, "config")) {
    if (!config->is_object()) {
      fail(errors, join(path, "config"), "must be an object");
    } else {
      s->module.config_json = config->dump();
    }
  }
}

// Keys every service has, then those of its type.
bool check_service_keys(const json& v, std::string_view path, std::string_view type,
                        Errors* errors) {
  static constexpr auto kCommon = join_keys(
      std::array<std::string_view, 3>{"name", "type", "scheduling"}, keys_of(kServiceFields));
  static constexpr auto kProxy = join_keys(
      kCommon, std::array<std::string_view, 12>{
                   "upstreams", "balance", "connect_timeout_ms", "response_timeout_ms",
                   "idle_timeout_ms", "keepalive", "fail_timeout_ms", "pipeline",
                   "pipeline_fast_ms", "upgrade", "tunnel_idle_timeout_ms", "host_header"});
  static constexpr auto kModule =
      join_keys(kCommon, std::array<std::string_view, 2>{"path", "config"});
  if (type == "proxy") return check_object(v, path, kProxy, errors);
  if (type == "module") return check_object(v, path, kModule, errors);
  return check_object(v, path, kCommon, errors);
}

void read_service(const json& v, std::string_view path, ServiceSettings* s, Errors* errors) {
  if (!v.is_object()) {
    fail(errors, path, "must be an object");
    return;
  }
  read_enum(v, "type", path, worker::handler_type_names(), &s->type, errors);
  if (!check_service_keys(v, path, s->type, errors)) return;
  read_service_name(v, path, &s->name, errors);
  read_uint_fields(v, path, kServiceFields, s, errors);
  read_enum(v, "scheduling", path, kSchedulingPolicies, &s->scheduling, errors);
  if (!std::has_single_bit(s->ring_bytes)) {
    fail(errors, join(path, "ring_bytes"),
         "must be a power of two (got " + std::to_string(s->ring_bytes) + ")");
  }
  if (s->kill_after_ms == 0) {
    s->kill_after_ms =
        static_cast<uint32_t>(std::min<uint64_t>(2ull * s->timeout_ms, kMaxTimeoutMs));
  } else if (s->kill_after_ms < s->timeout_ms) {
    fail(errors, join(path, "kill_after_ms"),
         "must be at least timeout_ms (" + std::to_string(s->timeout_ms) + ")");
  }
  if (s->type == "proxy") read_proxy(v, path, s, errors);
  if (s->type == "module") read_module(v, path, s, errors);
}

void check_duplicate_services(const std::vector<ServiceSettings>& services, Errors* errors) {
  std::set<std::string> seen;
  for (size_t i = 0; i < services.size(); ++i) {
    const std::string& name = services[i].name;
    if (!name.empty() && !seen.insert(name).second) {
      fail(errors, join(index_path("services", i), "name"),
           "duplicate service name " + quote(name));
    }
  }
}

// Absent "services" means none (then only "respond" routes are possible).
void read_services(const json& v, Config* c, Errors* errors) {
  if (!v.is_array()) {
    fail(errors, "services", "must be an array of objects");
    return;
  }
  c->services.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    read_service(v[i], index_path("services", i), &c->services[i], errors);
  }
  check_duplicate_services(c->services, errors);
}

// ---- "routes" --------------------------------------------------------------

using ServiceIndex = std::map<std::string, int, std::less<>>;

// Name -> index into services[]; the first of duplicate names wins (the
// duplicate itself is already reported).
ServiceIndex index_services(const std::vector<ServiceSettings>& services) {
  ServiceIndex index;
  for (size_t i = 0; i < services.size(); ++i) index.emplace(services[i].name, static_cast<int>(i));
  return index;
}

// An RFC 9110 token without lowercase letters: the router compares methods
// exactly, and methods are case-sensitive, so "get" would never match.
bool is_method_token(std::string_view s) {
  constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [&](char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           kSymbols.find(ch) != std::string_view::npos;
  });
}

void read_methods(const json& v, std::string_view path, std::vector<std::string>* out,
                  Errors* errors) {
  const json* methods = member(v, "methods");
  if (methods == nullptr) return;
  std::string mpath = join(path, "methods");
  if (!methods->is_array()) {
    fail(errors, mpath, "must be an array of method names");
    return;
  }
  for (size_t i = 0; i < methods->size(); ++i) {
    const json& m = (*methods)[i];
    if (m.is_string() && is_method_token(m.get_ref<const std::string&>())) {
      out->push_back(m.get<std::string>());
    } else {
      fail(errors, index_path(mpath, i), "must be an uppercase method name like \"GET\"" + got(m));
    }
  }
}

// Printable text and tabs only: the value goes into a response header.
bool is_header_value(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return (c < 0x20 && c != '\t') || c == 0x7f;
  });
}

// 1xx, 204, 205 and 304 responses have no content (RFC 9110 6.4.1, 15.3.6).

void read_respond(const json& v, std::string_view path, RespondSettings* r, Errors* errors) {
  static constexpr std::array<std::string_view, 3> kKeys = {"status", "body", "content_type"};
  if (!check_object(v, path, kKeys, errors)) return;
  // A fixed answer is a final response: 1xx would leave the client waiting.
  read_uint(v, "status", path, 200, 599, &r->status, errors);
  read_bytes(v, "body", path, &r->body, errors);
  if (read_string(v, "content_type", path, &r->content_type, errors) &&
      !is_header_value(r->content_type)) {
    fail(errors, join(path, "content_type"), "must not contain control characters");
  }
  // 205 too (RFC 9110 15.3.6: a 205 MUST NOT have content), though a
  // handler's 205 is framed like any other.
  if (!r->body.empty() && (!proto::response_has_body("GET", r->status) || r->status == 205)) {
    fail(errors, join(path, "body"), "must be empty for status " + std::to_string(r->status));
  }
}

// "static": {"root": "/srv/www", "index": ["index.html"],
// "types": {"wasm": "application/wasm"}, "cache_entries": 1000,
// "cache_valid_ms": 1000, "listing": false}. The root must be an existing directory now (a
// typo is found by `check`, not by a 404). "types" maps an extension (a
// token without '.' or '/', stored lowercase) to a media type that goes into
// Content-Type as it is.
void read_static(const json& v, std::string_view path, worker::StaticSettings* s, Errors* errors) {
  static constexpr std::array<std::string_view, 6> kKeys = {
      "root", "index", "types", "cache_entries", "cache_valid_ms", "listing"};
  if (!check_object(v, path, kKeys, errors)) return;
  read_bool(v, "listing", path, &s->listing, errors);
  read_uint(v, "cache_entries", path, 0, 1000000, &s->cache_entries, errors);
  read_uint(v, "cache_valid_ms", path, 0, 3600000, &s->cache_valid_ms, errors);
  if (const json* types = member(v, "types")) {
    const std::string tpath = join(path, "types");
    if (!types->is_object()) {
      fail(errors, tpath, "must be an object of extension -> media type");
    } else {
      for (const auto& [ext, type] : types->items()) {
        const std::string epath = join(tpath, ext);
        std::string lower = ext;
        for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        constexpr std::string_view kSymbols = "!#$%&'*+-^_`|~";  // a token's, without '.'
        const bool token = !lower.empty() && std::all_of(lower.begin(), lower.end(), [&](char ch) {
          return std::isalnum(static_cast<unsigned char>(ch)) != 0 ||
                 kSymbols.find(ch) != std::string_view::npos;
        });
        if (!token) {
          fail(errors, epath, "must be an extension without the dot (a token without '.' or '/')");
        } else if (!type.is_string() || type.get_ref<const std::string&>().empty() ||
                   !is_header_value(type.get_ref<const std::string&>())) {
          fail(errors, epath, "must be a media type without control characters" + got(type));
        } else if (!s->types.emplace(lower, type.get<std::string>()).second) {
          fail(errors, epath, "repeats an extension (extensions are compared case-insensitively)");
        }
      }
    }
  }
  if (member(v, "root") == nullptr) {
    fail(errors, join(path, "root"), "is required");
  } else if (read_string(v, "root", path, &s->root, errors)) {
    struct stat st {};
    if (!s->root.starts_with('/')) {
      fail(errors, join(path, "root"), "must be an absolute path (got " + quote(s->root) + ")");
    } else if (::stat(s->root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      fail(errors, join(path, "root"), "is not a directory: " + quote(s->root));
    }
  }
  if (const json* index = member(v, "index")) {
    if (!index->is_array()) {
      fail(errors, join(path, "index"), "must be an array of file names");
      return;
    }
    s->index.clear();
    for (size_t i = 0; i < index->size(); ++i) {
      const json& name = (*index)[i];
      if (!name.is_string() || name.get_ref<const std::string&>().empty() ||
          name.get_ref<const std::string&>().find_first_of(std::string_view("/\0", 2)) !=
              std::string::npos) {
        fail(errors, index_path(join(path, "index"), i),
             "must be a file name without '/' or a NUL byte");
        continue;
      }
      s->index.push_back(name.get<std::string>());
    }
  }
}

// A route answers by itself ("respond"), forwards to a service, or serves
// the Prometheus exposition ("metrics": true).
void read_route_target(const json& v, std::string_view path, const ServiceIndex& services,
                       RouteSettings* r, Errors* errors) {
  const json* respond = member(v, "respond");
  const json* metrics = member(v, "metrics");
  const json* files = member(v, "static");
  const int targets = (respond != nullptr) + (member(v, "service") != nullptr) +
                      (metrics != nullptr) + (files != nullptr);
  if (targets != 1) {
    fail(errors, path,
         "a route needs exactly one of \"respond\", \"service\", \"static\" or \"metrics\"");
    return;
  }
  if (files != nullptr) {
    r->kind = RouteSettings::Kind::static_files;
    read_static(*files, join(path, "static"), &r->static_files, errors);
    return;
  }
  if (metrics != nullptr) {
    if (!metrics->is_boolean() || !metrics->get<bool>()) {
      fail(errors, join(path, "metrics"), "must be true (a route that serves the metrics)");
      return;
    }
    r->kind = RouteSettings::Kind::metrics;
    return;
  }
  if (respond != nullptr) {
    r->kind = RouteSettings::Kind::respond;
    read_respond(*respond, join(path, "respond"), &r->respond, errors);
    return;
  }
  r->kind = RouteSettings::Kind::service;
  if (!read_string(v, "service", path, &r->service, errors)) return;
  auto it = services.find(r->service);
  if (it == services.end()) {
    fail(errors, join(path, "service"), "no service named " + quote(r->service));
  } else {
    r->service_index = it->second;
  }
}

// RFC 3986 reg-name: unreserved, sub-delims and %HH. An IPv4 address is one.
bool is_reg_name(std::string_view s) {
  constexpr std::string_view kOther = "-._~!$&'()*+,;=";
  for (size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    if (ch == '%') {
      if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
        return false;
      }
      i += 2;
    } else if (!std::isalnum(static_cast<unsigned char>(ch)) &&
               kOther.find(ch) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool is_bracketed_ipv6(std::string_view s) {
  if (s.size() < 3 || s.front() != '[' || s.back() != ']') return false;
  const std::string inner(s.substr(1, s.size() - 2));
  unsigned char bytes[sizeof(in6_addr)];
  // inet_pton would stop at an embedded NUL and accept what comes before it.
  return inner.find('\0') == std::string::npos && inet_pton(AF_INET6, inner.c_str(), bytes) == 1;
}

bool is_port(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

// Why a route's "host" could never match, or "". It is compared with the
// request's host after the port is removed, so a port here would never
// match; nor would a byte a Host header cannot carry (CR, LF, space, NUL).
std::string route_host_problem(std::string_view host) {
  if (host.empty() || is_reg_name(host) || is_bracketed_ipv6(host)) return "";
  const size_t colon = host.rfind(':');
  if (colon != std::string_view::npos && is_port(host.substr(colon + 1)) &&
      (is_reg_name(host.substr(0, colon)) || is_bracketed_ipv6(host.substr(0, colon)))) {
    return "must be a host name without port (the port is ignored when matching; got " +
           quote(host) + ")";
  }
  return "must be a host name, an IPv4 address or an IPv6 address in brackets like \"[::1]\" "
         "(got " +
         quote(host) + ")";
}

// Why a proxy's "host_header" is not "" (the client's Host), "$upstream"
// or a Host a request may carry: a host name, an IPv4 address or an IPv6
// address in brackets, with an optional port (1 to 65535); or "".
std::string host_header_problem(std::string_view value) {
  if (value.empty() || value == worker::HostHeader::kUpstream) return "";
  if (value.size() > proto::kMaxHostBytes) {  // what a client's Host may be (longer is 400)
    return "must be at most " + std::to_string(proto::kMaxHostBytes) + " bytes (got " +
           std::to_string(value.size()) + ")";
  }
  if (value.starts_with('$')) {  // a reg-name may start so, but this is a misspelt "$upstream"
    return "must be \"\", \"$upstream\" or a host[:port] (got " + quote(value) + ")";
  }
  std::string_view host = value;
  const size_t colon = value.rfind(':');
  if (colon != std::string_view::npos && (value.front() != '[' || value[colon - 1] == ']')) {
    const std::string_view port = value.substr(colon + 1);
    if (!is_port(port) || port.size() > 5 || std::stoi(std::string(port)) < 1 ||
        std::stoi(std::string(port)) > 65535) {
      return "must be \"\", \"$upstream\" or host[:port] with a port of 1 to 65535 (got " +
             quote(value) + ")";
    }
    host = value.substr(0, colon);
  }
  if (!host.empty() && (is_reg_name(host) || is_bracketed_ipv6(host))) return "";
  return "must be \"\" (the client's Host), \"$upstream\" or a host name, an IPv4 address or "
         "an IPv6 address in brackets like \"[::1]\", with an optional port (got " +
         quote(value) + ")";
}

// What is wrong with a route's "path", or "". Routes match the normalized
// request path (proto/normalize_path.h: decoded, no "//", "." or ".."
// segment) without its query, so a prefix that is not in that form could
// never match: refused here, where `check` sees it, not left to 404.
std::string route_path_problem(std::string_view p) {
  const std::string got = " (got " + quote(p) + ")";
  if (!p.starts_with('/')) return "must start with \"/\"" + got;
  const bool control = std::any_of(p.begin(), p.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7f;
  });
  if (control) return "must not contain control characters" + got;
  if (p.find_first_of("?#") != std::string_view::npos) {
    return "must not contain \"?\" or \"#\": routes match the path without the query" + got;
  }
  if (!proto::path_is_normal(p)) {
    return "must be in normal form (no \"//\", no \".\" or \"..\" segment, no "
           "percent-escape): routes match the normalized request path, so this one never "
           "would" +
           got;
  }
  return "";
}

void read_route(const json& v, std::string_view path, const ServiceIndex& services,
                RouteSettings* r, Errors* errors) {
  static constexpr std::array<std::string_view, 7> kKeys = {
      "methods", "host", "path", "respond", "service", "metrics", "static"};
  if (!check_object(v, path, kKeys, errors)) return;
  read_methods(v, path, &r->methods, errors);
  if (read_string(v, "host", path, &r->host, errors)) {
    if (std::string problem = route_host_problem(r->host); !problem.empty()) {
      fail(errors, join(path, "host"), problem);
    }
  }
  if (read_string(v, "path", path, &r->path, errors)) {
    if (std::string problem = route_path_problem(r->path); !problem.empty()) {
      fail(errors, join(path, "path"), problem);
    }
  }
  read_route_target(v, path, services, r, errors);
}

// Routes are tried in order (worker/router.h): `first` takes every request
// `later` would match when its methods, host and path prefix each cover
// the later one's. `later` is then dead configuration, as a repeated
// location is for nginx.
bool shadows(const worker::RouteSettings& first, const worker::RouteSettings& later) {
  const bool methods =
      first.methods.empty() ||
      (!later.methods.empty() &&
       std::all_of(later.methods.begin(), later.methods.end(), [&first](const std::string& m) {
         return std::find(first.methods.begin(), first.methods.end(), m) != first.methods.end();
       }));
  const bool host =
      first.host.empty() || (!later.host.empty() && proto::iequals(first.host, later.host));
  return methods && host && worker::Router::path_matches(first.path, later.path);
}

// Absent "routes" means an empty route table: every request then gets 404.
// (The embedded default config has routes, so this only happens on purpose.)
void read_routes(const json& v, Config* c, Errors* errors) {
  if (!v.is_array()) {
    fail(errors, "routes", "must be an array of objects");
    return;
  }
  ServiceIndex services = index_services(c->services);
  c->routes.resize(v.size());
  const size_t errors_before = errors->size();
  for (size_t i = 0; i < v.size(); ++i) {
    read_route(v[i], index_path("routes", i), services, &c->routes[i], errors);
  }
  if (errors->size() != errors_before) return;  // routes read wrong are no base to judge
  for (size_t j = 0; j < c->routes.size(); ++j) {
    for (size_t i = 0; i < j; ++i) {
      if (!shadows(c->routes[i], c->routes[j])) continue;
      fail(errors, index_path("routes", j),
           "never used: " + index_path("routes", i) + " (path \"" + c->routes[i].path +
               "\") comes first and takes every request it would; routes are tried in order, "
               "so put the longer path first");
      break;
    }
  }
}

// ---- "admin" ---------------------------------------------------------------

constexpr unsigned kMaxMode = 0777;

// A permission mode: an octal string ("0600", "644") or a JSON integer, which
// is the numeric value itself (384 == 0600; JSON has no octal literals).
bool parse_mode(const json& v, unsigned* mode) {
  uint64_t n = 0;
  if (integer_in(v, 0, kMaxMode, &n)) {
    *mode = static_cast<unsigned>(n);
    return true;
  }
  if (!v.is_string()) return false;
  const std::string& s = v.get_ref<const std::string&>();
  if (s.empty() || s.size() > 4 || s.find_first_not_of("01234567") != std::string::npos) {
    return false;
  }
  for (char ch : s) n = n * 8 + static_cast<unsigned>(ch - '0');
  if (n > kMaxMode) return false;
  *mode = static_cast<unsigned>(n);
  return true;
}

// A path whose last segment is "", "." or "..": a directory, never a file.
bool names_directory(std::string_view path) {
  const size_t slash = path.rfind('/');
  const std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
  return base.empty() || base == "." || base == "..";
}

// sun_path holds the path and its terminating NUL.
constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;

// The group must exist now: a typo found at `check` time, not when an
// operator is refused at 3 a.m. The gid is resolved once, here.
void read_admin_group(const json& v, AdminConfig* a, Errors* errors) {
  if (!read_string(v, "group", "admin", &a->group, errors) || a->group.empty()) return;
  group grp{};
  group* found = nullptr;
  std::vector<char> buf(16384);
  int rc;
  while ((rc = ::getgrnam_r(a->group.c_str(), &grp, buf.data(), buf.size(), &found)) == ERANGE &&
         buf.size() < (1u << 22)) {
    buf.resize(buf.size() * 2);
  }
  if (rc != 0 || found == nullptr) {
    fail(errors, "admin.group", "no group named " + quote(a->group));
    return;
  }
  a->group_gid = static_cast<unsigned>(grp.gr_gid);
}

void read_admin(const json& v, Config* c, Errors* errors) {
  static constexpr std::array<std::string_view, 3> kKeys = {"socket", "mode", "group"};
  if (!check_object(v, "admin", kKeys, errors)) return;
  AdminConfig& a = c->admin;
  read_admin_group(v, &a, errors);
  if (read_string(v, "socket", "admin", &a.socket, errors)) {
    // "" turns the admin socket off (a deliberate choice, unlike a missing key).
    if (a.socket.size() > kMaxSocketPath) {
      fail(errors, "admin.socket",
           "must be \"\" (no admin socket) or a path of at most " + std::to_string(kMaxSocketPath) +
               " bytes");
    } else if (!a.socket.empty() && names_directory(a.socket)) {
      // What AdminServer::open would refuse at `serve`: said by `check` too.
      fail(errors, "admin.socket", quote(a.socket) + " names a directory, not a socket file");
    }
  }
  const json* mode = member(v, "mode");
  if (mode != nullptr && !parse_mode(*mode, &a.mode)) {
    fail(errors, "admin.mode",
         "must be an octal string like \"0600\" or an integer between 0 and " +
             std::to_string(kMaxMode));
  }
}

// ---- "log" -----------------------------------------------------------------

constexpr std::array<std::string_view, 2> kLogFormats = {"combined", "json"};
constexpr std::array<std::string_view, 4> kLogLevels = {"debug", "info", "warn", "error"};

void read_log(const json& v, Config* c, Errors* errors) {
  static constexpr std::array<std::string_view, 3> kKeys = {"access", "format", "level"};
  if (!check_object(v, "log", kKeys, errors)) return;
  if (read_string(v, "access", "log", &c->log.access, errors) && c->log.access.empty()) {
    fail(errors, "log.access", "must be \"off\", \"stderr\" or a file path");
  }
  read_enum(v, "format", "log", kLogFormats, &c->log.format, errors);
  read_enum(v, "level", "log", kLogLevels, &c->log.level, errors);
}

// ---- "user" and "group" ----------------------------------------------------

// Strings here; whether they name a user and a group of this machine is
// decided after all sections (resolve_run_as, master/privileges.cc).
// "" would silently mean "absent" (the children keep root): refused.
void read_top_string(const json& v, std::string_view key, std::string* out, Errors* errors) {
  if (!v.is_string()) return fail(errors, key, "must be a string");
  const std::string& name = v.get_ref<const std::string&>();
  if (name.empty()) return fail(errors, key, "must not be empty");
  if (name.find('\0') != std::string::npos) {
    return fail(errors, key, "must not contain a NUL byte (got " + quote(name) + ")");
  }
  *out = name;
}

void read_user(const json& v, Config* c, Errors* errors) {
  read_top_string(v, "user", &c->run_as.user, errors);
}

void read_group(const json& v, Config* c, Errors* errors) {
  read_top_string(v, "group", &c->run_as.group, errors);
}

// ---- Top level -------------------------------------------------------------

struct Section {
  std::string_view key;
  void (*read)(const json& value, Config* config, Errors* errors);
};

// Read in this order: routes are resolved against the services before them.
constexpr std::array<Section, 8> kSections = {{
    {"listeners", read_listeners},
    {"network", read_network},
    {"services", read_services},
    {"routes", read_routes},
    {"admin", read_admin},
    {"log", read_log},
    {"user", read_user},
    {"group", read_group},
}};

// A request head travels whole in one ring record, of at most half the ring
// less 16 bytes, and its encoding can be 2.25 times its text (many minimal
// header lines: proto::max_request_head_bytes). A ring below
// worker::min_ring_bytes could refuse a head the parser accepted for its size
// alone, every time (docs/configuration.md, "Sizing").
void check_rings_hold_heads(const Config& config, Errors* errors) {
  const uint64_t max_header = config.network.max_header_bytes;
  const uint64_t need = worker::min_ring_bytes(max_header);
  for (size_t i = 0; i < config.services.size(); ++i) {
    const uint64_t ring = config.services[i].ring_bytes;
    if (ring >= need || !std::has_single_bit(ring)) continue;  // (the latter is reported)
    fail(errors, join(index_path("services", i), "ring_bytes"),
         "must be at least " + std::to_string(need) + " with network.max_header_bytes " +
             std::to_string(max_header) + " (got " + std::to_string(ring) +
             "): a request head encodes to up to " +
             std::to_string(proto::max_request_head_bytes(max_header)) +
             " bytes and must fit in one record of at most ring_bytes / 2 - 16");
  }
}

bool is_section(std::string_view key) {
  return std::any_of(kSections.begin(), kSections.end(),
                     [&](const Section& s) { return s.key == key; });
}

void validate(const json& root, Config* config, Errors* errors) {
  if (!root.is_object()) {
    errors->push_back("config: the top level must be a JSON object");
    return;
  }
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (!is_section(it.key())) fail(errors, join("", it.key()), "unknown key");
  }
  for (const Section& s : kSections) {
    if (const json* v = member(root, s.key)) s.read(*v, config, errors);
  }
  if (member(root, "listeners") == nullptr) config->listeners.emplace_back();  // 127.0.0.1:8080
  check_rings_hold_heads(*config, errors);
  const bool run_as_read = std::none_of(errors->begin(), errors->end(), [](const std::string& e) {
    return e.starts_with("user:") || e.starts_with("group:");
  });
  if (run_as_read) resolve_run_as(config->run_as, *errors);
}

// A config file is small; this bounds what a mistaken path (a device, a huge
// log file) can make us read.
constexpr size_t kMaxConfigBytes = 16 << 20;

// "" for a regular file, else what it is instead.
std::string not_regular(mode_t mode) {
  if (S_ISREG(mode)) return "";
  const char* kind = S_ISDIR(mode)                    ? "a directory"
                     : S_ISFIFO(mode)                 ? "a FIFO"
                     : S_ISCHR(mode) || S_ISBLK(mode) ? "a device"
                     : S_ISSOCK(mode)                 ? "a socket"
                                                      : "something else";
  return std::string("not a regular file (") + kind + ")";
}

// Reads the whole file into *out; returns "" or why it could not.
//
// Only a regular file is read. A FIFO would block the open (and then the
// read) until some writer comes, a directory fails only at read(), and
// opening a device can act on it (a tape rewinds). So the path is checked
// with stat() before it is opened; and since it can be replaced between the
// two, the open does not block (O_NONBLOCK: a FIFO opens at once) and fstat()
// checks what was opened.
std::string read_file(const std::string& path, std::string* out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::strerror(errno);
  if (std::string problem = not_regular(st.st_mode); !problem.empty()) return problem;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return std::strerror(errno);
  std::string error;
  if (::fstat(fd, &st) != 0) {
    error = std::strerror(errno);
  } else {
    error = not_regular(st.st_mode);
  }
  char buf[65536];
  while (error.empty()) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) error = std::strerror(errno);
    if (n <= 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > kMaxConfigBytes) error = std::strerror(EFBIG);
  }
  ::close(fd);
  return error;
}

}  // namespace

// The config is meaningful only when the result is ok(); with errors it holds
// whatever could be read, for nobody to use.
ConfigResult parse_config(std::string_view json_text) {
  ConfigResult result;
  // The JSON reader takes a NUL byte for the end of the input, so "{}" then a
  // NUL then anything at all would pass as "{}". A config is text: refuse.
  if (size_t at = json_text.find('\0'); at != std::string_view::npos) {
    // Counted from 1, like the positions of the parse errors.
    result.errors.push_back("config: parse error at byte " + std::to_string(at + 1) +
                            ": NUL byte (a config is JSON text)");
    return result;
  }
  // Still never throw: out of memory, or a bug here. The JSON library's
  // messages are not shown: they name its own exception ids, not the config.
  try {
    json root;
    if (parse_json(json_text, &root, &result.errors)) {
      validate(root, &result.config, &result.errors);
    }
  } catch (const std::bad_alloc&) {
    result.errors.push_back("config: out of memory");
  } catch (const json::exception&) {
    result.errors.push_back("config: internal error in the config loader (JSON access)");
  } catch (const std::exception& e) {
    result.errors.push_back(std::string("config: internal error: ") + e.what());
  }
  return result;
}

ConfigResult load_config_file(const std::string& path) {
  std::string text;
  if (std::string error = read_file(path, &text); !error.empty()) {
    ConfigResult result;
    result.errors.push_back("config: cannot read " + escape_text(path) + ": " + error);
    return result;
  }
  return parse_config(text);
}

std::string printable_line(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string escape_text(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out += ch;
        } else {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        }
    }
  }
  return out;
}

}  // namespace ringhttpd::master
