// Which requests a network process gives away with their connection: the
// decision, apart from the sockets (NetworkProcess::take_over does the
// sending), so it is tested without processes.
//
// A request is taken over when it is an upgrade (proto::RequestHead::upgrade:
// a GET without a body, "Connection: upgrade" and an Upgrade header, not
// "close"), its
// route goes to a proxy service with `upgrade` on, and the process is not
// stopping (a server going away serves it as plain HTTP, with close, as
// before the feature). Everything else goes through the rings as always.
#pragma once

#include <span>

#include "proto/http_request.h"
#include "worker/settings.h"

namespace ringhttpd::worker {

inline bool takes_over(const proto::RequestHead& head, const RouteSettings* route,
                       std::span<const ServiceSettings> services, bool stopping) {
  // "Connection: upgrade, close" contradicts itself: plain HTTP, with close.
  if (!head.upgrade || !head.keep_alive || stopping || route == nullptr) return false;
  if (route->kind != RouteSettings::Kind::service || route->service_index < 0) return false;
  const auto s = static_cast<size_t>(route->service_index);
  return s < services.size() && services[s].type == "proxy" && services[s].proxy.upgrade;
}

}  // namespace ringhttpd::worker
