// The normal form of a request path (proto/normalize_path.h): a table of
// inputs and their normal form or status, the quick scan agreeing with the
// full pass, and the common case copying nothing.
#include "proto/normalize_path.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace ringhttpd::proto {
namespace {

struct Case {
  std::string_view in;
  std::string_view out;  // the normal form when status is 0
  int status;
};

constexpr Case kCases[] = {
    // Already normal: returned as they are.
    {"/", "/", 0},
    {"/private", "/private", 0},
    {"/a/b/c", "/a/b/c", 0},
    {"/a/b/", "/a/b/", 0},
    {"/.hidden", "/.hidden", 0},
    {"/a/..b", "/a/..b", 0},
    {"/a/b..", "/a/b..", 0},
    {"/a/...", "/a/...", 0},
    {"/a.b/c.", "/a.b/c.", 0},
    {"", "", 0},
    {"host:443", "host:443", 0},  // not a path (CONNECT): left alone
    // Dot-segments (RFC 3986 §5.2.4).
    {"/./private", "/private", 0},
    {"/x/../private", "/private", 0},
    {"/a/b/../../private", "/private", 0},
    {"/a/./b", "/a/b", 0},
    {"/a/.", "/a/", 0},
    {"/a/..", "/", 0},
    {"/a/b/..", "/a/", 0},
    {"/a/b/../", "/a/", 0},
    {"/.", "/", 0},
    {"/a/./../b", "/b", 0},
    {"/a/.../b", "/a/.../b", 0},  // "..." is a name
    // Runs of slashes.
    {"//private", "/private", 0},
    {"///a//b///", "/a/b/", 0},
    {"//", "/", 0},
    {"/a//../b", "/b", 0},  // the empty segment is merged first
    // Percent-decoding, once.
    {"/%70rivate", "/private", 0},
    {"/%70%72%69%76%61%74%65", "/private", 0},
    {"/%7e%7E", "/~~", 0},
    {"/a%20b", "/a b", 0},
    {"/%2541", "/%41", 0},  // decoded once: "%25" is '%', "41" stays
    {"/a%2Fb", "/a/b", 0},  // an encoded slash separates, as in nginx
    {"/a%2f%2fb", "/a/b", 0},
    {"/%2e/private", "/private", 0},
    {"/x/%2E%2E/private", "/private", 0},
    {"/x/.%2e/private", "/private", 0},
    {"/x%2F..%2Fprivate", "/private", 0},
    {"/%FF", "/\xFF", 0},
    // Above the root: 400.
    {"/..", "", 400},
    {"/../x", "", 400},
    {"/a/../../x", "", 400},
    {"/%2e%2e/x", "", 400},
    {"//../x", "", 400},
    {"/./../x", "", 400},
    // Invalid escapes: 400.
    {"/%zz", "", 400},
    {"/%4", "", 400},
    {"/%", "", 400},
    {"/a%g0", "", 400},
    {"/a%0g/b", "", 400},
    {"/%%41", "", 400},
    // A decoded NUL: 400.
    {"/%00", "", 400},
    {"/a%00.css", "", 400},
};

TEST(NormalizePath, Table) {
  for (const Case& c : kCases) {
    std::string scratch;
    const NormalizedPath n = normalize_path(c.in, scratch);
    EXPECT_EQ(n.status, c.status) << c.in;
    if (c.status == 0) {
      EXPECT_EQ(n.path, c.out) << c.in;
    }
  }
}

TEST(NormalizePath, TheCommonCaseIsTheInputItself) {
  std::string scratch;
  const std::string_view in = "/api/v1/items/42";
  const NormalizedPath n = normalize_path(in, scratch);
  EXPECT_EQ(n.status, 0);
  EXPECT_EQ(n.path.data(), in.data());                      // no copy
  EXPECT_EQ(scratch.capacity(), std::string().capacity());  // nothing allocated
}

TEST(NormalizePath, ScratchIsReusedWithItsCapacity) {
  std::string scratch;
  normalize_path("/a/very/long/path/with/../dot/segments/in/it", scratch);
  const size_t capacity = scratch.capacity();
  const char* buffer = scratch.data();
  const NormalizedPath n = normalize_path("//short", scratch);
  EXPECT_EQ(n.path, "/short");
  EXPECT_EQ(scratch.capacity(), capacity);
  EXPECT_EQ(scratch.data(), buffer);
}

TEST(NormalizePath, QuickScanAgreesWithTheTable) {
  for (const Case& c : kCases) {
    if (c.status != 0) {
      EXPECT_FALSE(path_is_normal(c.in)) << c.in;
    } else if (c.in.starts_with('/')) {
      EXPECT_EQ(path_is_normal(c.in), c.in == c.out) << c.in;
    }
  }
}

// Whatever the quick scan calls normal, the full pass leaves as it is: the
// full pass is forced by an escape of a plain letter in front ("/%61" is
// "/a"). Every path of up to 5 bytes over an alphabet of the bytes that
// matter.
TEST(NormalizePath, QuickScanNeverSkipsWork) {
  constexpr std::string_view kAlphabet = "/.a";
  std::string path;
  std::string scratch;
  for (size_t len = 0; len <= 5; ++len) {
    size_t total = 1;
    for (size_t i = 0; i < len; ++i) total *= kAlphabet.size();
    for (size_t k = 0; k < total; ++k) {
      path.assign("/a");
      for (size_t i = 0, v = k; i < len; ++i, v /= kAlphabet.size()) {
        path += kAlphabet[v % kAlphabet.size()];
      }
      if (!path_is_normal(path)) continue;
      const std::string forced = "/%61" + path.substr(2);
      const NormalizedPath n = normalize_path(forced, scratch);
      EXPECT_EQ(n.status, 0) << path;
      EXPECT_EQ(n.path, path) << path;
    }
  }
}

// The normal form is a fixed point: normalizing it again changes nothing
// (for results without '%', which a second pass would decode again).
TEST(NormalizePath, TheNormalFormIsNormal) {
  for (const Case& c : kCases) {
    if (c.status != 0 || c.out.find('%') != std::string_view::npos) continue;
    if (!c.out.starts_with('/')) continue;
    EXPECT_TRUE(path_is_normal(c.out)) << c.in;
  }
}

}  // namespace
}  // namespace ringhttpd::proto
