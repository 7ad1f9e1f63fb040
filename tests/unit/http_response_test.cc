// Response heads: status line, framing headers owned by the writer, bodiless
// statuses.
#include "proto/http_response.h"

#include <gtest/gtest.h>

namespace ringhttpd::proto {
namespace {

constexpr std::string_view kDate = "Wed, 25 Nov 2026 10:00:00 GMT";

TEST(HttpResponse, HeadCarriesStatusLengthAndConnection) {
  std::string out;
  append_response_head(out, 200, std::vector<Header>{{"Content-Type", "text/plain"}}, 5, true,
                       kDate);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nServer: ringhttpd\r\nDate: Wed, 25 Nov 2026 10:00:00 GMT\r\n"
            "Content-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n");
}

TEST(HttpResponse, HandlerFramingHeadersAreDropped) {
  std::string out;
  append_response_head(out, 200,
                       std::vector<Header>{{"Content-Length", "999"},
                                           {"transfer-encoding", "chunked"},
                                           {"Connection", "upgrade"},
                                           {"X-Ok", "1"}},
                       3, false, kDate);
  EXPECT_EQ(out.find("999"), std::string::npos);
  EXPECT_EQ(out.find("chunked"), std::string::npos);
  EXPECT_NE(out.find("X-Ok: 1\r\n"), std::string::npos);
  EXPECT_NE(out.find("Content-Length: 3\r\n"), std::string::npos);
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
}

TEST(HttpResponse, NoContentHasNoLength) {
  std::string out;
  append_response_head(out, 204, std::vector<Header>{}, 0, true, kDate);
  EXPECT_EQ(out.find("Content-Length"), std::string::npos);
  EXPECT_FALSE(response_has_body("GET", 204));
  EXPECT_FALSE(response_has_body("HEAD", 200));
  EXPECT_FALSE(response_has_body("GET", 304));
  EXPECT_TRUE(response_has_body("GET", 200));
}

TEST(HttpResponse, SimpleErrorResponseHasABody) {
  const std::string r =
      make_simple_response(503, true, kDate, "text/plain", {}, false, "Retry-After: 1\r\n");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
  EXPECT_NE(r.find("Retry-After: 1\r\n\r\n503 Service Unavailable\n"), std::string::npos);
  EXPECT_NE(r.find("Content-Length: 24\r\n"), std::string::npos);
}

TEST(HttpResponse, HeadOnlyKeepsLengthWithoutBody) {
  const std::string r = make_simple_response(200, true, kDate, "text/plain", "ok\n", true);
  EXPECT_NE(r.find("Content-Length: 3\r\n"), std::string::npos);
  EXPECT_TRUE(r.ends_with("\r\n\r\n"));
}

TEST(HttpResponse, DateIsImfFixdate) {
  EXPECT_EQ(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(http_date(1795600000), "Wed, 25 Nov 2026 09:46:40 GMT");
}

}  // namespace
}  // namespace ringhttpd::proto
