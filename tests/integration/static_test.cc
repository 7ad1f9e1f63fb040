// Static files from the real binary (route "static"): contents and media
// types (and a route's own types), HEAD, validators, 304 and 412, single ranges
// and 416, index files and 403, a 2 MiB file through sendfile with a
// request pipelined behind it, paths that try to leave the root (404, or
// 400 when the path has no normal form), its own checks kept on the path
// as sent although routing matches the normalized path, a FIFO under the
// root (404, without stopping the process), a trailing slash after a
// file's name (404), and the open-file cache: a file replaced, deleted or
// turned into a symlink out of the root is seen after
// static.cache_valid_ms; more files than static.cache_entries are all
// served.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>
#include <vector>

#include "tests/integration/server_harness.h"

namespace ringhttpd::testing {
namespace {

using nlohmann::json;

struct Site {
  Site() {
    char t[] = "/tmp/ringhttpd-site-XXXXXX";
    dir = ::mkdtemp(t);
    root = dir + "/www";
    ::mkdir(root.c_str(), 0755);
    ::mkdir((root + "/empty").c_str(), 0755);
    std::ofstream(root + "/index.html") << "<h1>home</h1>\n";
    std::ofstream(root + "/a.css") << "body { color: red }\n";
    std::ofstream(dir + "/secret") << "not for you\n";
    ::symlink((dir + "/secret").c_str(), (root + "/out").c_str());
    big.resize(2 << 20);
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + (i * 7) % 26);
    std::ofstream(root + "/big.bin", std::ios::binary) << big;
  }
  ~Site() { std::system(("rm -rf " + dir).c_str()); }
  std::string config(json extra = json::object()) const {
    json files = {{"root", root}};
    files.update(extra);
    return json{{"listeners", {{{"address", "127.0.0.1"}, {"port", 0}}}},
                {"network", {{"processes", 1}}},
                {"routes", {{{"path", "/assets/"}, {"static", files}}}}}
        .dump();
  }
  // Writes a new file and renames it over `name` (a deploy).
  void replace(const std::string& name, const std::string& text) const {
    std::ofstream(root + "/" + name + ".new", std::ios::trunc) << text;
    ::rename((root + "/" + name + ".new").c_str(), (root + "/" + name).c_str());
  }
  std::string dir, root, big;
};

// a + i + b (GCC 12 warns, wrongly, on "literal" + std::string&&).
std::string numbered(const char* a, int i, const char* b) {
  std::string out = a;
  out += std::to_string(i);
  out += b;
  return out;
}

std::string get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n";
}

TEST(Static, AFileWithItsTypeAndValidators) {
  Site site;
  Server server(site.config());
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send(get("/assets/a.css")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "body { color: red }\n");
  EXPECT_EQ(r->headers["content-type"], "text/css; charset=utf-8");
  EXPECT_EQ(r->headers["accept-ranges"], "bytes");
  const std::string etag = r->headers["etag"], modified = r->headers["last-modified"];
  EXPECT_FALSE(etag.empty());
  EXPECT_FALSE(modified.empty());

  ASSERT_TRUE(c.send("HEAD /assets/a.css HTTP/1.1\r\nHost: t\r\n\r\n"));
  r = c.read_response(std::chrono::seconds(5), true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->headers["content-length"], "20");
  EXPECT_EQ(r->body, "");

  for (const std::string& cond :
       {"If-None-Match: " + etag + "\r\n", "If-Modified-Since: " + modified + "\r\n"}) {
    ASSERT_TRUE(c.send(get("/assets/a.css", cond)));
    r = c.read_response();
    ASSERT_TRUE(r) << cond;
    EXPECT_EQ(r->status, 304) << cond;
    EXPECT_EQ(r->body, "");
    EXPECT_EQ(r->headers["etag"], etag);
  }
  ASSERT_TRUE(c.send(get("/assets/a.css", "If-None-Match: \"other\"\r\n")));
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// RFC 9110 13.1 and 13.2.2 through the network process: If-Match and
// If-Unmodified-Since give 412 (before If-None-Match is looked at), a tag on
// any If-None-Match line gives 304, and an If-Range equal to the
// Last-Modified sent lets the Range through.
TEST(Static, EveryPreconditionIsEvaluated) {
  Site site;
  Server server(site.config());
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send(get("/assets/a.css")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  const std::string etag = r->headers["etag"], modified = r->headers["last-modified"];
  const std::pair<std::string, int> cases[] = {
      {"If-Match: \"nope\"\r\n", 412},
      {"If-Match: " + etag + "\r\n", 200},
      {"If-Match: \"nope\"\r\nIf-None-Match: *\r\n", 412},
      {"If-Unmodified-Since: Mon, 01 Jan 1990 00:00:00 GMT\r\n", 412},
      {"If-Unmodified-Since: " + modified + "\r\n", 200},
      {"If-None-Match: \"x\"\r\nIf-None-Match: " + etag + "\r\n", 304},
      {"If-Range: " + modified + "\r\nRange: bytes=0-3\r\n", 206},
      {"If-Range: " + etag + "\r\nRange: bytes=0-3\r\n", 206},
      {"If-Range: \"old\"\r\nRange: bytes=0-3\r\n", 200},
      {"If-Range: Mon, 01 Jan 1990 00:00:00 GMT\r\nRange: bytes=0-3\r\n", 200},
  };
  for (const auto& [cond, status] : cases) {
    ASSERT_TRUE(c.send(get("/assets/a.css", cond)));
    r = c.read_response();
    ASSERT_TRUE(r) << cond;
    EXPECT_EQ(r->status, status) << cond;
    if (status == 206) {
      EXPECT_EQ(r->body, "body") << cond;
    } else if (status == 200) {
      EXPECT_EQ(r->body, "body { color: red }\n") << cond;
    }
  }
  ASSERT_TRUE(c.send("HEAD /assets/a.css HTTP/1.1\r\nHost: t\r\nIf-Match: \"nope\"\r\n\r\n"));
  r = c.read_response(std::chrono::seconds(5), true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 412);
}

TEST(Static, OneRangeIs206AndAnUnsatisfiableOne416) {
  Site site;
  Server server(site.config());
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send(get("/assets/a.css", "Range: bytes=5-9\r\n")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 206);
  EXPECT_EQ(r->body, "{ col");
  EXPECT_EQ(r->headers["content-range"], "bytes 5-9/20");
  ASSERT_TRUE(c.send(get("/assets/a.css", "Range: bytes=100-\r\n")));
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 416);
  EXPECT_EQ(r->headers["content-range"], "bytes */20");
  EXPECT_EQ(r->body, "416 Range Not Satisfiable\n");  // its registered reason phrase
  ASSERT_TRUE(c.send(get("/assets/big.bin", "Range: bytes=-3\r\n")));
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 206);
  EXPECT_EQ(r->body, site.big.substr(site.big.size() - 3));
}

TEST(Static, IndexFilesDirectoriesAndMethods) {
  Site site;
  Server server(site.config());
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send(get("/assets/")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "<h1>home</h1>\n");
  EXPECT_EQ(r->headers["content-type"], "text/html; charset=utf-8");
  ASSERT_TRUE(c.send(get("/assets/empty/")));
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);  // no index, and no listings
  ASSERT_TRUE(c.send("POST /assets/a.css HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"));
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->headers["allow"], "GET, HEAD");
}

// "listing": true: a directory without an index file is an HTML page of
// its entries (absolute links, so with or without the trailing slash),
// HEAD as GET without the body; a directory with an index is still its
// index file.
TEST(Static, ADirectoryWithoutAnIndexIsListedWhenAsked) {
  Site site;
  ::mkdir((site.root + "/list").c_str(), 0755);
  ::mkdir((site.root + "/list/two").c_str(), 0755);
  std::ofstream(site.root + "/list/one.txt") << "1";
  Server server(site.config({{"listing", true}}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  for (const std::string path : {"/assets/list", "/assets/list/"}) {
    ASSERT_TRUE(c.send(get(path)));
    auto r = c.read_response();
    ASSERT_TRUE(r) << server.log();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->headers["content-type"], "text/html; charset=utf-8");
    EXPECT_NE(r->body.find("<a href=\"/assets/\">../</a>"), std::string::npos) << r->body;
    EXPECT_NE(r->body.find("<a href=\"/assets/list/two/\">two/</a>"), std::string::npos) << r->body;
    EXPECT_NE(r->body.find("<a href=\"/assets/list/one.txt\">one.txt</a>"), std::string::npos)
        << r->body;
    ASSERT_TRUE(c.send("HEAD " + path + " HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto h = c.read_response(std::chrono::seconds(10), true);
    ASSERT_TRUE(h) << server.log();
    EXPECT_EQ(h->status, 200);
    EXPECT_EQ(h->headers["content-length"], std::to_string(r->body.size()));
    EXPECT_EQ(h->body, "");
  }
  ASSERT_TRUE(c.send(get("/assets/")));
  auto home = c.read_response();
  ASSERT_TRUE(home);
  EXPECT_EQ(home->body, "<h1>home</h1>\n");
  ASSERT_TRUE(c.send(get("/assets/list/one.txt")));
  auto one = c.read_response();
  ASSERT_TRUE(one);
  EXPECT_EQ(one->body, "1");
  // No validators: If-None-Match: * matches (304), If-Match fails (412).
  ASSERT_TRUE(c.send(get("/assets/list/", "If-None-Match: *\r\n")));
  auto nm = c.read_response(std::chrono::seconds(10), true);
  ASSERT_TRUE(nm);
  EXPECT_EQ(nm->status, 304);
  ASSERT_TRUE(c.send(get("/assets/list/", "If-Match: \"x\"\r\n")));
  auto m = c.read_response();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 412);
  // An index that exists but cannot be served (here a directory) is 403,
  // never a listing of what it was meant to hide.
  ::mkdir((site.root + "/hidden").c_str(), 0755);
  ::mkdir((site.root + "/hidden/index.html").c_str(), 0755);
  ASSERT_TRUE(c.send(get("/assets/hidden/")));
  auto hidden = c.read_response();
  ASSERT_TRUE(hidden);
  EXPECT_EQ(hidden->status, 403);
}

// On a route "/", the route's root is listed without a way up, and the
// links are the route's and the names', however the request spelt its
// path: "//list/" and "//evil.example/" link nowhere else.
TEST(Static, AListingsLinksAreItsOwnWhateverThePathsSpelling) {
  Site site;
  ::mkdir((site.root + "/list").c_str(), 0755);
  std::ofstream(site.root + "/list/one.txt") << "1";
  ::unlink((site.root + "/index.html").c_str());
  json cfg = json::parse(site.config({{"listing", true}}));
  cfg["routes"][0]["path"] = "/";
  Server server(cfg.dump());
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send(get("/")));
  auto root = c.read_response();
  ASSERT_TRUE(root) << server.log();
  EXPECT_EQ(root->status, 200);
  EXPECT_EQ(root->body.find("../"), std::string::npos) << root->body;
  EXPECT_NE(root->body.find("<a href=\"/list/\">list/</a>"), std::string::npos) << root->body;
  ASSERT_TRUE(c.send(get("//list//")));
  auto list = c.read_response();
  ASSERT_TRUE(list) << server.log();
  EXPECT_EQ(list->status, 200);
  EXPECT_NE(list->body.find("<a href=\"/list/one.txt\">one.txt</a>"), std::string::npos)
      << list->body;
  EXPECT_NE(list->body.find("<a href=\"/\">../</a>"), std::string::npos) << list->body;
  EXPECT_EQ(list->body.find("href=\"//"), std::string::npos) << list->body;
}

// A head is read in place (views into the network process's read buffer)
// and keeps its bytes only while its request is still arriving: here its
// body comes after another connection's request has been read into that
// same buffer, and the answer still follows this request's own target and
// Range header.
TEST(Static, AHeadWhoseBodyComesLaterKeepsItsOwnBytes) {
  Site site;
  Server server(site.config());
  ASSERT_TRUE(server.ready()) << server.log();
  Client slow(server.port());
  ASSERT_TRUE(
      slow.send("GET /assets/a.css HTTP/1.1\r\nHost: t\r\nRange: bytes=2-5\r\n"
                "Content-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = slow.read_response();  // its head was read and parsed
  ASSERT_TRUE(interim);
  ASSERT_EQ(interim->status, 100);
  Client other(server.port());  // its bytes now fill the read buffer
  ASSERT_TRUE(other.send(get("/assets/index.html", "X-Pad: " + std::string(200, 'z') + "\r\n")));
  auto r = other.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "<h1>home</h1>\n");
  ASSERT_TRUE(slow.send("body"));
  r = slow.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 206);
  EXPECT_EQ(r->headers["content-range"], "bytes 2-5/20");
  EXPECT_EQ(r->body, "dy {");
}

TEST(Static, ABigFileGoesWholeWithARequestPipelinedBehindIt) {
  Site site;
  Server server(site.config());
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send(get("/assets/big.bin") + get("/assets/a.css")));
  auto r = c.read_response(std::chrono::seconds(20));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], "application/octet-stream");
  EXPECT_TRUE(r->body == site.big) << "body of " << r->body.size() << " bytes differs";
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "body { color: red }\n");
}

TEST(Static, NoPathLeavesTheRoot) {
  Site site;
  Server server(site.config());
  ASSERT_TRUE(server.ready()) << server.log();
  for (const char* target :
       {"/assets/../secret", "/assets/%2e%2e/secret", "/assets/%2E%2E/secret", "/assets/a%2fb",
        "/assets/out", "/assets/nothing.txt", "/assets/..%5csecret"}) {
    Client c(server.port());
    ASSERT_TRUE(c.send(get(target)));
    auto r = c.read_response();
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 404) << target;
    EXPECT_EQ(r->body.find("not for you"), std::string::npos) << target;
  }
  // A decoded NUL, or a ".." above the root, is refused before routing
  // (the path has no normal form): 400.
  for (const char* target : {"/assets/a%00.css", "/../secret", "/assets/../../secret"}) {
    Client c(server.port());
    ASSERT_TRUE(c.send(get(target)));
    auto r = c.read_response();
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 400) << target;
  }
}

// Routing matches the normalized path, but the static route keeps its own
// checks on the path as sent: a path that reaches it only through
// normalization ("." segments, doubled slashes, an encoded prefix) is still
// refused (404), never served from a name it did not spell out.
TEST(Static, ItsOwnChecksStillApplyToThePathAsSent) {
  Site site;
  Server server(site.config());
  ASSERT_TRUE(server.ready()) << server.log();
  for (const char* target : {"/assets/./a.css", "//assets/a.css", "/x/../assets/a.css",
                             "/%61ssets/a.css", "/assets%2Fa.css"}) {
    Client c(server.port());
    ASSERT_TRUE(c.send(get(target)));
    auto r = c.read_response();
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 404) << target;
  }
  Client c(server.port());
  ASSERT_TRUE(c.send(get("/assets/%61.css")));  // an escape after the prefix is decoded there
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "body { color: red }\n");
}

// One request on a new connection: status and body (-1 when no answer).
std::pair<int, std::string> fetch(int port, const std::string& target) {
  Client c(port);
  if (!c.send(get(target))) return {-1, ""};
  auto r = c.read_response();
  if (!r) return {-1, ""};
  return {r->status, r->body};
}

// Asks until `done` holds of the answer, for at most `limit`; true if it did.
template <typename Done>
bool eventually(int port, const std::string& target, Done done,
                std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    auto [status, body] = fetch(port, target);
    if (done(status, body)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// A FIFO under the root: its open would wait for a writer, and with it
// the whole network process (every connection it holds) until the
// watchdog killed it (30 s). It is 404 at once (5 s allowed here), and a
// connection opened before, on the same (single) network process, is
// answered after each.
TEST(Static, AFifoUnderTheRootIs404AndStopsNoOne) {
  Site site;
  ASSERT_EQ(::mkfifo((site.root + "/fifo.txt").c_str(), 0644), 0);
  ASSERT_EQ(::symlink("fifo.txt", (site.root + "/to-fifo.txt").c_str()), 0);
  ::mkdir((site.root + "/pipes").c_str(), 0755);
  ASSERT_EQ(::mkfifo((site.root + "/pipes/index.html").c_str(), 0644), 0);
  Server server(site.config());
  ASSERT_TRUE(server.ready()) << server.log();
  Client held(server.port());  // a keep-alive connection opened before
  const std::vector<std::pair<const char*, int>> cases = {{"/assets/fifo.txt", 404},
                                                          {"/assets/to-fifo.txt", 404},
                                                          {"/assets/pipes/", 403},
                                                          {"/assets/fifo.txt/", 404}};
  for (auto [target, status] : cases) {
    Client c(server.port());
    ASSERT_TRUE(c.send(get(target)));
    auto r = c.read_response(std::chrono::seconds(5));
    ASSERT_TRUE(r) << target << ": no answer (blocked on the FIFO?)\n" << server.log();
    EXPECT_EQ(r->status, status) << target;
    ASSERT_TRUE(held.send(get("/assets/a.css")));
    r = held.read_response(std::chrono::seconds(5));
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->body, "body { color: red }\n") << target;
  }
}

// A trailing slash names a directory (as nginx has it): a file named with
// one is 404; a directory with one is its index file, or 403.
TEST(Static, ATrailingSlashNamesADirectory) {
  Site site;
  ::mkdir((site.root + "/docs").c_str(), 0755);
  std::ofstream(site.root + "/docs/index.html") << "<p>docs</p>\n";
  Server server(site.config());
  ASSERT_TRUE(server.ready()) << server.log();
  const std::vector<std::pair<const char*, int>> cases = {{"/assets/index.html/", 404},
                                                          {"/assets/a.css/", 404},
                                                          {"/assets/a.css//", 404},
                                                          {"/assets/docs/index.html/", 404},
                                                          {"/assets/big.bin/", 404},
                                                          {"/assets/docs/", 200},
                                                          {"/assets/docs", 200},
                                                          {"/assets/empty/", 403},
                                                          {"/assets/", 200},
                                                          {"/assets/a.css", 200}};
  for (auto [target, status] : cases) {
    auto [got, body] = fetch(server.port(), target);
    EXPECT_EQ(got, status) << target;
    if (status == 404) {
      EXPECT_EQ(body, "404 Not Found\n") << target;
    }
  }
}

TEST(StaticCache, AFileIsServedFromTheCacheWithinTheWindow) {
  Site site;
  std::ofstream(site.root + "/v.txt") << "one\n";
  Server server(site.config({{"cache_valid_ms", 3600000}}));
  ASSERT_TRUE(server.ready()) << server.log();
  EXPECT_EQ(fetch(server.port(), "/assets/v.txt"), std::make_pair(200, std::string("one\n")));
  ::unlink((site.root + "/v.txt").c_str());
  // Still open in the cache: served as it was (the window is an hour).
  EXPECT_EQ(fetch(server.port(), "/assets/v.txt"), std::make_pair(200, std::string("one\n")));
}

TEST(StaticCache, AReplacedFileIsServedNewAfterTheWindow) {
  Site site;
  std::ofstream(site.root + "/v.txt") << "one\n";
  Server server(site.config({{"cache_valid_ms", 200}}));
  ASSERT_TRUE(server.ready()) << server.log();
  EXPECT_EQ(fetch(server.port(), "/assets/v.txt"), std::make_pair(200, std::string("one\n")));
  const auto changed = std::chrono::steady_clock::now();
  site.replace("v.txt", "two, longer\n");
  EXPECT_TRUE(eventually(server.port(), "/assets/v.txt", [](int status, const std::string& body) {
    return status == 200 && body == "two, longer\n";
  }));
  // Never later than the window (plus scheduling slack).
  EXPECT_LT(std::chrono::steady_clock::now() - changed, std::chrono::seconds(2));
  EXPECT_EQ(fetch(server.port(), "/assets/v.txt"),
            std::make_pair(200, std::string("two, longer\n")));
}

TEST(StaticCache, ADeletedFileIs404AfterTheWindow) {
  Site site;
  Server server(site.config({{"cache_valid_ms", 200}}));
  ASSERT_TRUE(server.ready()) << server.log();
  EXPECT_EQ(fetch(server.port(), "/assets/a.css").first, 200);
  ::unlink((site.root + "/a.css").c_str());
  EXPECT_TRUE(eventually(server.port(), "/assets/a.css",
                         [](int status, const std::string&) { return status == 404; }));
  EXPECT_EQ(fetch(server.port(), "/assets/a.css").first, 404);
}

TEST(StaticCache, AFileTurnedIntoASymlinkOutOfTheRootIsNeverServedOut) {
  Site site;
  Server server(site.config({{"cache_valid_ms", 200}}));
  ASSERT_TRUE(server.ready()) << server.log();
  EXPECT_EQ(fetch(server.port(), "/assets/a.css").first, 200);
  ::unlink((site.root + "/a.css").c_str());
  ::symlink((site.dir + "/secret").c_str(), (site.root + "/a.css").c_str());
  EXPECT_TRUE(eventually(server.port(), "/assets/a.css", [](int status, const std::string& body) {
    EXPECT_EQ(body.find("not for you"), std::string::npos);
    return status == 404;
  }));
}

TEST(StaticCache, MoreFilesThanTheBoundAreAllServed) {
  Site site;
  for (int i = 0; i < 40; ++i) {
    std::ofstream(site.root + "/f" + std::to_string(i) + ".txt") << "file " << i << "\n";
  }
  Server server(site.config({{"cache_entries", 4}}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 40; ++i) {
      ASSERT_TRUE(c.send(get(numbered("/assets/f", i, ".txt"))));
      auto r = c.read_response();
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(r->body, numbered("file ", i, "\n"));
    }
  }
  // And the escapes are still refused with a small cache.
  for (const char* target : {"/assets/../secret", "/assets/out", "/assets/%2e%2e/secret"}) {
    EXPECT_EQ(fetch(server.port(), target).first, 404) << target;
  }
}

TEST(StaticCache, NoCacheServesToo) {
  Site site;
  Server server(site.config({{"cache_entries", 0}}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  ASSERT_TRUE(c.send(get("/assets/big.bin") + get("/assets/a.css")));
  auto r = c.read_response(std::chrono::seconds(20));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->body == site.big);
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "body { color: red }\n");
}

TEST(Static, TheRouteMediaTypesOverrideTheBuiltInOnes) {
  Site site;
  std::ofstream(site.root + "/m.wasm") << "wasm";
  std::ofstream(site.root + "/n.LOG") << "log";
  Server server(site.config(
      {{"types", {{"css", "text/x-special-css"}, {"log", "text/plain; charset=utf-8"}}}}));
  ASSERT_TRUE(server.ready()) << server.log();
  Client c(server.port());
  for (auto [target, type] : {std::pair{"/assets/a.css", "text/x-special-css"},
                              std::pair{"/assets/n.LOG", "text/plain; charset=utf-8"},
                              std::pair{"/assets/m.wasm", "application/wasm"}}) {
    ASSERT_TRUE(c.send(get(target)));
    auto r = c.read_response();
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 200) << target;
    EXPECT_EQ(r->headers["content-type"], type) << target;
  }
}

TEST(Static, CheckNamesAMissingRoot) {
  TempFile file(
      json{{"routes", {{{"path", "/"}, {"static", {{"root", "/nonexistent-www"}}}}}}}.dump());
  std::string out;
  EXPECT_NE(run_binary({"check", "-c", file.path()}, out), 0);
  EXPECT_NE(out.find("routes[0].static.root: is not a directory: \"/nonexistent-www\""),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace ringhttpd::testing
