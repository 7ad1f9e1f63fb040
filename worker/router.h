// Route selection: the first route whose method list, host and path prefix
// all match the request. Pure (no I/O), so it is tested directly.
#pragma once

#include <vector>

#include "proto/http_request.h"
#include "worker/settings.h"

namespace ringhttpd::worker {

class Router {
 public:
  explicit Router(const std::vector<RouteSettings>& routes) : routes_(routes) {}

  // The matching route, or nullptr (the caller answers 404).
  const RouteSettings* match(const proto::RequestHead& req) const {
    return match(req.method, req.target, req.header("Host"));
  }
  const RouteSettings* match(const proto::HttpRequest& req) const {
    return match(req.method, req.target, req.header("Host"));
  }
  const RouteSettings* match(std::string_view method, std::string_view target,
                             std::string_view host_header) const;

  // A path prefix matches at a segment boundary: "/api" matches "/api",
  // "/api/x" and "/api?q", not "/apix". A prefix ending in '/' matches any
  // path that starts with it.
  static bool path_matches(std::string_view prefix, std::string_view path);

 private:
  const std::vector<RouteSettings>& routes_;
};

}  // namespace ringhttpd::worker
