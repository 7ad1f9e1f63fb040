// The network process's pool of response slots (worker/connection.h): a
// slot comes back reset, with its buffers' capacity and nothing else of
// the response it carried; the pool and the buffers it keeps are bounded.
#include <gtest/gtest.h>
#include <unistd.h>

#include "worker/connection.h"

namespace ringhttpd::worker {
namespace {

TEST(SlotPool, ASlotComesBackResetWithItsBufferCapacity) {
  SlotPool pool;
  SlotQueue queue;
  queue.set_pool(&pool);
  ResponseSlot& slot = queue.emplace_back();
  slot.data.assign(3000, 'x');
  slot.retry_record.assign(200, 'r');
  slot.request_id = 7;
  slot.ready = true;
  slot.keep_alive = false;
  slot.status = 404;
  slot.access = std::make_unique<AccessInfo>();
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  slot.file = proto::UniqueFd(fds[0]);
  proto::UniqueFd other(fds[1]);
  const ResponseSlot* address = &slot;
  queue.pop_front();
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(pool.size(), 1u);

  ResponseSlot& again = queue.emplace_back();
  EXPECT_EQ(&again, address);  // the same slot, reused
  EXPECT_EQ(pool.size(), 0u);
  EXPECT_TRUE(again.data.empty());
  EXPECT_GE(again.data.capacity(), 3000u);
  EXPECT_TRUE(again.retry_record.empty());
  EXPECT_GE(again.retry_record.capacity(), 200u);
  EXPECT_EQ(again.request_id, 0u);
  EXPECT_FALSE(again.ready);
  EXPECT_TRUE(again.keep_alive);
  EXPECT_EQ(again.status, 0);
  EXPECT_EQ(again.access, nullptr);
  EXPECT_FALSE(again.file);  // its descriptor was closed when it came back
}

TEST(SlotPool, LargeBuffersAreNotKept) {
  SlotPool pool;
  SlotQueue queue;
  queue.set_pool(&pool);
  queue.emplace_back().data.assign(SlotPool::kMaxPooledBuffer + 1, 'x');
  queue.pop_front();
  EXPECT_LT(queue.emplace_back().data.capacity(), SlotPool::kMaxPooledBuffer);
}

TEST(SlotPool, ThePoolIsBounded) {
  SlotPool pool;
  SlotQueue queue;
  queue.set_pool(&pool);
  for (size_t i = 0; i < SlotPool::kMaxPooled + 10; ++i) queue.emplace_back();
  while (!queue.empty()) queue.pop_front();
  EXPECT_EQ(pool.size(), SlotPool::kMaxPooled);
}

TEST(SlotPool, AQueueWithoutAPoolFreesItsSlots) {
  SlotQueue queue;
  queue.emplace_back().data.push_back('x');
  queue.pop_front();
  EXPECT_TRUE(queue.empty());
  EXPECT_TRUE(queue.emplace_back().data.empty());
}

}  // namespace
}  // namespace ringhttpd::worker
