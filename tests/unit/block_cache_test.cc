// BlockCache: freed small blocks come back for the next allocation of their
// size class, no more than the bound are kept, and what it cannot cache
// (large or over-aligned) still works.
#include "worker/block_cache.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <memory_resource>
#include <unordered_map>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define BLOCK_CACHE_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BLOCK_CACHE_TEST_ASAN 1
#endif
#endif
#ifdef BLOCK_CACHE_TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace ringhttpd::worker {
namespace {

TEST(BlockCache, AFreedBlockIsTheNextOneOfItsClass) {
  BlockCache cache;
  void* a = cache.allocate(40, 8);
  std::memset(a, 0xab, 40);
  cache.deallocate(a, 40, 8);
  EXPECT_EQ(cache.free_blocks(40), 1u);
  // 33..48 bytes share a class: the same block serves 48.
  void* b = cache.allocate(48, 8);
  EXPECT_EQ(b, a);
  EXPECT_EQ(cache.free_blocks(40), 0u);
  // Another class does not take it.
  cache.deallocate(b, 48, 8);
  void* c = cache.allocate(64, 8);
  EXPECT_NE(c, a);
  EXPECT_EQ(cache.free_blocks(48), 1u);
  cache.deallocate(c, 64, 8);
}

TEST(BlockCache, KeepsAtMostItsBoundPerClass) {
  BlockCache cache(4);
  std::vector<void*> blocks;
  for (int i = 0; i < 10; ++i) blocks.push_back(cache.allocate(100, 16));
  for (void* b : blocks) cache.deallocate(b, 100, 16);
  EXPECT_EQ(cache.free_blocks(100), 4u);
  EXPECT_EQ(cache.free_blocks(16), 0u);
}

TEST(BlockCache, LargeAndOverAlignedBlocksAreNotCached) {
  BlockCache cache;
  void* big = cache.allocate(BlockCache::kMaxBlock + 1, 8);
  std::memset(big, 1, BlockCache::kMaxBlock + 1);
  cache.deallocate(big, BlockCache::kMaxBlock + 1, 8);
  EXPECT_EQ(cache.free_blocks(BlockCache::kMaxBlock + 1), 0u);
  void* aligned = cache.allocate(64, 64);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(aligned) % 64, 0u);
  cache.deallocate(aligned, 64, 64);
  EXPECT_EQ(cache.free_blocks(64), 0u);
}

TEST(BlockCache, BlocksAreAlignedForAnyTypeUpToItsGranule) {
  BlockCache cache;
  std::vector<void*> blocks;
  for (size_t n = 1; n <= BlockCache::kMaxBlock; n += 7) {
    void* p = cache.allocate(n, alignof(std::max_align_t));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % alignof(std::max_align_t), 0u) << n;
    std::memset(p, 0x5a, n);
    blocks.push_back(p);
  }
  size_t n = 1;
  for (void* p : blocks) {
    cache.deallocate(p, n, alignof(std::max_align_t));
    n += 7;
  }
}

// As the service process uses it: shared objects and a table's entries,
// created and destroyed in batches, reuse the same blocks.
TEST(BlockCache, ServesAllocateSharedAndAPmrTable) {
  BlockCache cache;
  std::pmr::unordered_map<uint64_t, std::shared_ptr<std::vector<int>>> table(&cache);
  const auto kept = [&] {
    size_t n = 0;
    for (size_t bytes = BlockCache::kGranule; bytes <= BlockCache::kMaxBlock;
         bytes += BlockCache::kGranule) {
      n += cache.free_blocks(bytes);
    }
    return n;
  };
  const auto round = [&] {
    for (uint64_t id = 0; id < 200; ++id) {
      table.emplace(id, std::allocate_shared<std::vector<int>>(
                            std::pmr::polymorphic_allocator<std::vector<int>>(&cache), 3, 7));
    }
    for (uint64_t id = 0; id < 200; ++id) EXPECT_EQ(table.at(id)->at(2), 7);
    table.clear();
  };
  round();
  // 200 entries and 200 shared objects came back (and the small bucket
  // arrays the table outgrew).
  const size_t after_first = kept();
  EXPECT_GE(after_first, 400u);
  // The next rounds run on those blocks: nothing new is kept.
  round();
  round();
  EXPECT_EQ(kept(), after_first);
}

#ifdef BLOCK_CACHE_TEST_ASAN
// Compiled in sanitizer builds only (scripts/test --sanitize): a kept block
// stays poisoned but for its link, so a use after free is still caught;
// handed out again, it is whole.
TEST(BlockCache, AKeptBlockIsPoisonedUnderAsan) {
  BlockCache cache;
  char* p = static_cast<char*>(cache.allocate(100, 8));
  p[99] = 1;
  cache.deallocate(p, 100, 8);
  EXPECT_FALSE(__asan_address_is_poisoned(p));  // the free list's link
  EXPECT_TRUE(__asan_address_is_poisoned(p + sizeof(void*)));
  EXPECT_TRUE(__asan_address_is_poisoned(p + 111));
  char* q = static_cast<char*>(cache.allocate(100, 8));
  ASSERT_EQ(q, p);
  EXPECT_EQ(__asan_region_is_poisoned(q, 112), nullptr);
  cache.deallocate(q, 100, 8);
}
#endif

}  // namespace
}  // namespace ringhttpd::worker
