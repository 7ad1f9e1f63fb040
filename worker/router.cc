// Route matching (see router.h).
#include "worker/router.h"

#include <algorithm>

#include "proto/http_parser.h"

namespace ringhttpd::worker {

bool Router::path_matches(std::string_view prefix, std::string_view path) {
  if (!path.starts_with(prefix)) return false;
  if (path.size() == prefix.size() || prefix.ends_with('/')) return true;
  return path[prefix.size()] == '/';
}

bool Router::method_matches(const RouteSettings& route, std::string_view method) {
  if (route.methods.empty()) return true;
  for (const std::string& m : route.methods) {
    if (m == method) return true;
  }
  return false;
}

std::string Router::server_allow(const std::vector<RouteSettings>& routes) {
  std::string allow;
  for (std::string_view m : proto::accepted_methods()) {
    const bool answered =
        m == "OPTIONS" || std::any_of(routes.begin(), routes.end(), [m](const RouteSettings& r) {
          const bool kind_takes =
              r.kind != RouteSettings::Kind::static_files || m == "GET" || m == "HEAD";
          return kind_takes && method_matches(r, m);
        });
    if (!answered) continue;
    if (!allow.empty()) allow += ", ";
    allow += m;
  }
  return allow;
}

}  // namespace ringhttpd::worker
