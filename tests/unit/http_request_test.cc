// HttpRequest accessors: header lookup, path/query/host views of the target.
#include "proto/http_request.h"

#include <gtest/gtest.h>

namespace ringhttpd::proto {
namespace {

HttpRequest Make(std::string target, std::vector<Header> headers = {}) {
  HttpRequest r;
  r.method = "GET";
  r.target = std::move(target);
  r.headers = std::move(headers);
  return r;
}

TEST(HttpRequest, Iequals) {
  EXPECT_TRUE(iequals("Content-Length", "content-LENGTH"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("Host", "Hosts"));
  EXPECT_FALSE(iequals("a", "b"));
  EXPECT_FALSE(iequals("[", "{"));                // not letters: no case folding
  EXPECT_FALSE(iequals("\xc3\xa9", "\xc3\x89"));  // ASCII only
}

TEST(HttpRequest, HeaderIsCaseInsensitiveAndFirstWins) {
  HttpRequest r = Make("/", {{"X-A", "1"}, {"x-a", "2"}, {"Empty", ""}});
  EXPECT_EQ(r.header("x-A"), "1");
  EXPECT_EQ(r.header("EMPTY"), "");
  EXPECT_EQ(r.header("missing"), "");
}

TEST(HttpRequest, OriginFormPathAndQuery) {
  EXPECT_EQ(Make("/a/b?x=1&y=2").path(), "/a/b");
  EXPECT_EQ(Make("/a/b?x=1&y=2").query(), "x=1&y=2");
  EXPECT_EQ(Make("/a/b").query(), "");
  EXPECT_EQ(Make("/a/b?").query(), "");
  EXPECT_EQ(Make("/a/b?").path(), "/a/b");
  EXPECT_EQ(Make("/?q").path(), "/");
  EXPECT_EQ(Make("/a?b?c").query(), "b?c");
  EXPECT_EQ(Make("/a#frag").path(), "/a");
  EXPECT_EQ(Make("/a?q=1#frag").query(), "q=1");
  EXPECT_EQ(Make("/a#f?notquery").query(), "");
  EXPECT_EQ(Make("//double/slash").path(), "//double/slash");
  EXPECT_EQ(Make("*").path(), "*");
}

TEST(HttpRequest, AbsoluteFormPathQueryHost) {
  HttpRequest r = Make("http://h:8080/x?y", {{"Host", "other.example"}});
  EXPECT_EQ(r.path(), "/x");
  EXPECT_EQ(r.query(), "y");
  EXPECT_EQ(r.host(), "h");  // the target's authority wins over Host
  EXPECT_EQ(Make("https://Example.COM").path(), "/");
  EXPECT_EQ(Make("https://Example.COM").host(), "example.com");
  EXPECT_EQ(Make("http://h?q=1").path(), "/");
  EXPECT_EQ(Make("http://h?q=1").query(), "q=1");
  EXPECT_EQ(Make("http://user:pw@H.example:81/p").host(), "h.example");
  EXPECT_EQ(Make("http://[::1]:8080/p").host(), "[::1]");
  EXPECT_EQ(Make("http://[::1]:8080/p").path(), "/p");
}

TEST(HttpRequest, HostHeader) {
  EXPECT_EQ(Make("/", {{"Host", "Example.COM:8080"}}).host(), "example.com");
  EXPECT_EQ(Make("/", {{"host", "example.com"}}).host(), "example.com");
  EXPECT_EQ(Make("/", {{"Host", "[::1]:80"}}).host(), "[::1]");
  EXPECT_EQ(Make("/", {{"Host", "[2001:DB8::1]"}}).host(), "[2001:db8::1]");
  EXPECT_EQ(Make("/", {{"Host", "10.0.0.1:443"}}).host(), "10.0.0.1");
  EXPECT_EQ(Make("/", {{"Host", ""}}).host(), "");
  EXPECT_EQ(Make("/").host(), "");
  EXPECT_EQ(Make("/", {{"Host", "[::1"}}).host(), "[::1");  // unterminated: left alone
}

}  // namespace
}  // namespace ringhttpd::proto
