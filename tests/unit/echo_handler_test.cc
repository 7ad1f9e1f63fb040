// The echo handler's JSON: every byte of the request either round-trips or
// (invalid UTF-8) becomes U+FFFD, the output always parses, its bytes stay
// what clients already read, and many headers cost linear time, not quadratic.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

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
  handler.handle(ServiceRequest{std::move(req), proto::RequestOrigin{7, 3, 0, "127.0.0.1"}},
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

// Pins the exact bytes (member order, separators, how repeated names join)
// so that a rewrite of the handler cannot change what clients already parse.
TEST(EchoHandler, OutputBytesAreStable) {
  proto::HttpRequest req = request("GET", "/p?q=1");
  req.headers = {{"Host", "h"}, {"X-A", "1"}, {"Accept", "*/*"}, {"X-A", "2"},
                 {"x-a", "3"},  {"X-A", "4"}, {"Q", "\"\\"}};
  req.body = "hi";
  proto::HttpResponse raw;
  echo(req, &raw);
  EXPECT_EQ(raw.body,
            "{\"method\":\"GET\",\"path\":\"/p\",\"query\":\"q=1\",\"version\":\"1.1\","
            "\"headers\":{\"Host\":\"h\",\"X-A\":\"1, 2, 4\",\"Accept\":\"*/*\",\"x-a\":\"3\","
            "\"Q\":\"\\\"\\\\\"},\"body_length\":2,\"body\":\"hi\","
            "\"network\":{\"pid\":7,\"generation\":3,\"index\":0},"
            "\"service\":{\"name\":\"app\",\"pid\":42,\"generation\":3,\"index\":1}}\n");
  req.headers.clear();
  echo(req, &raw);
  EXPECT_NE(raw.body.find("\"headers\":{},\"body_length\""), std::string::npos) << raw.body;
}

// 32,768 header fields (each name twice, far apart) used to hold a service
// process for seconds. Correctness only: the time is the suite's timeout.
TEST(EchoHandler, HandlesThirtyTwoThousandHeaders) {
  constexpr size_t kFields = 32768;
  constexpr size_t kNames = kFields / 2;
  proto::HttpRequest req = request("GET", "/");
  req.headers.reserve(kFields);
  for (size_t i = 0; i < kFields; ++i) {
    std::string name = "X-";
    name += std::to_string(i % kNames);
    req.headers.push_back({std::move(name), std::to_string(i)});
  }
  proto::HttpResponse raw;
  const auto doc = echo(req, &raw);
  const auto& headers = doc["headers"];
  ASSERT_EQ(headers.size(), kNames);
  // Order of first appearance, by one forward scan of the bytes (the quote
  // after each name keeps "X-1" from matching "X-10"); ordered_json would do,
  // but its member lookup is itself quadratic.
  size_t at = raw.body.find("\"headers\":{");
  ASSERT_NE(at, std::string::npos);
  for (size_t i = 0; i < kNames; ++i) {
    std::string name = "X-";
    name += std::to_string(i);
    const std::string joined = std::to_string(i) + ", " + std::to_string(i + kNames);
    ASSERT_EQ(headers[name], joined) << name;
    at = raw.body.find("\"" + name + "\":\"" + joined + "\"", at);
    ASSERT_NE(at, std::string::npos) << name << " missing or out of order";
  }
}

}  // namespace
}  // namespace ringhttpd::worker
