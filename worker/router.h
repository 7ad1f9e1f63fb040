// Route selection: the first route whose method list, host and path prefix
// all match the request. Pure (no I/O), so it is tested directly.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proto/http_request.h"
#include "worker/settings.h"

namespace ringhttpd::worker {

class Router {
 public:
  explicit Router(const std::vector<RouteSettings>& routes) : routes_(routes) {}

  // The matching route, or nullptr (the caller answers 404).
  // `Request` is proto::RequestHead (the network process) or
  // proto::HttpRequest; the host is worked out only if a route names one.
  template <typename Request>
  const RouteSettings* match(const Request& req) const {
    const std::string_view path = req.path();
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

 private:
  const std::vector<RouteSettings>& routes_;
};

}  // namespace ringhttpd::worker
