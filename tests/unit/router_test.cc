// Route matching by method, host and normalized path prefix, and the
// dispatch choice.
#include "worker/router.h"

#include <gtest/gtest.h>

#include "proto/http_parser.h"
#include "worker/dispatch.h"

namespace ringhttpd::worker {
namespace {

proto::HttpRequest request(std::string method, std::string target, std::string host = "") {
  proto::HttpRequest req;
  req.method = std::move(method);
  req.target = std::move(target);
  if (!host.empty()) req.headers.push_back({"Host", std::move(host)});
  return req;
}

// The matched route (nullptr: none, or a refused path).
const RouteSettings* matched(const Router& router, const proto::HttpRequest& req) {
  std::string scratch;
  return router.match(req, scratch).route;
}

RouteSettings route(std::string path, std::vector<std::string> methods = {},
                    std::string host = "") {
  RouteSettings r;
  r.path = std::move(path);
  r.methods = std::move(methods);
  r.host = std::move(host);
  return r;
}

RouteSettings static_route(std::string path, std::vector<std::string> methods = {}) {
  RouteSettings r = route(std::move(path), std::move(methods));
  r.kind = RouteSettings::Kind::static_files;
  return r;
}

// OPTIONS * lists what some route answers, in the parser's order.
TEST(Router, TheServerAllowListsWhatSomeRouteAnswers) {
  EXPECT_EQ(Router::server_allow({}), "OPTIONS");
  EXPECT_EQ(Router::server_allow({route("/a", {"POST", "PATCH"}), static_route("/s/")}),
            "GET, HEAD, POST, OPTIONS, PATCH");
  // A static route answers only GET and HEAD, whatever it lists (405).
  EXPECT_EQ(Router::server_allow({static_route("/s/", {"POST", "HEAD"})}), "HEAD, OPTIONS");
  // A route without a method list answers every method the parser takes.
  const std::string all = Router::server_allow({route("/a", {"GET"}), route("/")});
  std::string expected;
  for (std::string_view m : proto::accepted_methods()) {
    expected += (expected.empty() ? "" : ", ") + std::string(m);
  }
  EXPECT_EQ(all, expected);
  EXPECT_EQ(all.rfind("GET, HEAD, POST, PUT, DELETE, OPTIONS, ", 0), 0u) << all;
  for (const char* m : {"PATCH", "M-SEARCH", "PROPFIND", "SOURCE"}) {
    EXPECT_NE(all.find(m), std::string::npos) << m;
  }
  EXPECT_EQ(all.find("CONNECT"), std::string::npos);  // 501
}

TEST(Router, PathPrefixMatchesOnSegmentBoundaries) {
  EXPECT_TRUE(Router::path_matches("/api", "/api"));
  EXPECT_TRUE(Router::path_matches("/api", "/api/x"));
  EXPECT_FALSE(Router::path_matches("/api", "/apix"));
  EXPECT_FALSE(Router::path_matches("/api", "/ap"));
  EXPECT_TRUE(Router::path_matches("/", "/anything"));
  EXPECT_TRUE(Router::path_matches("/static/", "/static/a.css"));
}

TEST(Router, FirstMatchingRouteWins) {
  const std::vector<RouteSettings> routes = {route("/healthz"), route("/api", {"POST"}),
                                             route("/", {}, "example.com"), route("/")};
  const Router router(routes);
  EXPECT_EQ(matched(router, request("GET", "/healthz")), &routes[0]);
  EXPECT_EQ(matched(router, request("GET", "/healthz?x=1")), &routes[0]);
  EXPECT_EQ(matched(router, request("POST", "/api/items")), &routes[1]);
  EXPECT_EQ(matched(router, request("GET", "/api/items", "Example.COM:8080")), &routes[2]);
  EXPECT_EQ(matched(router, request("GET", "/api/items", "other.org")), &routes[3]);
}

TEST(Router, NoMatchGivesNull) {
  const std::vector<RouteSettings> routes = {route("/only", {"GET"})};
  const Router router(routes);
  EXPECT_EQ(matched(router, request("GET", "/other")), nullptr);
  EXPECT_EQ(matched(router, request("PUT", "/only")), nullptr);
}

// nginx matches locations against the normalized URI; so do we: none of
// these reaches the catch-all behind "/private".
TEST(Router, MatchesTheNormalizedPath) {
  const std::vector<RouteSettings> routes = {route("/private"), route("/")};
  const Router router(routes);
  for (const char* target :
       {"/private", "/x/../private", "/./private", "//private", "/%70rivate", "/private/./",
        "/PUBLIC/../private/x", "/private%2Fx", "/x%2F..%2Fprivate", "http://a/x/../private",
        "http://a//private?q=/", "/%2e/private#f"}) {
    EXPECT_EQ(matched(router, request("GET", target)), &routes[0]) << target;
  }
  for (const char* target : {"/privatex", "/x/private", "/private/../x", "/%2570rivate"}) {
    EXPECT_EQ(matched(router, request("GET", target)), &routes[1]) << target;
  }
}

TEST(Router, APathWithoutANormalFormIs400) {
  const std::vector<RouteSettings> routes = {route("/")};
  const Router router(routes);
  for (const char* target : {"/../x", "/a/../../x", "/%zz", "/%4", "/%00", "http://a/../x"}) {
    std::string scratch;
    const RouteMatch m = router.match(request("GET", target), scratch);
    EXPECT_EQ(m.route, nullptr) << target;
    EXPECT_EQ(m.status, 400) << target;
  }
}

TEST(Router, TheQueryIsNotPartOfThePath) {
  const std::vector<RouteSettings> routes = {route("/private"), route("/")};
  const Router router(routes);
  // A query is not normalized (nor refused): "%zz" and ".." there are data.
  std::string scratch;
  const RouteMatch m = router.match(request("GET", "/private?x=/../%zz"), scratch);
  EXPECT_EQ(m.route, &routes[0]);
  EXPECT_EQ(m.status, 0);
}

TEST(Dispatch, ChoosesTheShortestQueue) {
  const uint64_t inflight[] = {5, 2, 9};
  const uint8_t all[] = {1, 1, 1};
  EXPECT_EQ(choose_service(inflight, all, {}, 0), 1);
  EXPECT_EQ(choose_service(inflight, all, {}, 2), 1);
}

TEST(Dispatch, TiesGoRoundRobinFromStart) {
  const uint64_t inflight[] = {0, 0, 0};
  const uint8_t all[] = {1, 1, 1};
  EXPECT_EQ(choose_service(inflight, all, {}, 0), 0);
  EXPECT_EQ(choose_service(inflight, all, {}, 1), 1);
  EXPECT_EQ(choose_service(inflight, all, {}, 5), 2);
}

TEST(Dispatch, PassesOverUnavailableProcesses) {
  const uint64_t inflight[] = {0, 7, 3};
  const uint8_t some[] = {0, 1, 1};
  EXPECT_EQ(choose_service(inflight, some, {}, 0), 2);
  const uint8_t none[] = {0, 0, 0};
  EXPECT_EQ(choose_service(inflight, none, {}, 0), -1);
}

TEST(Dispatch, PrefersAnAwakeProcessWithinTheMargin) {
  const uint64_t inflight[] = {3, 3 + kAwakeMargin, 3 + kAwakeMargin + 1};
  const uint8_t all[] = {1, 1, 1};
  const uint8_t second_awake[] = {0, 1, 0};
  EXPECT_EQ(choose_service(inflight, all, second_awake, 0), 1);
  const uint8_t third_awake[] = {0, 0, 1};  // one request past the margin: wake the first
  EXPECT_EQ(choose_service(inflight, all, third_awake, 0), 0);
}

TEST(Dispatch, AmongAwakeProcessesTheShortestQueueWins) {
  const uint64_t inflight[] = {0, 4, 2};
  const uint8_t all[] = {1, 1, 1};
  const uint8_t awake[] = {0, 1, 1};
  EXPECT_EQ(choose_service(inflight, all, awake, 0), 2);
  const uint8_t all_awake[] = {1, 1, 1};
  EXPECT_EQ(choose_service(inflight, all, all_awake, 1), 0);
}

TEST(Dispatch, AnAwakeProcessThatCannotTakeItIsPassedOver) {
  const uint64_t inflight[] = {5, 0};
  const uint8_t second_only[] = {0, 1};
  const uint8_t first_awake[] = {1, 0};
  EXPECT_EQ(choose_service(inflight, second_only, first_awake, 0), 1);
}

}  // namespace
}  // namespace ringhttpd::worker
