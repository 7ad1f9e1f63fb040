// The open-file cache of a static route (worker/file_cache.h), without
// processes: the clock is an argument, so hits, misses, eviction at the
// bound, and invalidation after the validity window (a file changed,
// replaced by rename, deleted, turned into a symlink out of the root) are
// checked directly, with real files in a temporary directory.
#include "worker/file_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>

namespace ringhttpd::worker {
namespace {

// a + i + b (GCC 12 warns, wrongly, on "literal" + std::string&&).
std::string numbered(const char* a, int i, const char* b) {
  std::string out = a;
  out += std::to_string(i);
  out += b;
  return out;
}

std::shared_ptr<const OpenFile> fake(std::string etag, int fd = -1) {
  auto f = std::make_shared<OpenFile>();
  f->fd = proto::UniqueFd(fd);
  f->etag = std::move(etag);
  return f;
}

bool fd_open(int fd) { return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

TEST(FileCache, AHitWithinTheWindowAMissAfterIt) {
  FileCache cache(10, 1000);
  EXPECT_EQ(cache.find("a", 0), nullptr);  // miss
  cache.put("a", fake("A"), 100);
  ASSERT_NE(cache.find("a", 100), nullptr);
  EXPECT_EQ(cache.find("a", 1099)->etag, "A");  // still fresh
  EXPECT_EQ(cache.find("a", 1100), nullptr);    // stale: to be opened again
  EXPECT_EQ(cache.size(), 1u);                  // kept until replaced or dropped
  cache.put("a", fake("A2"), 1100);
  EXPECT_EQ(cache.find("a", 1200)->etag, "A2");
  EXPECT_EQ(cache.size(), 1u);
  cache.drop("a");
  EXPECT_EQ(cache.find("a", 1200), nullptr);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(FileCache, TheLeastRecentlyUsedIsEvictedAtTheBound) {
  FileCache cache(2, 1000);
  cache.put("a", fake("A"), 0);
  cache.put("b", fake("B"), 0);
  ASSERT_NE(cache.find("a", 1), nullptr);  // a is now the most recently used
  cache.put("c", fake("C"), 2);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.evictions(), 1u);
  EXPECT_EQ(cache.find("b", 3), nullptr);
  EXPECT_EQ(cache.find("a", 3)->etag, "A");
  EXPECT_EQ(cache.find("c", 3)->etag, "C");
}

TEST(FileCache, AnEvictedDescriptorClosesWhenItsLastUserIsDone) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  ::close(fds[1]);
  FileCache cache(1, 1000);
  cache.put("a", fake("A", fds[0]), 0);
  std::shared_ptr<const OpenFile> sending = cache.find("a", 0);  // a response in flight
  cache.put("b", fake("B"), 0);                                  // evicts a
  EXPECT_TRUE(fd_open(fds[0]));                                  // still being sent
  sending.reset();
  EXPECT_FALSE(fd_open(fds[0]));
}

TEST(FileCache, ZeroCapacityCachesNothing) {
  FileCache cache(0, 1000);
  cache.put("a", fake("A"), 0);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.find("a", 0), nullptr);
}

TEST(FileCache, DestroyingTheCacheClosesItsDescriptors) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  ::close(fds[1]);
  {
    FileCache cache(4, 1000);
    cache.put("a", fake("A", fds[0]), 0);
    EXPECT_TRUE(fd_open(fds[0]));
  }
  EXPECT_FALSE(fd_open(fds[0]));
}

// A site in a temporary directory: www/ is the root, "secret" is beside it.
struct Site {
  Site() {
    char t[] = "/tmp/ringhttpd-cache-XXXXXX";
    dir = ::mkdtemp(t);
    root = dir + "/www";
    ::mkdir(root.c_str(), 0755);
    ::mkdir((root + "/docs").c_str(), 0755);
    write("a.txt", "first\n");
    write("docs/index.html", "<p>docs</p>\n");
    std::ofstream(dir + "/secret") << "not for you\n";
    root_fd = proto::UniqueFd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  }
  ~Site() { std::system(("rm -rf " + dir).c_str()); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(root + "/" + name, std::ios::binary | std::ios::trunc) << text;
  }
  // Writes a new file and renames it over `name` (a deploy).
  void replace(const std::string& name, const std::string& text) const {
    write(name + ".new", text);
    ASSERT_EQ(::rename((root + "/" + name + ".new").c_str(), (root + "/" + name).c_str()), 0);
  }
  std::string dir, root;
  proto::UniqueFd root_fd;
};

std::string contents(const OpenFile& f) {
  std::string out(f.size, '\0');
  const ssize_t n = ::pread(f.fd.get(), out.data(), out.size(), 0);
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

TEST(FileCacheLookup, OpensOnAMissAndServesTheSameFileOnAHit) {
  Site site;
  StaticSettings s;
  FileCache cache(10, 1000);
  FileLookup first = lookup_static_file(cache, site.root_fd.get(), "a.txt", s, 0);
  ASSERT_TRUE(first.file);
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.file->size, 6u);
  EXPECT_EQ(first.file->content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(contents(*first.file), "first\n");
  FileLookup again = lookup_static_file(cache, site.root_fd.get(), "a.txt", s, 999);
  EXPECT_EQ(again.file, first.file);  // the same open file: no syscall
}

TEST(FileCacheLookup, AFileReplacedByRenameIsSeenAfterTheWindow) {
  Site site;
  StaticSettings s;
  FileCache cache(10, 1000);
  FileLookup old = lookup_static_file(cache, site.root_fd.get(), "a.txt", s, 0);
  ASSERT_TRUE(old.file);
  site.replace("a.txt", "second, longer\n");
  // Within the window: the file as it was opened (documented).
  EXPECT_EQ(lookup_static_file(cache, site.root_fd.get(), "a.txt", s, 500).file, old.file);
  FileLookup now = lookup_static_file(cache, site.root_fd.get(), "a.txt", s, 1000);
  ASSERT_TRUE(now.file);
  EXPECT_NE(now.file->etag, old.file->etag);
  EXPECT_EQ(now.file->size, 15u);
  EXPECT_EQ(contents(*now.file), "second, longer\n");
  EXPECT_EQ(contents(*old.file), "first\n");  // a response in flight keeps its file
}

TEST(FileCacheLookup, AFileChangedInPlaceGetsANewTagAfterTheWindow) {
  Site site;
  StaticSettings s;
  FileCache cache(10, 1000);
  FileLookup old = lookup_static_file(cache, site.root_fd.get(), "a.txt", s, 0);
  ASSERT_TRUE(old.file);
  site.write("a.txt", "changed in place\n");
  FileLookup now = lookup_static_file(cache, site.root_fd.get(), "a.txt", s, 2000);
  ASSERT_TRUE(now.file);
  EXPECT_NE(now.file->etag, old.file->etag);
  EXPECT_EQ(now.file->size, 17u);
}

TEST(FileCacheLookup, ADeletedFileIs404AfterTheWindowAndLeavesTheCache) {
  Site site;
  StaticSettings s;
  FileCache cache(10, 1000);
  ASSERT_TRUE(lookup_static_file(cache, site.root_fd.get(), "a.txt", s, 0).file);
  ASSERT_EQ(::unlink((site.root + "/a.txt").c_str()), 0);
  EXPECT_TRUE(lookup_static_file(cache, site.root_fd.get(), "a.txt", s, 999).file);
  FileLookup gone = lookup_static_file(cache, site.root_fd.get(), "a.txt", s, 1000);
  EXPECT_FALSE(gone.file);
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(FileCacheLookup, APathTurnedIntoASymlinkOutOfTheRootIs404AfterTheWindow) {
  Site site;
  StaticSettings s;
  FileCache cache(10, 1000);
  ASSERT_TRUE(lookup_static_file(cache, site.root_fd.get(), "a.txt", s, 0).file);
  ASSERT_EQ(::unlink((site.root + "/a.txt").c_str()), 0);
  ASSERT_EQ(::symlink((site.dir + "/secret").c_str(), (site.root + "/a.txt").c_str()), 0);
  FileLookup now = lookup_static_file(cache, site.root_fd.get(), "a.txt", s, 1000);
  EXPECT_FALSE(now.file);
  EXPECT_EQ(now.status, 404);
  // Nor through a directory that became a symlink out of the root.
  ASSERT_TRUE(lookup_static_file(cache, site.root_fd.get(), "docs/index.html", s, 0).file);
  ASSERT_EQ(std::system(("rm -rf " + site.root + "/docs").c_str()), 0);
  ASSERT_EQ(::symlink(site.dir.c_str(), (site.root + "/docs").c_str()), 0);
  std::ofstream(site.dir + "/index.html") << "outside\n";
  EXPECT_FALSE(lookup_static_file(cache, site.root_fd.get(), "docs/secret", s, 1000).file);
  EXPECT_FALSE(lookup_static_file(cache, site.root_fd.get(), "docs/index.html", s, 1000).file);
}

TEST(FileCacheLookup, ADirectoryIsItsIndexFileAndFailuresAreNotCached) {
  Site site;
  StaticSettings s;
  FileCache cache(10, 1000);
  FileLookup index = lookup_static_file(cache, site.root_fd.get(), "docs", s, 0);
  ASSERT_TRUE(index.file);
  EXPECT_EQ(index.file->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(contents(*index.file), "<p>docs</p>\n");
  EXPECT_EQ(lookup_static_file(cache, site.root_fd.get(), "", s, 0).status, 403);  // no index
  EXPECT_EQ(lookup_static_file(cache, site.root_fd.get(), "none", s, 0).status, 404);
  EXPECT_EQ(cache.size(), 1u);
  site.write("none", "now here\n");  // a 404 is not remembered
  EXPECT_TRUE(lookup_static_file(cache, site.root_fd.get(), "none", s, 1).file);
}

// lookup_static_file on another thread, for at most 5 s: a FIFO whose open
// blocked would hang the network process. After a timeout the FIFO `fifo`
// is opened for writing, which releases the open, and the test fails.
FileLookup lookup_in_time(FileCache& cache, const Site& site, const std::string& name,
                          const StaticSettings& s, const std::string& fifo) {
  auto done = std::async(std::launch::async,
                         [&] { return lookup_static_file(cache, site.root_fd.get(), name, s, 0); });
  if (done.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    ADD_FAILURE() << name << ": the open waited on a FIFO";
    ::close(::open((site.root + "/" + fifo).c_str(), O_WRONLY | O_NONBLOCK));
  }
  return done.get();
}

TEST(FileCacheLookup, AFifoIs404WithoutWaitingForAWriter) {
  Site site;
  ASSERT_EQ(::mkfifo((site.root + "/fifo.txt").c_str(), 0644), 0);
  ASSERT_EQ(::symlink("fifo.txt", (site.root + "/to-fifo").c_str()), 0);
  StaticSettings s;
  FileCache cache(10, 1000);
  for (const char* name : {"fifo.txt", "to-fifo"}) {
    FileLookup f = lookup_in_time(cache, site, name, s, "fifo.txt");
    EXPECT_FALSE(f.file) << name;
    EXPECT_EQ(f.status, 404) << name;
  }
  EXPECT_EQ(cache.size(), 0u);
}

// An index candidate that is a FIFO is skipped without waiting: the next
// index file is served, or 403 when there is none.
TEST(FileCacheLookup, AFifoIndexIsSkippedWithoutWaiting) {
  Site site;
  ::mkdir((site.root + "/f").c_str(), 0755);
  ASSERT_EQ(::mkfifo((site.root + "/f/index.html").c_str(), 0644), 0);
  StaticSettings s;
  FileCache cache(10, 1000);
  EXPECT_EQ(lookup_in_time(cache, site, "f", s, "f/index.html").status, 403);
  site.write("f/index.htm", "second\n");
  s.index = {"index.html", "index.htm"};
  FileLookup f = lookup_in_time(cache, site, "f", s, "f/index.html");
  ASSERT_TRUE(f.file);
  EXPECT_EQ(contents(*f.file), "second\n");
}

// A device node under the root (only root can make one) is 404 as well:
// only regular files are served.
TEST(FileCacheLookup, ADeviceNodeIs404) {
  if (::geteuid() != 0) GTEST_SKIP() << "mknod needs root";
  Site site;
  struct statvfs fs {};
  if (::mknod((site.root + "/null").c_str(), S_IFCHR | 0666, ::makedev(1, 3)) != 0 ||
      ::statvfs(site.root.c_str(), &fs) != 0 || (fs.f_flag & ST_NODEV) != 0) {
    GTEST_SKIP() << "no device node here (mknod refused or a nodev mount)";
  }
  StaticSettings s;
  FileCache cache(10, 1000);
  FileLookup f = lookup_static_file(cache, site.root_fd.get(), "null", s, 0);
  EXPECT_FALSE(f.file);
  EXPECT_EQ(f.status, 404);
}

// A trailing slash names a directory: a file named with one is 404, a
// directory with one is its index file.
TEST(FileCacheLookup, ATrailingSlashNamesADirectoryOnly) {
  Site site;
  StaticSettings s;
  FileCache cache(10, 1000);
  EXPECT_EQ(lookup_static_file(cache, site.root_fd.get(), "a.txt/", s, 0).status, 404);
  EXPECT_EQ(lookup_static_file(cache, site.root_fd.get(), "docs/index.html/", s, 0).status, 404);
  FileLookup index = lookup_static_file(cache, site.root_fd.get(), "docs/", s, 0);
  ASSERT_TRUE(index.file);
  EXPECT_EQ(contents(*index.file), "<p>docs</p>\n");
  EXPECT_TRUE(lookup_static_file(cache, site.root_fd.get(), "a.txt", s, 0).file);
  EXPECT_EQ(lookup_static_file(cache, site.root_fd.get(), "a.txt/", s, 0).status, 404);
}

// Every file is opened O_NONBLOCK (for the FIFO's sake); sendfile from it
// still sends all of it, as the network process does.
TEST(FileCacheLookup, SendfileFromTheNonBlockingDescriptorSendsItAll) {
  Site site;
  const std::string big(300000, 'x');
  site.write("big.bin", big);
  StaticSettings s;
  FileCache cache(10, 1000);
  FileLookup f = lookup_static_file(cache, site.root_fd.get(), "big.bin", s, 0);
  ASSERT_TRUE(f.file);
  EXPECT_NE(::fcntl(f.file->fd.get(), F_GETFL) & O_NONBLOCK, 0);
  char name[] = "/tmp/ringhttpd-sendfile-XXXXXX";
  proto::UniqueFd out(::mkstemp(name));
  ASSERT_TRUE(out);
  ::unlink(name);
  off_t offset = 0;
  uint64_t sent = 0;
  while (sent < f.file->size) {
    const ssize_t w = ::sendfile(out.get(), f.file->fd.get(), &offset, f.file->size - sent);
    ASSERT_GT(w, 0) << std::strerror(errno);
    sent += static_cast<uint64_t>(w);
  }
  EXPECT_EQ(sent, big.size());
}

TEST(FileCacheLookup, MoreFilesThanTheBoundAreAllServedCorrectly) {
  Site site;
  StaticSettings s;
  FileCache cache(3, 1000);
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 10; ++i) {
      const std::string name = numbered("f", i, ".txt");
      if (round == 0) site.write(name, numbered("file ", i, "\n"));
      FileLookup f = lookup_static_file(cache, site.root_fd.get(), name, s, round);
      ASSERT_TRUE(f.file) << name;
      EXPECT_EQ(contents(*f.file), numbered("file ", i, "\n"));
      EXPECT_LE(cache.size(), 3u);
    }
  }
  EXPECT_EQ(cache.evictions(), 17u);  // 20 misses into 3 places
}

TEST(FileCacheLookup, TheRouteMediaTypesComeFirst) {
  Site site;
  site.write("app.wasm", "wasm");
  site.write("notes.TXT", "x");
  StaticSettings s;
  s.types = {{"txt", "text/x-notes"}, {"wasm", "application/x-custom-wasm"}};
  FileCache cache(10, 1000);
  EXPECT_EQ(lookup_static_file(cache, site.root_fd.get(), "app.wasm", s, 0).file->content_type,
            "application/x-custom-wasm");
  EXPECT_EQ(lookup_static_file(cache, site.root_fd.get(), "notes.TXT", s, 0).file->content_type,
            "text/x-notes");
}

TEST(FileCacheFds, TheCacheFitsBesideTheClients) {
  // Enough already: unchanged.
  CacheFdPlan p = plan_cache_fds(1000, 10000, 20000, 20000);
  EXPECT_EQ(p.soft, 20000u);
  EXPECT_EQ(p.entries, 1000u);
  // The soft limit is raised toward the hard one.
  p = plan_cache_fds(1000, 10000, 10064, 524288);
  EXPECT_EQ(p.soft, 10000 + kCacheFdReserve + 1000);
  EXPECT_EQ(p.entries, 1000u);
  // The hard limit caps it: what is left beside the clients.
  p = plan_cache_fds(1000, 10000, 10064, 10500);
  EXPECT_EQ(p.soft, 10500u);
  EXPECT_EQ(p.entries, 10500 - 10000 - kCacheFdReserve);
  // Nothing left.
  p = plan_cache_fds(1000, 10000, 10064, 10064);
  EXPECT_EQ(p.entries, 0u);
}

}  // namespace
}  // namespace ringhttpd::worker
