// Response heads: status line, framing headers owned by the writer, bodiless
// statuses.
#include "proto/http_response.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

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

// Every code of the IANA HTTP Status Code Registry that has a phrase gets
// it (a status a service or an upstream sends, or a `respond` status, is
// written with it too); codes without one are "Unknown".
TEST(HttpResponse, EveryRegisteredStatusHasItsReasonPhrase) {
  const std::vector<std::pair<int, std::string_view>> registry = {
      {100, "Continue"},
      {101, "Switching Protocols"},
      {102, "Processing"},
      {103, "Early Hints"},
      {200, "OK"},
      {201, "Created"},
      {202, "Accepted"},
      {203, "Non-Authoritative Information"},
      {204, "No Content"},
      {205, "Reset Content"},
      {206, "Partial Content"},
      {207, "Multi-Status"},
      {208, "Already Reported"},
      {226, "IM Used"},
      {300, "Multiple Choices"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {303, "See Other"},
      {304, "Not Modified"},
      {305, "Use Proxy"},
      {307, "Temporary Redirect"},
      {308, "Permanent Redirect"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {402, "Payment Required"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {406, "Not Acceptable"},
      {407, "Proxy Authentication Required"},
      {408, "Request Timeout"},
      {409, "Conflict"},
      {410, "Gone"},
      {411, "Length Required"},
      {412, "Precondition Failed"},
      {413, "Content Too Large"},
      {414, "URI Too Long"},
      {415, "Unsupported Media Type"},
      {416, "Range Not Satisfiable"},
      {417, "Expectation Failed"},
      {418, "I'm a teapot"},
      {421, "Misdirected Request"},
      {422, "Unprocessable Content"},
      {423, "Locked"},
      {424, "Failed Dependency"},
      {425, "Too Early"},
      {426, "Upgrade Required"},
      {428, "Precondition Required"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {451, "Unavailable For Legal Reasons"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
      {505, "HTTP Version Not Supported"},
      {506, "Variant Also Negotiates"},
      {507, "Insufficient Storage"},
      {508, "Loop Detected"},
      {510, "Not Extended"},
      {511, "Network Authentication Required"},
  };
  for (const auto& [status, phrase] : registry) EXPECT_EQ(reason_phrase(status), phrase) << status;
  for (int status : {0, 99, 104, 199, 209, 299, 306, 309, 419, 420, 427, 430, 450, 509, 512, 599,
                     600, 999, -1}) {
    EXPECT_EQ(reason_phrase(status), "Unknown") << status;
  }
}

// The server's own 416 (a range beyond the end) says so on its status line
// and in its body.
TEST(HttpResponse, AnUnsatisfiableRangeIsNamed) {
  const std::string out = make_simple_response(416, true, kDate);
  EXPECT_EQ(out.rfind("HTTP/1.1 416 Range Not Satisfiable\r\n", 0), 0u) << out;
  EXPECT_TRUE(out.ends_with("\r\n\r\n416 Range Not Satisfiable\n")) << out;
}

TEST(HttpResponse, DateIsImfFixdate) {
  EXPECT_EQ(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(http_date(1795600000), "Wed, 25 Nov 2026 09:46:40 GMT");
}

// RFC 9110 5.6.7: all three formats are read; anything else is no date.
TEST(HttpResponse, ParsesEachHttpDateFormat) {
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), 784111777);
  EXPECT_EQ(parse_http_date(http_date(1795600000)), 1795600000);
  for (std::string_view bad : {"", "yesterday", "Sun, 06 Nov 1994 08:49:37 GMT trailing",
                               "Sun, 06 Nov 1994", "1994-11-06T08:49:37Z"}) {
    EXPECT_FALSE(parse_http_date(bad)) << bad;
  }
}

}  // namespace
}  // namespace ringhttpd::proto
