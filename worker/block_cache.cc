// Free lists of small blocks (see block_cache.h).
#include "worker/block_cache.h"

#include <new>

namespace ringhttpd::worker {

BlockCache::~BlockCache() {
  for (size_t k = 0; k < kClasses; ++k) {
    while (FreeBlock* b = lists_[k].head) {
      lists_[k].head = b->next;
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
}

}  // namespace ringhttpd::worker
