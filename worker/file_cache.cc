// The open-file cache of a static route (see file_cache.h).
#include "worker/file_cache.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "proto/http_response.h"
#include "worker/static_files.h"

namespace ringhttpd::worker {

std::shared_ptr<const OpenFile> FileCache::find(std::string_view key, int64_t now_ms) {
  const auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  const Lru::iterator entry = it->second;
  if (now_ms - entry->opened_ms >= valid_ms_) return nullptr;  // stale: open it again
  lru_.splice(lru_.begin(), lru_, entry);
  return entry->file;
}

void FileCache::put(std::string_view key, std::shared_ptr<const OpenFile> file, int64_t now_ms) {
  if (capacity_ == 0) return;
  if (const auto it = index_.find(key); it != index_.end()) {
    it->second->file = std::move(file);
    it->second->opened_ms = now_ms;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  if (index_.size() >= capacity_) {  // the least recently used goes
    index_.erase(lru_.back().key);
    lru_.pop_back();
    ++evictions_;
  }
  lru_.push_front(Entry{std::string(key), std::move(file), now_ms});
  index_.emplace(lru_.front().key, lru_.begin());
}

void FileCache::drop(std::string_view key) {
  const auto it = index_.find(key);
  if (it == index_.end()) return;
  const Lru::iterator entry = it->second;
  index_.erase(it);
  lru_.erase(entry);
}

// Only a regular file is served, and only after fstat says so: anything
// else the path names (a FIFO, a socket, a device node) is 404, as nginx
// answers it. open_beneath opens with O_NONBLOCK, so that is decided
// without ever waiting on a FIFO's writer.
FileLookup open_static_file(int root_fd, const std::string& relative, const StaticSettings& s) {
  proto::UniqueFd fd = open_beneath(root_fd, relative);
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0) return {nullptr, errno == EACCES ? 403 : 404, {}};
  std::string name = relative;
  if (S_ISDIR(st.st_mode)) {  // its index file, or a listing (if asked for), or 403
    proto::UniqueFd found;
    bool blocked = false;  // an index that exists but cannot be served: 403, never a listing
    for (const std::string& index : s.index) {
      std::string candidate = name;
      if (!candidate.empty() && !candidate.ends_with('/')) candidate += '/';
      candidate += index;
      proto::UniqueFd f = open_beneath(root_fd, candidate);
      if (!f) {
        blocked = blocked || (errno != ENOENT && errno != ENOTDIR);
        continue;
      }
      if (::fstat(f.get(), &st) == 0 && S_ISREG(st.st_mode)) {
        found = std::move(f);
        name = std::move(candidate);
        break;
      }
      blocked = true;
    }
    if (!found && s.listing && !blocked) return {nullptr, 200, std::move(fd)};
    if (!found) return {nullptr, 403, {}};
    fd = std::move(found);
  } else if (relative.ends_with('/')) {
    // "a.txt/" names a directory: the open already failed (ENOTDIR), and
    // this does not rely on it.
    return {nullptr, 404, {}};
  }
  if (!S_ISREG(st.st_mode)) return {nullptr, 404, {}};
  auto file = std::make_shared<OpenFile>();
  file->fd = std::move(fd);
  file->size = static_cast<uint64_t>(st.st_size);
  file->etag = entity_tag(st);
  file->last_modified = proto::http_date(st.st_mtim.tv_sec);
  file->content_type = media_type(name, s.types);
  file->validators = {{"ETag", file->etag}, {"Last-Modified", file->last_modified}};
  file->headers = file->validators;
  file->headers.push_back({"Content-Type", file->content_type});
  file->headers.push_back({"Accept-Ranges", "bytes"});
  return {std::move(file), 200, {}};
}

FileLookup lookup_static_file(FileCache& cache, int root_fd, const std::string& relative,
                              const StaticSettings& s, int64_t now_ms) {
  if (std::shared_ptr<const OpenFile> hit = cache.find(relative, now_ms)) return {hit, 200, {}};
  FileLookup found = open_static_file(root_fd, relative, s);
  if (found.file) {
    cache.put(relative, found.file, now_ms);
  } else {
    cache.drop(relative);
  }
  return found;
}

CacheFdPlan plan_cache_fds(uint64_t wanted, uint64_t max_connections, uint64_t soft,
                           uint64_t hard) {
  const uint64_t others = max_connections + kCacheFdReserve;
  const uint64_t need = others + wanted;
  CacheFdPlan plan{soft, wanted};
  if (soft >= need) return plan;
  plan.soft = std::max(soft, std::min(hard, need));
  plan.entries = plan.soft > others ? std::min(wanted, plan.soft - others) : 0;
  return plan;
}

}  // namespace ringhttpd::worker
