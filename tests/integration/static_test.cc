// Static files from the real binary (route "static"): contents and media
// types, HEAD, validators and 304, single ranges and 416, index files and
// 403, a 2 MiB file through sendfile with a request pipelined behind it,
// and paths that try to leave the root (404).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

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
  std::string config() const {
    return json{{"listeners", {{{"address", "127.0.0.1"}, {"port", 0}}}},
                {"network", {{"processes", 1}}},
                {"routes", {{{"path", "/assets/"}, {"static", {{"root", root}}}}}}}
        .dump();
  }
  std::string dir, root, big;
};

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
        "/assets/out", "/assets/nothing.txt", "/assets/a%00.css", "/assets/..%5csecret"}) {
    Client c(server.port());
    ASSERT_TRUE(c.send(get(target)));
    auto r = c.read_response();
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 404) << target;
    EXPECT_EQ(r->body.find("not for you"), std::string::npos) << target;
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
