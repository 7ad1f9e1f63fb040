// What the proxy tells the upstream of this hop (worker/handlers/
// proxy_headers.h, append_forwarding): X-Forwarded-* and Forwarded (RFC
// 7239), the client's own lines kept in order before ours.
#include "worker/handlers/proxy_headers.h"

#include <gtest/gtest.h>

#include <string>

namespace ringhttpd::worker {
namespace {

std::string forwarding(std::vector<proto::Header> headers, std::string_view client) {
  proto::HttpRequest req;  // only its headers are read
  req.headers = std::move(headers);
  std::string o;
  append_forwarding(o, req, client);
  return o;
}

TEST(ProxyHeaders, EachConventionSaysTheClientAndTheHost) {
  EXPECT_EQ(forwarding({{"Host", "example.test"}}, "192.0.2.7"),
            "X-Forwarded-For: 192.0.2.7\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: example.test\r\n"
            "Forwarded: for=192.0.2.7;host=example.test;proto=http\r\n");
}

// RFC 7239 6: an IPv6 node in brackets, quoted (':' is not a token
// character); so is a host with a port. No Host: no host parameter and no
// X-Forwarded-Host. No address: "unknown" in both.
TEST(ProxyHeaders, ValuesThatAreNotTokensAreQuoted) {
  EXPECT_EQ(forwarding({{"Host", "[::1]:8080"}}, "::1"),
            "X-Forwarded-For: ::1\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: [::1]:8080\r\n"
            "Forwarded: for=\"[::1]\";host=\"[::1]:8080\";proto=http\r\n");
  EXPECT_EQ(forwarding({}, ""),
            "X-Forwarded-For: unknown\r\n"
            "X-Forwarded-Proto: http\r\n"
            "Forwarded: for=unknown;proto=http\r\n");
  std::string v;
  append_forwarded_value(v, "a\"b\\c");
  EXPECT_EQ(v, "\"a\\\"b\\\\c\"");
}

// Repeated lines are one list (RFC 9110 5.3): the client's, in order,
// then ours; empty lines add nothing. The client's X-Forwarded-Proto and
// -Host are not kept (ours say what this hop saw).
TEST(ProxyHeaders, TheClientsListsComeFirstInOrder) {
  const std::string o = forwarding({{"Forwarded", "for=10.0.0.1"},
                                    {"X-Forwarded-For", "10.0.0.1"},
                                    {"X-Forwarded-Proto", "https"},
                                    {"Forwarded", ""},
                                    {"X-Forwarded-Host", "spoofed"},
                                    {"Forwarded", "for=10.0.0.2;proto=https"},
                                    {"X-Forwarded-For", "10.0.0.2"}},
                                   "127.0.0.1");
  EXPECT_EQ(o,
            "X-Forwarded-For: 10.0.0.1, 10.0.0.2, 127.0.0.1\r\n"
            "X-Forwarded-Proto: http\r\n"
            "Forwarded: for=10.0.0.1, for=10.0.0.2;proto=https, for=127.0.0.1;proto=http\r\n");
}

// RFC 7239's syntax: pairs of token=token or token="quoted", ';' between
// pairs, ',' between elements (empty ones allowed).
TEST(ProxyHeaders, ForwardedSyntax) {
  for (const char* good : {"for=1.1.1.1", "for=\"[::1]:80\";proto=https;by=x", "for=a, for=b",
                           "for=a,,for=b", "for=a ;proto=http", "host=\"a\\\"b\"", ";for=a;", ""}) {
    EXPECT_TRUE(forwarded_syntax_ok(good)) << good;
  }
  for (const char* bad : {"for=\"x", "for=6.6.6.6;x=\"", "for", "for=", "=a", "for=a b",
                          "for=a;;x=\"\\", "for=<script>", "for=\"a\"b"}) {
    EXPECT_FALSE(forwarded_syntax_ok(bad)) << bad;
  }
}

// A client's Forwarded line that does not parse is not passed on: with an
// open quote it would swallow this hop's element, or pose as the last one.
TEST(ProxyHeaders, AMalformedForwardedLineIsDropped) {
  EXPECT_EQ(forwarding({{"Forwarded", "for=\"x"}, {"Forwarded", "for=10.0.0.1"}}, "127.0.0.1"),
            "X-Forwarded-For: 127.0.0.1\r\n"
            "X-Forwarded-Proto: http\r\n"
            "Forwarded: for=10.0.0.1, for=127.0.0.1;proto=http\r\n");
  EXPECT_EQ(forwarding({{"Forwarded", "for=6.6.6.6;x=\""}}, "127.0.0.1"),
            "X-Forwarded-For: 127.0.0.1\r\n"
            "X-Forwarded-Proto: http\r\n"
            "Forwarded: for=127.0.0.1;proto=http\r\n");
}

TEST(ProxyHeaders, ForwardingFieldsAreReplacedByOurs) {
  for (const char* name :
       {"X-Forwarded-For", "x-forwarded-proto", "X-FORWARDED-HOST", "forwarded"}) {
    EXPECT_TRUE(forwarding_field(name)) << name;
  }
  EXPECT_FALSE(forwarding_field("X-Forwarded-Port"));
  EXPECT_FALSE(forwarding_field("Host"));
}

}  // namespace
}  // namespace ringhttpd::worker
