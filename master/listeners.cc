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
  return "listeners[" + std::to_string(i) + "]: " + call + " " + cfg.address + ":" +
         std::to_string(cfg.port) + ": " + std::strerror(errno);
}

const Listener* find_key(const std::vector<Listener>& listeners, const std::string& key) {
  for (const Listener& l : listeners) {
    if (l.key == key) return &l;
  }
  return nullptr;
}

}  // namespace

bool bind_listeners(const std::vector<ListenerConfig>& configs, std::vector<Listener>& out,
                    std::string& error, const std::vector<Listener>& keep,
                    const std::vector<Listener>& activated) {
  for (size_t i = 0; i < configs.size(); ++i) {
    const ListenerConfig& cfg = configs[i];
    const std::string key = cfg.address + ":" + std::to_string(cfg.port);
    const Listener* kept = find_key(keep, key);
    if (kept == nullptr) kept = find_key(activated, key);
    if (kept != nullptr) {
      proto::UniqueFd dup(::fcntl(kept->fd.get(), F_DUPFD_CLOEXEC, 3));
      if (!dup) return error = fail(i, cfg, "fcntl(F_DUPFD_CLOEXEC)"), false;
      out.push_back(Listener{std::move(dup), kept->address, key});
      continue;
    }
    sockaddr_storage ss;
    socklen_t len = 0;
    if (!make_address(cfg, ss, len)) {
      error = "listeners[" + std::to_string(i) + "].address: not an IP address: " + cfg.address;
      return false;
    }
    proto::UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return error = fail(i, cfg, "socket"), false;
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) < 0) {
      return error = fail(i, cfg, "bind"), false;
    }
    if (::listen(fd.get(), kBacklog) < 0) return error = fail(i, cfg, "listen"), false;
    socklen_t got = sizeof ss;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &got);
    out.push_back(Listener{std::move(fd), format_address(ss), key});
  }
  return true;
}

}  // namespace ringhttpd::master
