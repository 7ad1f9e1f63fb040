// Route selection: the first route whose method list, host and path prefix
// all match the request. Pure (no I/O), so it is tested directly.
//
// The path a route matches is the request's path in normal form
// (proto/normalize_path.h: percent-decoded, dot-segments removed, slashes
// merged), so "/x/../private", "//private" and "/%70rivate" all meet the
// route for "/private". Only the matching uses it: the request keeps its
// target as received (a service or upstream sees it unchanged).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proto/http_request.h"
#include "proto/normalize_path.h"
#include "worker/settings.h"

namespace ringhttpd::worker {

// What routing decided for a request.
struct RouteMatch {
  const RouteSettings* route = nullptr;  // nullptr: no route (404), or `status`
  int status = 0;                        // 400 when the path has no normal form
};

class Router {
 public:
  explicit Router(const std::vector<RouteSettings>& routes) : routes_(routes) {}

  // The matching route for the request's normalized path, or why there is
  // none. `scratch` holds the normal form when the path needs one (its
  // capacity is kept by the caller: the common path copies nothing).
  // `Request` is proto::RequestHead (the network process) or
  // proto::HttpRequest.
  template <typename Request>
  RouteMatch match(const Request& req, std::string& scratch) const {
    const proto::NormalizedPath normal = proto::normalize_path(req.path(), scratch);
    if (normal.status != 0) return {nullptr, normal.status};
    return {match_path(req, normal.path), 0};
  }

  // The first route matching the request's method and host and `path` (in
  // normal form), or nullptr. The host is worked out only if a route names one.
  template <typename Request>
  const RouteSettings* match_path(const Request& req, std::string_view path) const {
    std::string host;
    bool host_known = false;
    for (const RouteSettings& route : routes_) {
      if (!method_matches(route, req.method)) continue;
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

  // A path prefix matches at a segment boundary: "/api" matches "/api",
  // "/api/x" and "/api?q", not "/apix". A prefix ending in '/' matches any
  // path that starts with it.
  static bool path_matches(std::string_view prefix, std::string_view path);
  // The route names no methods, or this one (exact).
  static bool method_matches(const RouteSettings& route, std::string_view method);
  // The Allow value for OPTIONS *: every method some route answers (a route
  // without a method list answers any the parser takes; a static route only
  // GET and HEAD, others are 405), and OPTIONS, which "*" itself is.
  static std::string server_allow(const std::vector<RouteSettings>& routes);

 private:
  const std::vector<RouteSettings>& routes_;
};

}  // namespace ringhttpd::worker
