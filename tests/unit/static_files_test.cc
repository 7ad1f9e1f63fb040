// Static files' decisions (worker/static_files.h): which file a request
// names (never one outside the root), media types, byte ranges, and
// openat2 beneath a root that a symlink cannot leave.
#include "worker/static_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>

namespace ringhttpd::worker {
namespace {

TEST(StaticPath, NamesAFileUnderThePrefix) {
  EXPECT_EQ(static_relative_path("/assets/", "/assets/a/b.css"), "a/b.css");
  EXPECT_EQ(static_relative_path("/assets", "/assets/a.css"), "a.css");
  EXPECT_EQ(static_relative_path("/assets", "/assets"), "");
  EXPECT_EQ(static_relative_path("/", "/"), "");
  EXPECT_EQ(static_relative_path("/", "/caf%C3%A9.txt"), "caf\xc3\xa9.txt");
  EXPECT_EQ(static_relative_path("/", "/a//b/"), "a/b/");
}

// A trailing slash names a directory: it is kept, so that "index.html/"
// cannot name the file (the open fails with ENOTDIR). The root needs none.
TEST(StaticPath, ATrailingSlashIsKept) {
  EXPECT_EQ(static_relative_path("/assets/", "/assets/index.html/"), "index.html/");
  EXPECT_EQ(static_relative_path("/assets/", "/assets/docs/"), "docs/");
  EXPECT_EQ(static_relative_path("/assets/", "/assets/docs//"), "docs/");
  EXPECT_EQ(static_relative_path("/assets", "/assets/"), "");
  EXPECT_EQ(static_relative_path("/assets/", "/assets/"), "");
  EXPECT_EQ(static_relative_path("/", "//"), "");
  EXPECT_FALSE(static_relative_path("/", "/a%2f"));  // an encoded slash is still refused
}

TEST(StaticPath, NothingCanLeaveTheRoot) {
  for (const char* path :
       {"/../etc/passwd", "/a/../../x", "/%2e%2e/x", "/%2E%2E/x", "/a/%2e/b", "/a%2fb", "/a%2Fb",
        "/a%00b", "/a\\b", "/a%5cb", "/%", "/%4", "/%zz", "/./a"}) {
    EXPECT_FALSE(static_relative_path("/", path)) << path;
  }
  EXPECT_FALSE(static_relative_path("/assets/", "/other/x"));
}

TEST(StaticMediaType, ByExtensionCaseInsensitive) {
  EXPECT_EQ(media_type("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(media_type("A.PNG"), "image/png");
  EXPECT_EQ(media_type("x.unknown"), "application/octet-stream");
  EXPECT_EQ(media_type("noext"), "application/octet-stream");
}

TEST(StaticMediaType, TheRouteTableComesFirst) {
  const MediaTypes types{{"txt", "text/plain; charset=iso-8859-1"}, {"map", "application/json"}};
  EXPECT_EQ(media_type("a.txt", types), "text/plain; charset=iso-8859-1");
  EXPECT_EQ(media_type("dir/A.TXT", types), "text/plain; charset=iso-8859-1");
  EXPECT_EQ(media_type("x.js.map", types), "application/json");      // the last extension
  EXPECT_EQ(media_type("a.css", types), "text/css; charset=utf-8");  // the built-in table
  EXPECT_EQ(media_type("txt", types), "application/octet-stream");   // no extension
  EXPECT_EQ(media_type("d.txt/noext", types), "application/octet-stream");
}

TEST(StaticRange, OneRangeOrTheWhole) {
  ByteRange r;
  EXPECT_EQ(parse_range("bytes=0-9", 100, r), RangeAnswer::partial);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.last, 9u);
  EXPECT_EQ(parse_range("bytes=90-", 100, r), RangeAnswer::partial);
  EXPECT_EQ(r.first, 90u);
  EXPECT_EQ(r.last, 99u);
  EXPECT_EQ(parse_range("bytes=-10", 100, r), RangeAnswer::partial);
  EXPECT_EQ(r.first, 90u);
  EXPECT_EQ(parse_range("bytes=-1000", 100, r), RangeAnswer::partial);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(parse_range("bytes=50-1000", 100, r), RangeAnswer::partial);
  EXPECT_EQ(r.last, 99u);
  EXPECT_EQ(parse_range("bytes=100-", 100, r), RangeAnswer::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=-0", 100, r), RangeAnswer::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=5-1", 100, r), RangeAnswer::whole);
  EXPECT_EQ(parse_range("bytes=0-1,5-6", 100, r), RangeAnswer::whole);
  EXPECT_EQ(parse_range("items=0-1", 100, r), RangeAnswer::whole);
  EXPECT_EQ(parse_range("bytes=x-1", 100, r), RangeAnswer::whole);
  EXPECT_EQ(parse_range("", 100, r), RangeAnswer::whole);
}

// The unit in any case (RFC 9110 14.1), empty list elements and spaces
// around them skipped (5.6.1), and positions past 2^64 still positions.
TEST(StaticRange, TheSyntaxARecipientMustAccept) {
  ByteRange r;
  EXPECT_EQ(parse_range("Bytes=1-2", 100, r), RangeAnswer::partial);
  EXPECT_EQ(r.first, 1u);
  EXPECT_EQ(parse_range("BYTES=, 3-4 ,", 100, r), RangeAnswer::partial);
  EXPECT_EQ(r.first, 3u);
  EXPECT_EQ(r.last, 4u);
  EXPECT_EQ(parse_range("bytes=,", 100, r), RangeAnswer::whole);
  EXPECT_EQ(parse_range("bytes=1-2, 4-5", 100, r), RangeAnswer::whole);  // two: whole
  EXPECT_EQ(parse_range("bytes=99999999999999999999999-", 100, r), RangeAnswer::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=10-99999999999999999999999", 100, r), RangeAnswer::partial);
  EXPECT_EQ(r.last, 99u);
  EXPECT_EQ(parse_range("bytes=-99999999999999999999999", 100, r), RangeAnswer::partial);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(parse_range("bytes=+1-2", 100, r), RangeAnswer::whole);
  EXPECT_EQ(parse_range("bytes =1-2", 100, r), RangeAnswer::whole);
}

TEST(StaticOpen, ASymlinkOutOfTheRootDoesNotResolve) {
  char tmpl[] = "/tmp/ringhttpd-static-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  ::mkdir((dir + "/root").c_str(), 0755);
  std::ofstream(dir + "/secret") << "secret";
  std::ofstream(dir + "/root/ok.txt") << "ok";
  ASSERT_EQ(::symlink((dir + "/secret").c_str(), (dir + "/root/out").c_str()), 0);
  ASSERT_EQ(::symlink("ok.txt", (dir + "/root/in").c_str()), 0);
  const int root = ::open((dir + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(root, 0);
  EXPECT_TRUE(open_beneath(root, "ok.txt"));
  EXPECT_TRUE(open_beneath(root, "in"));  // a link that stays inside
  EXPECT_FALSE(open_beneath(root, "out"));
  EXPECT_FALSE(open_beneath(root, "../secret"));
  ::close(root);
  std::system(("rm -rf " + dir).c_str());
}

// A FIFO's open waits for a writer unless it is non-blocking: open_beneath
// returns at once (the caller's fstat refuses it). A regular file opened
// the same way reads as usual: O_NONBLOCK means nothing for it.
TEST(StaticOpen, AFifoOpensWithoutWaitingAndAFileReadsAsUsual) {
  char tmpl[] = "/tmp/ringhttpd-static-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  ASSERT_EQ(::mkfifo((dir + "/fifo").c_str(), 0644), 0);
  std::ofstream(dir + "/ok.txt") << "ok";
  const int root = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(root, 0);
  auto opened = std::async(std::launch::async, [root] { return open_beneath(root, "fifo"); });
  if (opened.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    ::close(::open((dir + "/fifo").c_str(), O_WRONLY | O_NONBLOCK));  // releases it
    ADD_FAILURE() << "open_beneath waited on a FIFO";
  }
  proto::UniqueFd fifo = opened.get();
  ASSERT_TRUE(fifo);
  struct stat st {};
  ASSERT_EQ(::fstat(fifo.get(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  proto::UniqueFd file = open_beneath(root, "ok.txt");
  ASSERT_TRUE(file);
  EXPECT_NE(::fcntl(file.get(), F_GETFL) & O_NONBLOCK, 0);
  char buf[8];
  EXPECT_EQ(::pread(file.get(), buf, sizeof buf, 0), 2);
  ::close(root);
  std::system(("rm -rf " + dir).c_str());
}

// The links' base comes from the route and the names, not from how the
// request spelt its path: "//evil.example/" on a route "/" cannot make
// them point at another host, nor padding slashes make them long.
TEST(StaticListing, TheLinksBaseIsTheRouteAndTheNames) {
  EXPECT_EQ(listing_base("/", ""), "/");
  EXPECT_EQ(listing_base("/", "evil.example/"), "/evil.example/");
  EXPECT_EQ(listing_base("/assets/", "docs"), "/assets/docs/");
  EXPECT_EQ(listing_base("/assets", "a//b/"), "/assets/a/b/");
  EXPECT_EQ(listing_base("/files/", "\xc3\xa9t\xc3\xa9/a b"), "/files/%C3%A9t%C3%A9/a%20b/");
}

// A listing page: directories first, then files, by name; names escaped
// for HTML (control bytes shown as '?', so a newline cannot fake a line)
// and percent-encoded in their links.
TEST(StaticListing, NamesAreEscapedEncodedAndSorted) {
  bool truncated = false;
  const std::string page = directory_listing("/files/docs/",
                                             {{"b.txt", false, 12, 0},
                                              {"a <&> \"q\" 'x'.txt", false, 3, 86400},
                                              {"z dir", true, 0, 0},
                                              {"\xc3\xa9t\xc3\xa9", true, 0, 0},
                                              {"x  01-Jan-2026 00:00  5\nfake.pdf", false, 1, 0}},
                                             /*parent=*/true, truncated);
  EXPECT_FALSE(truncated);
  EXPECT_NE(page.find("<title>Index of /files/docs/</title>"), std::string::npos) << page;
  EXPECT_NE(page.find("<a href=\"/files/\">../</a>\n"), std::string::npos) << page;
  EXPECT_NE(page.find("<a href=\"/files/docs/z%20dir/\">z dir/</a>  01-Jan-1970 00:00  -\n"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("<a href=\"/files/docs/%C3%A9t%C3%A9/\">\xc3\xa9t\xc3\xa9/</a>"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("<a href=\"/files/docs/a%20%3C%26%3E%20%22q%22%20%27x%27.txt\">"
                      "a &lt;&amp;&gt; &quot;q&quot; &#39;x&#39;.txt</a>  02-Jan-1970 00:00  3\n"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("%0Afake.pdf\">x  01-Jan-2026 00:00  5?fake.pdf</a>"), std::string::npos)
      << page;
  // Directories first ("z dir" and "été"), then files in byte order.
  const size_t z = page.find("z dir/<"), e = page.find("\xc3\xa9t\xc3\xa9/<"),
               a = page.find("&#39;x&#39;.txt<"), b = page.find(">b.txt<");
  EXPECT_LT(z, e);
  EXPECT_LT(e, a);
  EXPECT_LT(a, b);
  EXPECT_EQ(page.find("Not every entry"), std::string::npos);
  // At the route's root: no way up. Cut short before: said so.
  truncated = true;
  const std::string root = directory_listing("/files/", {}, false, truncated);
  EXPECT_EQ(root.find("../"), std::string::npos) << root;
  EXPECT_NE(root.find("Not every entry is listed"), std::string::npos) << root;
}

// The page is bounded in bytes whatever the names: 10000 names of 250
// '&' (each 5 bytes escaped, 3 encoded) would make 20 MB.
TEST(StaticListing, ThePageIsBoundedInBytes) {
  std::vector<ListedEntry> many;
  for (int i = 0; i < 10000; ++i) many.push_back({std::to_string(i) + std::string(250, '&')});
  bool truncated = false;
  const std::string page = directory_listing("/", std::move(many), false, truncated);
  EXPECT_TRUE(truncated);
  EXPECT_LT(page.size(), kMaxListingBytes + 8192);
  EXPECT_NE(page.find("Not every entry is listed"), std::string::npos);
}

// What a listing shows: files and directories (a link to either, if it
// stays beneath the root); not hidden names, FIFOs, or links that leave the
// root or lead nowhere.
TEST(StaticListing, OnlyWhatCouldBeServedIsListed) {
  char tmpl[] = "/tmp/ringhttpd-static-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string d = dir + "/root/d";
  ::mkdir((dir + "/root").c_str(), 0755);
  ::mkdir(d.c_str(), 0755);
  ::mkdir((d + "/sub").c_str(), 0755);
  std::ofstream(d + "/file.txt") << "12345";
  std::ofstream(d + "/.hidden") << "h";
  std::ofstream(dir + "/secret") << "s";
  ASSERT_EQ(::mkfifo((d + "/fifo").c_str(), 0644), 0);
  ASSERT_EQ(::symlink("file.txt", (d + "/in").c_str()), 0);
  ASSERT_EQ(::symlink("sub", (d + "/insub").c_str()), 0);
  ASSERT_EQ(::symlink((dir + "/secret").c_str(), (d + "/out").c_str()), 0);
  ASSERT_EQ(::symlink("nowhere", (d + "/dangling").c_str()), 0);
  const int root = ::open((dir + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(root, 0);
  bool truncated = true;
  std::vector<ListedEntry> got = read_listing(open_beneath(root, "d"), root, "d", truncated);
  EXPECT_FALSE(truncated);
  std::map<std::string, std::pair<bool, uint64_t>> seen;
  for (const ListedEntry& e : got) seen[e.name] = {e.directory, e.size};
  const std::map<std::string, std::pair<bool, uint64_t>> want = {
      {"file.txt", {false, 5}}, {"in", {false, 5}}, {"sub", {true, 0}}, {"insub", {true, 0}}};
  EXPECT_EQ(seen, want);
  ::close(root);
  std::system(("rm -rf " + dir).c_str());
}

// Entries examined are bounded, listed or not: hidden names count too.
TEST(StaticListing, EntriesReadAreBounded) {
  char tmpl[] = "/tmp/ringhttpd-static-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  for (size_t i = 0; i < kMaxExaminedEntries + 10; ++i) {
    ::close(::open((dir + "/." + std::to_string(i)).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  }
  std::ofstream(dir + "/seen") << "x";
  const int root = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(root, 0);
  bool truncated = false;
  const std::vector<ListedEntry> got = read_listing(open_beneath(root, ""), root, "", truncated);
  EXPECT_TRUE(truncated);
  EXPECT_LE(got.size(), 1u);
  ::close(root);
  std::system(("rm -rf " + dir).c_str());
}

// Conditional requests (RFC 9110 13.1, 13.2.2) against one representation.
constexpr std::string_view kTag = "\"1-2-3.4\"";
constexpr std::string_view kModified = "Sun, 06 Nov 1994 08:49:37 GMT";

Precondition evaluate(std::vector<proto::HeaderView> headers) {
  proto::RequestHead req;
  req.headers = std::move(headers);
  return evaluate_preconditions(conditions_of(req), kTag, kModified);
}

TEST(StaticConditions, IfMatchNeedsTheCurrentTagStrongly) {
  EXPECT_EQ(evaluate({{"If-Match", "\"nope\""}}), Precondition::failed);
  EXPECT_EQ(evaluate({{"If-Match", "W/\"1-2-3.4\""}}), Precondition::failed);  // weak: never
  EXPECT_EQ(evaluate({{"If-Match", "\"1-2-3.4\""}}), Precondition::proceed);
  EXPECT_EQ(evaluate({{"If-Match", "*"}}), Precondition::proceed);
  EXPECT_EQ(evaluate({{"if-match", "\"a\", \"1-2-3.4\""}}), Precondition::proceed);
  // Two lines are one list.
  EXPECT_EQ(evaluate({{"If-Match", "\"a\""}, {"If-Match", "\"1-2-3.4\""}}), Precondition::proceed);
}

TEST(StaticConditions, IfUnmodifiedSinceFailsForALaterChange) {
  EXPECT_EQ(evaluate({{"If-Unmodified-Since", "Mon, 01 Jan 1990 00:00:00 GMT"}}),
            Precondition::failed);
  EXPECT_EQ(evaluate({{"If-Unmodified-Since", "Sunday, 06-Nov-94 08:49:36 GMT"}}),
            Precondition::failed);
  EXPECT_EQ(evaluate({{"If-Unmodified-Since", kModified}}), Precondition::proceed);
  EXPECT_EQ(evaluate({{"If-Unmodified-Since", "Sun Nov  6 08:49:38 1994"}}), Precondition::proceed);
  EXPECT_EQ(evaluate({{"If-Unmodified-Since", "not a date"}}), Precondition::proceed);
  // If-Match present: If-Unmodified-Since is not looked at (13.2.2 step 2).
  EXPECT_EQ(evaluate({{"If-Match", "*"}, {"If-Unmodified-Since", "Mon, 01 Jan 1990 00:00:00 GMT"}}),
            Precondition::proceed);
}

TEST(StaticConditions, IfNoneMatchOnAnyLineIsNotModified) {
  EXPECT_EQ(evaluate({{"If-None-Match", "\"x\""}}), Precondition::proceed);
  EXPECT_EQ(evaluate({{"If-None-Match", "\"x\""}, {"If-None-Match", "\"1-2-3.4\""}}),
            Precondition::not_modified);
  EXPECT_EQ(evaluate({{"If-None-Match", "\"x\", W/\"1-2-3.4\""}}),
            Precondition::not_modified);  // weak comparison
  EXPECT_EQ(evaluate({{"If-None-Match", "*"}}), Precondition::not_modified);
  // If-None-Match present: If-Modified-Since is not looked at.
  EXPECT_EQ(evaluate({{"If-None-Match", "\"x\""}, {"If-Modified-Since", kModified}}),
            Precondition::proceed);
  EXPECT_EQ(evaluate({{"If-Modified-Since", kModified}}), Precondition::not_modified);
  EXPECT_EQ(evaluate({{"If-Modified-Since", "Mon, 01 Jan 1990 00:00:00 GMT"}}),
            Precondition::proceed);
}

// If-Modified-Since names the very second of Last-Modified (nginx's
// "exact"), in any of the three HTTP-date forms a recipient must read.
TEST(StaticConditions, IfModifiedSinceInAnyDateFormIsTheSameSecond) {
  EXPECT_EQ(evaluate({{"If-Modified-Since", "Sunday, 06-Nov-94 08:49:37 GMT"}}),
            Precondition::not_modified);
  EXPECT_EQ(evaluate({{"If-Modified-Since", "Sun Nov  6 08:49:37 1994"}}),
            Precondition::not_modified);
  EXPECT_EQ(evaluate({{"If-Modified-Since", "Sun Nov  6 08:49:38 1994"}}), Precondition::proceed);
  EXPECT_EQ(evaluate({{"If-Modified-Since", "not a date"}}), Precondition::proceed);
}

// 13.2.2: a failed If-Match is 412 even when If-None-Match would be a 304.
TEST(StaticConditions, APreconditionFailureComesFirst) {
  EXPECT_EQ(evaluate({{"If-None-Match", "*"}, {"If-Match", "\"nope\""}}), Precondition::failed);
  EXPECT_EQ(evaluate({{"If-None-Match", "*"}, {"If-Match", "*"}}), Precondition::not_modified);
}

TEST(StaticConditions, IfRangeTakesTheStrongTagOrTheExactDate) {
  EXPECT_TRUE(if_range_holds("", kTag, kModified));
  EXPECT_TRUE(if_range_holds(kTag, kTag, kModified));
  EXPECT_TRUE(if_range_holds(kModified, kTag, kModified));
  EXPECT_FALSE(if_range_holds("W/\"1-2-3.4\"", kTag, kModified));
  EXPECT_FALSE(if_range_holds("\"other\"", kTag, kModified));
  EXPECT_FALSE(if_range_holds("Sun, 06 Nov 1994 08:49:38 GMT", kTag, kModified));
  EXPECT_FALSE(if_range_holds("Sunday, 06-Nov-94 08:49:37 GMT", kTag, kModified));  // not exact
}

}  // namespace
}  // namespace ringhttpd::worker
