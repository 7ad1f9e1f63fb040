// Route matching (see router.h).
#include "worker/router.h"

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

}  // namespace ringhttpd::worker
