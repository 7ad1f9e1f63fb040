// Route matching (see router.h).
#include "worker/router.h"

namespace ringhttpd::worker {

bool Router::path_matches(std::string_view prefix, std::string_view path) {
  if (!path.starts_with(prefix)) return false;
  if (path.size() == prefix.size() || prefix.ends_with('/')) return true;
  return path[prefix.size()] == '/';
}

const RouteSettings* Router::match(std::string_view method, std::string_view target,
                                   std::string_view host_header) const {
  const std::string_view path = proto::target_path(target);
  std::string host;  // computed once, only if some route needs it
  bool host_known = false;
  for (const RouteSettings& route : routes_) {
    if (!route.methods.empty()) {
      bool any = false;
      for (const std::string& m : route.methods) any = any || m == method;
      if (!any) continue;
    }
    if (!route.host.empty()) {
      if (!host_known) {
        host = proto::request_host(target, host_header);
        host_known = true;
      }
      if (!proto::iequals(host, route.host)) continue;
    }
    if (path_matches(route.path, path)) return &route;
  }
  return nullptr;
}

}  // namespace ringhttpd::worker
