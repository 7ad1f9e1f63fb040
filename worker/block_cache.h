// BlockCache: a memory resource that keeps freed small blocks for reuse, one
// free list per size class. It exists for the per-request objects of a
// worker's loop (a service process's Stream and its table entry, a network
// process's pending-request entry): under pipelined load a loop iteration
// creates a few hundred of them and frees them all a moment later, and
// glibc's per-thread cache keeps only 7 blocks per size, so the rest went
// through malloc's slower bins every time (perf: _int_malloc and _int_free
// were the largest user-space symbols of a service process).
//
//   size class k = blocks of (k + 1) * 16 bytes, for k < kClasses (1 KiB)
//   free list   = singly linked through the blocks themselves
//   bound       = at most max_free blocks kept per class; the rest go back
//                 to operator delete. What is kept is what the process had
//                 in use at its busiest, and at most max_free blocks of each
//                 class (at the default 1024, 16 KiB to 1 MiB per class
//                 in use; a worker uses two or three classes).
//   sanitizer   = under ASan a kept block is poisoned but for its link, so
//                 a use after free is still reported.
//
// Larger or over-aligned requests go straight to operator new. One
// process, one thread: no locking (std::pmr's unsynchronized resources make
// the same assumption).
#pragma once

#include <array>
#include <cstddef>
#include <memory_resource>

namespace ringhttpd::worker {

class BlockCache : public std::pmr::memory_resource {
 public:
  static constexpr size_t kGranule = 16;
  static constexpr size_t kClasses = 64;  // blocks up to 1 KiB
  static constexpr size_t kMaxBlock = kGranule * kClasses;

  explicit BlockCache(size_t max_free_per_class = 1024) : max_free_(max_free_per_class) {}
  ~BlockCache() override;
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // Blocks kept for reuse in the class that serves `bytes` (tests).
  size_t free_blocks(size_t bytes) const;

 private:
  struct FreeBlock {
    FreeBlock* next;
  };
  struct FreeList {
    FreeBlock* head = nullptr;
    size_t count = 0;
  };
  static bool cached(size_t bytes, size_t alignment) {
    return bytes != 0 && bytes <= kMaxBlock && alignment <= kGranule;
  }
  static size_t class_of(size_t bytes) { return (bytes - 1) / kGranule; }

  void* do_allocate(size_t bytes, size_t alignment) override;
  void do_deallocate(void* p, size_t bytes, size_t alignment) override;
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  size_t max_free_;
  std::array<FreeList, kClasses> lists_{};
};

}  // namespace ringhttpd::worker
