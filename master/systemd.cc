// sd_notify messages and socket activation through libsystemd (see
// systemd.h).
#include "master/systemd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "worker/log.h"

namespace ringhttpd::master {
namespace {

using worker::log_info;
using worker::log_warn;

uint64_t monotonic_usec() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

// The configured address as a socket address, or false when it is not an
// IP literal (the config loader already refused those).
bool configured_address(const ListenerConfig& cfg, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof ss);
  auto& v4 = reinterpret_cast<sockaddr_in&>(ss);
  if (inet_pton(AF_INET, cfg.address.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(static_cast<uint16_t>(cfg.port));
    return true;
  }
  auto& v6 = reinterpret_cast<sockaddr_in6&>(ss);
  if (inet_pton(AF_INET6, cfg.address.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(static_cast<uint16_t>(cfg.port));
    return true;
  }
  return false;
}

// Family, address and port equal (scope ids and flow labels are ignored).
bool same_endpoint(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    const auto& x = reinterpret_cast<const sockaddr_in&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in&>(b);
    return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
  }
  if (a.ss_family == AF_INET6) {
    const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
    return x.sin6_port == y.sin6_port &&
           std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
  }
  return false;
}

std::string format_endpoint(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    inet_ntop(AF_INET6, &a.sin6_addr, host, sizeof host);
    std::string out = "[";  // appended: GCC 12 warns falsely (-Wrestrict) on "[" + string
    out.append(host).append("]:").append(std::to_string(ntohs(a.sin6_port)));
    return out;
  }
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(a.sin_port));
  }
  return "(not an IP socket)";
}

std::string describe(const PassedSocket& s) {
  return "fd " + std::to_string(s.fd.get()) + " (" + format_endpoint(s.address) + ", name \"" +
         escape_text(s.name) + "\")";
}

// Everything systemd passed, in order. sd_listen_fds checks LISTEN_PID, so
// variables meant for another process (inherited through a shell) are
// ignored; `unset_environment` = 1 removes them either way.
std::vector<PassedSocket> take_passed_sockets() {
  char** names = nullptr;
  const int n = sd_listen_fds_with_names(1, &names);
  std::vector<PassedSocket> out;
  if (n < 0) {
    log_warn(std::string("socket activation: sd_listen_fds_with_names: ") + std::strerror(-n) +
             "; binding every listener");
    return out;
  }
  for (int i = 0; i < n; ++i) {
    PassedSocket s;
    s.fd.reset(SD_LISTEN_FDS_START + i);
    s.name = names != nullptr && names[i] != nullptr ? names[i] : "unknown";
    out.push_back(std::move(s));
  }
  if (names != nullptr) {
    for (int i = 0; i < n; ++i) std::free(names[i]);
    std::free(names);
  }
  return out;
}

}  // namespace

// ---- sd_notify -------------------------------------------------------------

SystemdNotifier::SystemdNotifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && socket[0] != '\0';
  uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set (and WATCHDOG_PID, if set, is ours).
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0) {
    watchdog_ms_ = std::max<int64_t>(1, static_cast<int64_t>(usec / 1000));
  }
}

void SystemdNotifier::send(const std::string& message) {
  if (!enabled_) return;
  // Not fatal: the service manager may have gone away (or the test socket).
  if (const int r = sd_notify(0, message.c_str()); r < 0) {
    worker::log_debug(std::string("sd_notify: ") + std::strerror(-r));
  }
}

void SystemdNotifier::ready(std::string_view status) {
  send("READY=1\nSTATUS=" + status_line(status));
}

void SystemdNotifier::reloading(std::string_view status) {
  // MONOTONIC_USEC lets systemd (253+, Type=notify-reload) tell this reload
  // from an older one; 252 ignores it.
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec()) +
       "\nSTATUS=" + status_line(status));
}

void SystemdNotifier::stopping(std::string_view status) {
  send("STOPPING=1\nSTATUS=" + status_line(status));
}

void SystemdNotifier::status(std::string_view status) { send("STATUS=" + status_line(status)); }

void SystemdNotifier::extend_timeout(int64_t ms) {
  send("EXTEND_TIMEOUT_USEC=" + std::to_string(std::max<int64_t>(0, ms) * 1000));
}

void SystemdNotifier::watchdog(int64_t now_ms, bool healthy) {
  if (watchdog_ms_ == 0) return;
  const int64_t half = std::max<int64_t>(1, watchdog_ms_ / 2);
  if (healthy) send("WATCHDOG=1");
  next_check_ms_ = now_ms + (healthy ? half : std::min<int64_t>(half, 100));
}

int64_t SystemdNotifier::watchdog_due_ms() const {
  return watchdog_ms_ == 0 ? std::numeric_limits<int64_t>::max() : next_check_ms_;
}

std::string status_line(std::string_view text) {
  constexpr size_t kMax = 200;
  std::string out(text.substr(0, kMax));
  std::replace_if(
      out.begin(), out.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return out;
}

bool watchdog_healthy(bool serving, const std::vector<int64_t>& crash_loops_since_ms,
                      int64_t now_ms, int64_t interval_ms) {
  if (!serving) return false;
  return std::none_of(crash_loops_since_ms.begin(), crash_loops_since_ms.end(),
                      [&](int64_t since) { return now_ms - since > interval_ms; });
}

// ---- socket activation -------------------------------------------------------

std::string descriptor_name(const ListenerConfig& listener) {
  std::string name = listener.address + "_" + std::to_string(listener.port);
  std::replace(name.begin(), name.end(), ':', '_');
  return name;
}

int match_passed_socket(const std::vector<ListenerConfig>& configs, const sockaddr_storage& bound,
                        std::string_view name) {
  for (size_t i = 0; i < configs.size(); ++i) {
    sockaddr_storage want;
    if (configs[i].port != 0 && configured_address(configs[i], want) &&
        same_endpoint(want, bound)) {
      return static_cast<int>(i);
    }
  }
  for (size_t i = 0; i < configs.size(); ++i) {
    if (descriptor_name(configs[i]) == name) return static_cast<int>(i);
  }
  return -1;
}

std::vector<Listener> take_activated_listeners(const std::vector<ListenerConfig>& configs) {
  std::vector<Listener> out;
  std::vector<bool> taken(configs.size(), false);
  for (PassedSocket& s : take_passed_sockets()) {
    s.address_len = sizeof s.address;
    if (::getsockname(s.fd.get(), reinterpret_cast<sockaddr*>(&s.address), &s.address_len) < 0) {
      log_warn("socket activation: " + describe(s) + ": " + worker::errno_message("getsockname") +
               "; closed");
      continue;
    }
    // Only listening TCP sockets can be listeners (a unit may pass others).
    if (sd_is_socket(s.fd.get(), AF_UNSPEC, SOCK_STREAM, 1) <= 0 ||
        (s.address.ss_family != AF_INET && s.address.ss_family != AF_INET6)) {
      log_warn("socket activation: " + describe(s) + " is not a listening TCP socket; closed");
      continue;
    }
    const int i = match_passed_socket(configs, s.address, s.name);
    if (i < 0 || taken[static_cast<size_t>(i)]) {
      log_warn("socket activation: " + describe(s) +
               (i < 0 ? " matches no configured listener" : " matches a listener already taken") +
               "; closed");
      continue;
    }
    // systemd's sockets are blocking and inherited without FD_CLOEXEC; the
    // server's own are neither (accept must never block a network process,
    // and nothing the server forks may keep a listener by accident).
    const int flags = ::fcntl(s.fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(s.fd.get(), F_SETFL, flags | O_NONBLOCK) < 0 ||
        ::fcntl(s.fd.get(), F_SETFD, FD_CLOEXEC) < 0) {
      log_warn("socket activation: " + describe(s) + ": " + worker::errno_message("fcntl") +
               "; closed");
      continue;
    }
    taken[static_cast<size_t>(i)] = true;
    const ListenerConfig& cfg = configs[static_cast<size_t>(i)];
    log_info("listeners[" + std::to_string(i) + "] " + format_endpoint(s.address) +
             ": taken from systemd (socket activation, " + describe(s) + ")");
    out.push_back(Listener{std::move(s.fd), format_endpoint(s.address),
                           cfg.address + ":" + std::to_string(cfg.port)});
  }
  return out;
}

}  // namespace ringhttpd::master
