// The open-file cache of one static route in one network process: a
// request path (relative to the route's root) -> the file it named, open,
// with what its response head needs computed once (size, ETag,
// Last-Modified text, Content-Type). A fresh hit costs no syscall at all:
// no openat2, no fstat, no close.
//
// Bounded: at most `capacity` entries, the least recently used is evicted
// (its descriptor closes when the last response sending it is done); 0
// disables the cache. The entries' descriptors count against RLIMIT_NOFILE,
// so the network process sizes them with plan_cache_fds at start.
//
// Invalidation: an entry is used for `valid_ms` after it was opened (like
// nginx's open_file_cache_valid); after that the path is opened again
// (openat2 RESOLVE_BENEATH + fstat) and the entry replaced by what the path
// names now, or dropped when it names nothing (404). So a file replaced
// (rename over it), changed, deleted, or turned into a symlink is seen
// within `valid_ms`, and revalidation can never reach outside the root: it
// is the same beneath-the-root open as a miss. A cached descriptor always
// refers to a file that was beneath the root when it was opened; within the
// window it is served as it was then (a file rewritten in place within the
// window is sent with the length it had; one that shrank ends the
// connection, as without the cache). Failures (404, 403) are not cached.
//
// The decisions (find, put, evict) make no syscall and take the clock as an
// argument; open_static_file is the one place that touches the filesystem.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proto/http_request.h"
#include "proto/unique_fd.h"
#include "worker/settings.h"

namespace ringhttpd::worker {

// A regular file, open, and its response head facts.
struct OpenFile {
  proto::UniqueFd fd;
  uint64_t size = 0;
  std::string etag;           // entity_tag of its stat
  std::string last_modified;  // IMF-fixdate of its mtime
  std::string content_type;
  // The headers of a 304 (ETag, Last-Modified) and of a 200 (those, then
  // Content-Type and Accept-Ranges), built once: a hit copies no string.
  std::vector<proto::Header> validators;
  std::vector<proto::Header> headers;
};

// What a request path names: a file (status 200); a directory without an
// index file to list (`directory` open, status 200; static.listing); or a
// status to answer (403: such a directory without listing, or no
// permission; 404).
struct FileLookup {
  std::shared_ptr<const OpenFile> file;
  int status = 404;
  proto::UniqueFd directory;
};

class FileCache {
 public:
  FileCache(uint64_t capacity, int64_t valid_ms) : capacity_(capacity), valid_ms_(valid_ms) {}
  FileCache(const FileCache&) = delete;
  FileCache& operator=(const FileCache&) = delete;

  // The entry for `key` if it was opened less than valid_ms before
  // `now_ms` (it becomes the most recently used); nullptr on a miss or a
  // stale entry (which stays until put or drop replaces it).
  std::shared_ptr<const OpenFile> find(std::string_view key, int64_t now_ms);
  // Stores `file` for `key`, opened at `now_ms`, evicting the least
  // recently used entry beyond the capacity. Nothing when the capacity is 0.
  void put(std::string_view key, std::shared_ptr<const OpenFile> file, int64_t now_ms);
  void drop(std::string_view key);

  uint64_t size() const { return index_.size(); }
  uint64_t capacity() const { return capacity_; }
  uint64_t evictions() const { return evictions_; }

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const OpenFile> file;
    int64_t opened_ms = 0;
  };
  using Lru = std::list<Entry>;  // most recently used first; nodes never move
  uint64_t capacity_;
  int64_t valid_ms_;
  Lru lru_;
  std::unordered_map<std::string_view, Lru::iterator> index_;  // keys live in lru_
  uint64_t evictions_ = 0;
};

// Opens what `relative` names beneath `root_fd` (a directory: its first
// regular index file) and computes its head facts. Syscalls: openat2 and
// fstat (per index candidate for a directory). Anything but a regular file
// (a FIFO, a socket, a device node) is 404, found without blocking; a
// path with a trailing slash that names a file is 404 too.
FileLookup open_static_file(int root_fd, const std::string& relative, const StaticSettings& s);

// `relative` from the cache, or opened (open_static_file) and cached; a
// path that names nothing any more is dropped from the cache.
FileLookup lookup_static_file(FileCache& cache, int root_fd, const std::string& relative,
                              const StaticSettings& s, int64_t now_ms);

// Descriptors kept for a network process's own use beyond its clients
// (listeners, rings, epoll, logs, static roots, accept bursts).
inline constexpr uint64_t kCacheFdReserve = 256;

// How many cached descriptors a network process may hold in all (`entries`,
// at most `wanted`) and the RLIMIT_NOFILE soft limit that needs (`soft`,
// raised up to `hard` when below: any process may raise its soft limit).
// The clients (max_connections) and kCacheFdReserve come first.
struct CacheFdPlan {
  uint64_t soft = 0;
  uint64_t entries = 0;
};
CacheFdPlan plan_cache_fds(uint64_t wanted, uint64_t max_connections, uint64_t soft, uint64_t hard);

}  // namespace ringhttpd::worker
