// Route matching (see router.h).
#include "worker/router.h"

namespace ringhttpd::worker {

bool Router::path_matches(std::string_view prefix, std::string_view path) {
  if (!path.starts_with(prefix)) return false;
  if (path.size() == prefix.size() || prefix.ends_with('/')) return true;
  return path[prefix.size()] == '/';
}

const RouteSettings* Router::match(const proto::HttpRequest& req) const {
  const std::string_view path = req.path();
  std::string host;  // computed once, only if some route needs it
  bool host_known = false;
  for (const RouteSettings& route : routes_) {
    if (!route.methods.empty()) {
      bool any = false;
      for (const std::string& m : route.methods) any = any || m == req.method;
      if (!any) continue;
    }
    if (!route.host.empty()) {
      if (!host_known) {
        host = req.host();
        host_known = true;
      }
      if (!proto::iequals(host, route.host)) continue;
    }
    if (path_matches(route.path, path)) return &route;
  }
  return nullptr;
}

}  // namespace ringhttpd::worker
