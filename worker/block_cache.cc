// Free lists of small blocks (see block_cache.h).
#include "worker/block_cache.h"

#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define RINGHTTPD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RINGHTTPD_ASAN 1
#endif
#endif
#ifdef RINGHTTPD_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace ringhttpd::worker {
namespace {

static_assert(BlockCache::kGranule <= __STDCPP_DEFAULT_NEW_ALIGNMENT__,
              "operator new's blocks must be aligned for every cached class");

// A kept block is off limits but for its link (ASan builds only).
void poison_kept(void* p, size_t block) {
#ifdef RINGHTTPD_ASAN
  ASAN_POISON_MEMORY_REGION(static_cast<char*>(p) + sizeof(void*), block - sizeof(void*));
#else
  (void)p;
  (void)block;
#endif
}

void unpoison(void* p, size_t block) {
#ifdef RINGHTTPD_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, block);
#else
  (void)p;
  (void)block;
#endif
}

}  // namespace

BlockCache::~BlockCache() {
  for (size_t k = 0; k < kClasses; ++k) {
    while (FreeBlock* b = lists_[k].head) {
      lists_[k].head = b->next;
      unpoison(b, (k + 1) * kGranule);
      ::operator delete(b, (k + 1) * kGranule);
    }
  }
}

size_t BlockCache::free_blocks(size_t bytes) const {
  return cached(bytes, 1) ? lists_[class_of(bytes)].count : 0;
}

void* BlockCache::do_allocate(size_t bytes, size_t alignment) {
  if (!cached(bytes, alignment)) {
    return ::operator new (bytes, std::align_val_t{alignment});
  }
  FreeList& list = lists_[class_of(bytes)];
  if (FreeBlock* b = list.head) {
    list.head = b->next;
    --list.count;
    unpoison(b, (class_of(bytes) + 1) * kGranule);
    return b;
  }
  // operator new's blocks are aligned for any type up to kGranule.
  return ::operator new((class_of(bytes) + 1) * kGranule);
}

void BlockCache::do_deallocate(void* p, size_t bytes, size_t alignment) {
  if (!cached(bytes, alignment)) {
    return ::operator delete (p, bytes, std::align_val_t{alignment});
  }
  const size_t k = class_of(bytes);
  FreeList& list = lists_[k];
  if (list.count >= max_free_) return ::operator delete(p, (k + 1) * kGranule);
  list.head = new (p) FreeBlock{list.head};
  ++list.count;
  poison_kept(p, (k + 1) * kGranule);
}

}  // namespace ringhttpd::worker
