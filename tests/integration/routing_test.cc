// Route matching on the normalized path, through the real binary: the ways
// around a "/private" route in front of a service ("/x/../private",
// "/./private", "//private", "/%70rivate", absolute-form) all get its 403;
// a path without a normal form ("/../x", a bad escape, "%00") gets 400 and
// the connection ends; a service still sees the target as it was sent.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/integration/server_harness.h"

namespace ringhttpd::testing {
namespace {

using nlohmann::json;

std::string config() {
  return json{
      {"listeners", {{{"address", "127.0.0.1"}, {"port", 0}}}},
      {"network", {{"processes", 1}}},
      {"services", {{{"name", "app"}, {"type", "echo"}, {"processes", 1}}}},
      {"routes",
       {{{"path", "/private"}, {"respond", {{"status", 403}, {"body", "private\n"}}}},
        {{"path", "/"}, {"service", "app"}}}},
      {"admin", {{"socket", ""}}},
  }
      .dump();
}

std::string get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n";
}

// One request on a new connection.
std::optional<Client::Response> ask(int port, const std::string& target) {
  Client c(port);
  if (!c.send(get(target))) return std::nullopt;
  return c.read_response();
}

TEST(Routing, EveryWayAroundAPrivateRouteGetsIts403) {
  Server server(config());
  ASSERT_TRUE(server.ready()) << server.log();
  for (const char* target : {"/private", "/x/../private", "/./private", "//private", "/%70rivate",
                             "/%2e/private", "/x/%2E%2E/private", "/x%2F..%2Fprivate",
                             "/private/./x", "http://a/x/../private", "http://a//private?q=1"}) {
    auto r = ask(server.port(), target);
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 403) << target << ": " << r->body;
    EXPECT_EQ(r->body, "private\n") << target;
  }
}

TEST(Routing, APathWithoutANormalFormGets400AndTheConnectionEnds) {
  Server server(config());
  ASSERT_TRUE(server.ready()) << server.log();
  for (const char* target :
       {"/../x", "/a/../../private", "/%zz", "/%4", "/a%00", "http://a/../x"}) {
    Client c(server.port());
    ASSERT_TRUE(c.send(get(target)));
    auto r = c.read_response();
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 400) << target;
    EXPECT_EQ(r->headers["connection"], "close") << target;
    EXPECT_TRUE(c.closed_by_peer()) << target;
  }
}

// Pipelined behind a good request, the 400 comes after its answer, and
// nothing behind it is read.
TEST(Routing, A400ForThePathKeepsTheOrderOfPipelinedAnswers) {
  Server server(config());
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send(get("/private") + get("/../x") + get("/private")));
  auto first = c.read_response();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 403);
  auto second = c.read_response();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 400);
  EXPECT_TRUE(c.closed_by_peer());
}

// Only the matching uses the normal form: the service sees the target as
// sent (the echo handler reports its path and query).
// OPTIONS * answers for the whole server: what its routes answer. Here a
// service route without a method list answers any method the parser takes.
TEST(Routing, OptionsAsteriskListsTheMethodsTheRoutesAnswer) {
  Server server(config());
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["allow"].rfind("GET, HEAD, POST, PUT, DELETE, OPTIONS, ", 0), 0u)
      << r->headers["allow"];
  EXPECT_NE(r->headers["allow"].find("PATCH"), std::string::npos);
  for (const char* method : {"PATCH", "PROPFIND"}) {  // and they are answered
    ASSERT_TRUE(c.send(std::string(method) + " /x HTTP/1.1\r\nHost: a\r\n\r\n"));
    auto answer = c.read_response();
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->status, 200) << method;
  }
}

TEST(Routing, TheServiceSeesTheOriginalTarget) {
  Server server(config());
  ASSERT_TRUE(server.ready()) << server.log();
  for (const char* target : {"/app/items?x=1", "/a/./b//c/../d%41?q=/../%zz", "/privatex"}) {
    auto r = ask(server.port(), target);
    ASSERT_TRUE(r) << target;
    ASSERT_EQ(r->status, 200) << target << ": " << r->body;
    const json doc = json::parse(r->body);
    const std::string sent = target;
    const size_t q = sent.find('?');
    EXPECT_EQ(doc["path"], sent.substr(0, q)) << target;
    EXPECT_EQ(doc["query"], q == std::string::npos ? "" : sent.substr(q + 1)) << target;
  }
}

}  // namespace
}  // namespace ringhttpd::testing
