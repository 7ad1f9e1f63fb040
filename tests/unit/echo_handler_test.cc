// The echo handler's JSON: every byte of the request either round-trips or
// (invalid UTF-8) becomes U+FFFD, and the output always parses.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "worker/handlers/echo.h"

namespace ringhttpd::worker {
namespace {

class Capture : public Responder {
 public:
  explicit Capture(proto::HttpResponse* out) : out_(out) {}
  void respond(proto::HttpResponse response) override { *out_ = std::move(response); }

 private:
  proto::HttpResponse* out_;
};

proto::HttpRequest request(std::string method, std::string target) {
  proto::HttpRequest req;
  req.method = std::move(method);
  req.target = std::move(target);
  return req;
}

nlohmann::json echo(proto::HttpRequest req, proto::HttpResponse* raw = nullptr) {
  EchoHandler handler(ServiceIdentity{"app", 42, 3, 1});
  proto::HttpResponse response;
  handler.handle(ServiceRequest{std::move(req), proto::RequestOrigin{7, 3, 0}},
                 std::make_unique<Capture>(&response));
  if (raw != nullptr) *raw = response;
  return nlohmann::json::parse(response.body);
}

TEST(EchoHandler, DescribesTheRequestAndTheProcesses) {
  proto::HttpRequest req = request("POST", "/a/b?x=1");
  req.headers = {{"Host", "h"}, {"X-A", "1"}, {"X-A", "2"}};
  req.body = "hello";
  proto::HttpResponse raw;
  const auto doc = echo(req, &raw);
  EXPECT_EQ(raw.status, 200);
  EXPECT_EQ(doc["method"], "POST");
  EXPECT_EQ(doc["path"], "/a/b");
  EXPECT_EQ(doc["query"], "x=1");
  EXPECT_EQ(doc["version"], "1.1");
  EXPECT_EQ(doc["headers"]["Host"], "h");
  EXPECT_EQ(doc["headers"]["X-A"], "1, 2");
  EXPECT_EQ(doc["body_length"], 5);
  EXPECT_EQ(doc["body"], "hello");
  EXPECT_EQ(doc["network"]["pid"], 7);
  EXPECT_EQ(doc["network"]["generation"], 3);
  EXPECT_EQ(doc["service"]["name"], "app");
  EXPECT_EQ(doc["service"]["pid"], 42);
  EXPECT_EQ(doc["service"]["index"], 1);
}

TEST(EchoHandler, EscapesControlCharactersQuotesAndBackslashes) {
  proto::HttpRequest req = request("GET", "/");
  req.body = std::string("a\"b\\c\n\t\x01", 8) + std::string(1, '\0') + "z";
  EXPECT_EQ(echo(req)["body"], req.body);
}

TEST(EchoHandler, KeepsValidUtf8AndReplacesInvalidBytes) {
  proto::HttpRequest req = request("GET", "/");
  req.body = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";  // café € 😀
  EXPECT_EQ(echo(req)["body"], req.body);
  req.body =
      "a\xff"
      "b\xc3"
      "c\xed\xa0\x80"
      "d\xc0\xaf";  // bad, truncated, surrogate, overlong
  const auto doc = echo(req);
#define FFFD "\xef\xbf\xbd"
  EXPECT_EQ(doc["body"], "a" FFFD "b" FFFD "c" FFFD FFFD FFFD "d" FFFD FFFD);
#undef FFFD
  EXPECT_EQ(doc["body_length"], req.body.size());
}

TEST(EchoHandler, NoHeadersGivesAnEmptyObject) {
  proto::HttpRequest req = request("GET", "/");
  EXPECT_TRUE(echo(req)["headers"].empty());
}

}  // namespace
}  // namespace ringhttpd::worker
