// socket/bind/listen for the configured addresses (see listeners.h).
#include "master/listeners.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ringhttpd::master {
namespace {

constexpr int kBacklog = 4096;

std::string format_address(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    inet_ntop(AF_INET6, &a.sin6_addr, host, sizeof host);
    std::string out = "[";
    out.append(host).append("]:").append(std::to_string(ntohs(a.sin6_port)));
    return out;
  }
  const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
  inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
  std::string out = host;
  out.append(":").append(std::to_string(ntohs(a.sin_port)));
  return out;
}

bool make_address(const ListenerConfig& cfg, sockaddr_storage& ss, socklen_t& len) {
  std::memset(&ss, 0, sizeof ss);
  auto& v4 = reinterpret_cast<sockaddr_in&>(ss);
  if (inet_pton(AF_INET, cfg.address.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(static_cast<uint16_t>(cfg.port));
    len = sizeof v4;
    return true;
  }
  auto& v6 = reinterpret_cast<sockaddr_in6&>(ss);
  if (inet_pton(AF_INET6, cfg.address.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(static_cast<uint16_t>(cfg.port));
    len = sizeof v6;
    return true;
  }
  return false;
}

std::string fail(size_t i, const ListenerConfig& cfg, const char* call) {
  const bool v6 = cfg.address.find(':') != std::string::npos;  // written [::1]:80
  return "listeners[" + std::to_string(i) + "]: " + call + " " + (v6 ? "[" : "") + cfg.address +
         (v6 ? "]:" : ":") + std::to_string(cfg.port) + ": " + std::strerror(errno);
}

const Listener* find_key(const std::vector<Listener>& listeners, const std::string& key) {
  for (const Listener& l : listeners) {
    if (l.key == key) return &l;
  }
  return nullptr;
}

// Another descriptor of `l`'s open socket (the same backlog and port).
bool duplicate(size_t i, const ListenerConfig& cfg, const Listener& l, const std::string& key,
               std::vector<Listener>& out, std::string& error) {
  proto::UniqueFd dup(::fcntl(l.fd.get(), F_DUPFD_CLOEXEC, 3));
  if (!dup) return error = fail(i, cfg, "fcntl(F_DUPFD_CLOEXEC)"), false;
  out.push_back(Listener{std::move(dup), l.address, key, l.member});
  return true;
}

// A new listening socket on `ss` (SO_REUSEPORT set first for a group's
// member), appended to `out` with the address it bound.
bool bind_new(size_t i, const ListenerConfig& cfg, sockaddr_storage ss, socklen_t len,
              const std::string& key, int member, std::vector<Listener>& out, std::string& error) {
  proto::UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return error = fail(i, cfg, "socket"), false;
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (member >= 0 && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
    return error = fail(i, cfg, "setsockopt(SO_REUSEPORT)"), false;
  }
  if (ss.ss_family == AF_INET6) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) < 0) {
    error = fail(i, cfg, "bind");
    if (member > 0)
      error +=
          " (every socket of a reuseport listener needs SO_REUSEPORT: a socket "
          "systemd passes needs ReusePort=yes)";
    return false;
  }
  if (::listen(fd.get(), kBacklog) < 0) return error = fail(i, cfg, "listen"), false;
  socklen_t got = sizeof ss;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &got);
  out.push_back(Listener{std::move(fd), format_address(ss), key, member});
  return true;
}

bool config_address(size_t i, const ListenerConfig& cfg, sockaddr_storage& ss, socklen_t& len,
                    std::string& error) {
  if (make_address(cfg, ss, len)) return true;
  error = "listeners[" + std::to_string(i) + "].address: not an IP address: " + cfg.address;
  return false;
}

// A shared listener: the kept or activated socket, else a new one.
bool shared_listener(size_t i, const ListenerConfig& cfg, const std::string& key,
                     std::vector<Listener>& out, std::string& error,
                     const std::vector<Listener>& keep, const std::vector<Listener>& activated) {
  const Listener* kept = find_key(keep, key);
  if (kept == nullptr) kept = find_key(activated, key);
  if (kept != nullptr) return duplicate(i, cfg, *kept, key, out, error);
  sockaddr_storage ss;
  socklen_t len = 0;
  return config_address(i, cfg, ss, len, error) && bind_new(i, cfg, ss, len, key, -1, out, error);
}

// A reuseport group: every kept member, else systemd's socket as member 0;
// then new members up to `n_network`, on the port the group already has
// (port 0 binds a free one for the first member only).
bool reuseport_group(size_t i, const ListenerConfig& cfg, const std::string& key,
                     std::vector<Listener>& out, std::string& error,
                     const std::vector<Listener>& keep, const std::vector<Listener>& activated,
                     uint32_t n_network) {
  const size_t first = out.size();
  for (const Listener& l : keep) {
    if (l.key == key && !duplicate(i, cfg, l, key, out, error)) return false;
  }
  if (out.size() == first) {
    if (const Listener* a = find_key(activated, key.substr(0, key.rfind('/')))) {
      if (!duplicate(i, cfg, *a, key, out, error)) return false;
      out.back().member = 0;
    }
  }
  sockaddr_storage ss;
  socklen_t len = 0;
  if (out.size() > first) {
    len = sizeof ss;
    if (::getsockname(out[first].fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) < 0) {
      return error = fail(i, cfg, "getsockname"), false;
    }
  } else if (!config_address(i, cfg, ss, len, error)) {
    return false;
  }
  for (size_t m = out.size() - first; m < n_network; ++m) {
    if (!bind_new(i, cfg, ss, len, key, static_cast<int>(m), out, error)) return false;
    if (m == 0) {
      len = sizeof ss;  // port 0: the others bind the port the first one got
      ::getsockname(out[first].fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    }
  }
  return true;
}

}  // namespace

bool bind_listeners(const std::vector<ListenerConfig>& configs, std::vector<Listener>& out,
                    std::string& error, const std::vector<Listener>& keep,
                    const std::vector<Listener>& activated, uint32_t n_network) {
  for (size_t i = 0; i < configs.size(); ++i) {
    const ListenerConfig& cfg = configs[i];
    std::string key = cfg.address + ":" + std::to_string(cfg.port);
    // Port 0 may be listed more than once, each binding a port of its own:
    // the n-th such listener matches the n-th one kept, not the first.
    const auto earlier = std::count_if(
        configs.begin(), configs.begin() + static_cast<long>(i),
        [&cfg](const ListenerConfig& c) { return c.address == cfg.address && c.port == cfg.port; });
    if (earlier > 0) key.append(1, '#').append(std::to_string(earlier));
    if (find_key(keep, cfg.reuseport ? key : key + "/reuseport") != nullptr) {
      error = "listeners[" + std::to_string(i) +
              "].reuseport: cannot change while the listener serves (a socket with and one "
              "without SO_REUSEPORT cannot share the port): restart, or move it to another port";
      return false;
    }
    const bool ok = cfg.reuseport ? reuseport_group(i, cfg, key + "/reuseport", out, error, keep,
                                                    activated, n_network)
                                  : shared_listener(i, cfg, key, out, error, keep, activated);
    if (!ok) return false;
  }
  return true;
}

}  // namespace ringhttpd::master
