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

// valid_host: the Host grammar (RFC 9110 §7.2, RFC 3986 §3.2.2) and the
// port decision (empty, or 1-5 digits up to 65535).
// A Host is at most kMaxHostBytes (a DNS name's 253 with room, ":" and 5
// port digits): that bounds what an absolute-form authority adds to the
// encoded head as its Host (proto/ring_codec.h).
TEST(HttpRequest, AHostLongerThanTheLimitIsInvalid) {
  const std::string name(kMaxHostBytes - 6, 'a');
  EXPECT_TRUE(valid_host(name + ":65535"));
  EXPECT_FALSE(valid_host(name + "a:65535"));
  EXPECT_TRUE(valid_host(std::string(kMaxHostBytes, 'a')));
  EXPECT_FALSE(valid_host(std::string(kMaxHostBytes + 1, 'a')));
}

TEST(HttpRequest, ValidHostTable) {
  struct Case {
    const char* value;
    bool valid;
  };
  const Case cases[] = {
      // reg-name, IPv4, ports
      {"", true},
      {"b.example", true},
      {"B.Example", true},
      {"b.example:80", true},
      {"b.example:", true},  // port = *DIGIT: empty
      {"b.example:0", true},
      {"b.example:65535", true},
      {"b.example:00080", true},
      {"10.0.0.1:443", true},
      {"999.1.1.1", true},  // not an IPv4address, but a reg-name
      {"a-b_c~d", true},
      {"!$&'()*+,;=", true},  // sub-delims
      {"caf%C3%a9.example", true},
      {"localhost", true},
      // IP-literals
      {"[::1]", true},
      {"[::1]:8080", true},
      {"[::]", true},
      {"[2001:db8::1]", true},
      {"[2001:DB8:0:0:8:800:200C:417A]", true},
      {"[1:2:3:4:5:6:7::]", true},
      {"[::2:3:4:5:6:7:8]", true},
      {"[::ffff:192.0.2.1]", true},
      {"[1:2:3:4:5:6:1.2.3.4]", true},
      {"[v1.fe80::a+en1]", true},
      {"[V7.x:y]:1", true},
      // the reported cases
      {"b.example:x", false},
      {"b.example:1:2", false},
      {"x:b.example", false},
      {"[b.example]", false},
      {"b.example]", false},
      {"[::1", false},
      // ports
      {"b.example:123456", false},
      {"b.example:65536", false},
      {"b.example:99999", false},
      {"b.example:-1", false},
      {"b.example: 80", false},
      {":80", false},  // an empty host before a port
      {":", false},
      // reg-name bytes
      {"a b", false},
      {"a/b", false},
      {"a@b", false},
      {"a%zz", false},
      {"a%4", false},
      {"a%", false},
      {"a\tb", false},
      {"caf\xc3\xa9", false},
      {"[::1]x", false},
      {"[::1]:x", false},
      {"[::1]]", false},
      // IPv6 and IPvFuture shapes
      {"[]", false},
      {"[:::]", false},
      {"[1::2::3]", false},
      {"[1:2:3:4:5:6:7:8:9]", false},
      {"[1:2:3:4:5:6:7]", false},
      {"[1:2:3:4:5:6:7:8::]", false},
      {"[12345::]", false},
      {"[::g]", false},
      {"[1:]", false},
      {"[::1.2.3]", false},
      {"[::1.2.3.256]", false},
      {"[::1.2.3.04]", false},
      {"[1.2.3.4::]", false},
      {"[v.x]", false},
      {"[v1.]", false},
      {"[v1x]", false},
      {"[vg.x]", false},
      {"[v1.x/y]", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(valid_host(c.value), c.valid) << testing::PrintToString(std::string(c.value));
  }
  EXPECT_FALSE(valid_host(std::string_view("a\0b", 3)));
}

}  // namespace
}  // namespace ringhttpd::proto
