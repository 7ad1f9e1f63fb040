// shm::Ring on ordinary memory: framing, empty/full, wrap-around with the
// padding record, and the sleep/wake flags of both sides.
#include "shm/ring.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace ringhttpd::shm {
namespace {

struct TestRing {
  explicit TestRing(uint64_t capacity)
      : memory(static_cast<std::byte*>(std::aligned_alloc(64, sizeof(RingHeader) + capacity))) {
    Ring::init(header(), capacity);
  }
  ~TestRing() { std::free(memory); }
  RingHeader* header() { return reinterpret_cast<RingHeader*>(memory); }
  Ring view() { return Ring(header(), memory + sizeof(RingHeader)); }
  std::byte* memory;
};

std::string payload_of(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7);
  return s;
}

TEST(Ring, EmptyRingHasNothingToPeek) {
  TestRing t(4096);
  Ring consumer = t.view();
  RecordView rec;
  EXPECT_TRUE(consumer.empty());
  EXPECT_FALSE(consumer.peek(rec));
  EXPECT_TRUE(Ring::valid(t.header(), 4096));
  EXPECT_FALSE(Ring::valid(t.header(), 8192));
}

// What the peer writes is input: every impossible position or length makes
// the ring broken for the reader (never a read outside the data area, never
// an abort), until reset() empties it for the peer's replacement. The tail is
// the reader's own: a peer that overwrites it changes nothing for the reader.
TEST(Ring, ImpossiblePositionsOrLengthsBreakTheRingNotTheReader) {
  struct Case {
    const char* what;
    void (*damage)(RingHeader*, std::byte*);
  };
  const Case cases[] = {
      {"head not on a record boundary", [](RingHeader* h, std::byte*) { h->head += 8; }},
      {"head more than the capacity ahead", [](RingHeader* h, std::byte*) { h->head += 8192; }},
      {"head behind the tail", [](RingHeader* h, std::byte*) { h->head = ~uint64_t{0} - 15; }},
      {"record longer than what was published",
       [](RingHeader*, std::byte* data) { reinterpret_cast<RecordHeader*>(data)->length = 64; }},
      {"record longer than the ring",
       [](RingHeader*, std::byte* data) {
         reinterpret_cast<RecordHeader*>(data)->length = 0xfffffff0u;
       }},
      {"capacity changed under the reader",
       [](RingHeader* h, std::byte*) { h->capacity = 1 << 30; }},
  };
  for (const Case& c : cases) {
    TestRing t(4096);
    Ring producer = t.view(), consumer = t.view();
    ASSERT_TRUE(producer.try_push(1, 0, 1, "abc"));
    c.damage(t.header(), t.memory + sizeof(RingHeader));
    RecordView rec;
    for (int i = 0; i < 3 && consumer.peek(rec); ++i) {
      // A damage the reader cannot see (capacity) must still read in bounds.
      EXPECT_LE(rec.payload.size(), 4096u) << c.what;
      consumer.pop();
    }
    if (std::string_view(c.what).starts_with("capacity")) continue;
    EXPECT_TRUE(consumer.broken()) << c.what;
    EXPECT_FALSE(consumer.peek(rec)) << c.what;
    consumer.reset();  // as the survivor does; the peer's replacement starts afresh
    producer.reset();
    EXPECT_FALSE(consumer.broken()) << c.what;
    ASSERT_TRUE(producer.try_push(1, 0, 2, "xyz")) << c.what;
    ASSERT_TRUE(consumer.peek(rec)) << c.what;
    EXPECT_EQ(rec.payload, "xyz") << c.what;
  }
}

// The positions a view starts from were written by the peer (or by whoever
// used the ring last). Misaligned or inconsistent ones make the view broken
// on either side: the producer writes nothing, the consumer reads nothing,
// and not a byte past the data area changes (where the next ring's header
// would be). The reviewer's case: a surviving peer leaves head = tail =
// capacity - 8 for the replacement, whose first push would write 16 bytes
// at data + capacity - 8.
TEST(Ring, ImpossibleStartingPositionsBreakTheViewOnEitherSide) {
  constexpr uint64_t kCapacity = 4096, kGuard = 256;
  struct Case {
    const char* what;
    uint64_t head, tail;
  };
  const Case cases[] = {
      {"both at capacity - 8", kCapacity - 8, kCapacity - 8},
      {"tail misaligned, head a record ahead", kCapacity + 8, kCapacity - 8},
      {"head misaligned", 24, 16},
      {"head more than the capacity ahead", 16 + kCapacity + 16, 16},
      {"head behind the tail", 16, 32},
  };
  for (const Case& c : cases) {
    auto* memory =
        static_cast<std::byte*>(std::aligned_alloc(64, sizeof(RingHeader) + kCapacity + kGuard));
    auto* header = reinterpret_cast<RingHeader*>(memory);
    std::byte* data = memory + sizeof(RingHeader);
    Ring::init(header, kCapacity);
    std::memset(data, 0x11, kCapacity);
    std::memset(data + kCapacity, 0xa5, kGuard);
    header->head = c.head;
    header->tail = c.tail;
    Ring producer(header, data), consumer(header, data);
    EXPECT_TRUE(producer.broken()) << c.what;
    EXPECT_TRUE(consumer.broken()) << c.what;
    EXPECT_FALSE(producer.try_push(1, 0, 42, std::string_view("x"))) << c.what;
    RecordView rec;
    EXPECT_FALSE(consumer.peek(rec)) << c.what;
    EXPECT_TRUE(consumer.prepare_sleep()) << c.what;  // nothing to stay awake for
    EXPECT_TRUE(producer.reader_after_consumer().broken()) << c.what;
    EXPECT_EQ(header->head, c.head) << c.what;
    for (uint64_t i = 0; i < kCapacity; ++i) {
      ASSERT_EQ(data[i], std::byte{0x11}) << c.what << " at " << i;
    }
    for (uint64_t i = 0; i < kGuard; ++i) {
      ASSERT_EQ(data[kCapacity + i], std::byte{0xa5}) << c.what << " past the end " << i;
    }
    // Reset (the peer was replaced) makes the ring usable again.
    producer.reset();
    consumer.reset();
    ASSERT_TRUE(producer.try_push(1, 0, 7, std::string_view("again"))) << c.what;
    ASSERT_TRUE(consumer.peek(rec)) << c.what;
    EXPECT_EQ(rec.payload, "again") << c.what;
    std::free(memory);
  }
}

// Consistent positions a view did not choose are fine: a producer starting
// near the end pads and wraps, within the data area.
TEST(Ring, AlignedStartingPositionsNearTheEndWrapInBounds) {
  TestRing t(4096);
  t.header()->head = t.header()->tail = 4096 - 16;
  Ring producer = t.view(), consumer = t.view();
  EXPECT_FALSE(producer.broken());
  ASSERT_TRUE(producer.try_push(1, 0, 5, std::string_view("wraps")));
  RecordView rec;
  ASSERT_TRUE(consumer.peek(rec));
  EXPECT_EQ(rec.id, 5u);
  EXPECT_EQ(rec.payload, "wraps");
}

// The supervisor zeroes a pair's positions before it forks one end; a live
// peer's sleep flag stays.
TEST(Ring, ResetPositionsKeepsTheWakeFlags) {
  TestRing t(4096);
  Ring consumer = t.view();
  ASSERT_TRUE(consumer.prepare_sleep());
  t.header()->head = t.header()->tail = 4096 - 8;
  t.view().reset_positions();
  EXPECT_EQ(t.header()->head, 0u);
  EXPECT_EQ(t.header()->tail, 0u);
  EXPECT_EQ(t.header()->consumer_sleeping, 1u);
  EXPECT_FALSE(t.view().broken());
}

// After its consumer died, the producer reads what that consumer had not
// taken: exactly the records after the tail it last published.
TEST(Ring, TheProducerReadsWhatADeadConsumerLeft) {
  TestRing t(4096);
  Ring producer = t.view();
  {
    Ring consumer = t.view();
    for (uint64_t id = 1; id <= 3; ++id) ASSERT_TRUE(producer.try_push(1, 0, id, "r"));
    RecordView rec;
    ASSERT_TRUE(consumer.peek(rec));
    consumer.pop();  // took 1; then "died" holding 2 peeked but not popped
    ASSERT_TRUE(consumer.peek(rec));
  }
  Ring reader = producer.reader_after_consumer();
  std::vector<uint64_t> left;
  RecordView rec;
  while (reader.peek(rec)) {
    left.push_back(rec.id);
    reader.pop();
  }
  EXPECT_EQ(left, (std::vector<uint64_t>{2, 3}));
  EXPECT_FALSE(reader.broken());
}

TEST(Ring, RecordRoundTripsTypeFlagsIdAndPayload) {
  TestRing t(4096);
  Ring producer = t.view(), consumer = t.view();
  const std::string parts[] = {"hello, ", "ring"};
  const std::string_view views[] = {parts[0], parts[1]};
  ASSERT_TRUE(producer.try_push(7, 1, 0xabcdef0123ull, views, 2));
  RecordView rec;
  ASSERT_TRUE(consumer.peek(rec));
  EXPECT_EQ(rec.type, 7);
  EXPECT_EQ(rec.flags, 1);
  EXPECT_EQ(rec.id, 0xabcdef0123ull);
  EXPECT_EQ(rec.payload, "hello, ring");
  consumer.pop();
  EXPECT_TRUE(consumer.empty());
  EXPECT_FALSE(consumer.peek(rec));
}

TEST(Ring, EmptyPayloadIsARecord) {
  TestRing t(4096);
  Ring ring = t.view();
  ASSERT_TRUE(ring.try_push(3, 0, 9, std::string_view{}));
  RecordView rec;
  ASSERT_TRUE(ring.peek(rec));
  EXPECT_EQ(rec.type, 3);
  EXPECT_TRUE(rec.payload.empty());
}

TEST(Ring, FullRingRefusesWithoutWritingAndAcceptsAfterPop) {
  TestRing t(4096);
  Ring ring = t.view();
  const std::string p = payload_of(1000, 'a');  // footprint 1024: four fill 4096
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(ring.try_push(1, 0, i, p)) << i;
  EXPECT_EQ(ring.used(), 4096u);
  EXPECT_FALSE(ring.try_push(1, 0, 99, std::string_view("x")));
  EXPECT_EQ(ring.used(), 4096u);
  RecordView rec;
  ASSERT_TRUE(ring.peek(rec));
  EXPECT_EQ(rec.id, 0u);
  ring.pop();
  EXPECT_TRUE(ring.try_push(1, 0, 4, p));
}

// Holding (the network process writes response bodies from the ring): the
// records popped stay readable and unwritable by the producer, padding
// included, until release_held() gives them all back at once.
TEST(Ring, HeldRecordsKeepTheirBytesUntilReleased) {
  TestRing t(4096);
  Ring producer = t.view(), consumer = t.view();
  const std::string p = payload_of(1000, 'a');  // footprint 1024
  RecordView rec;
  // Move the positions so that the next records wrap (padding at the end).
  ASSERT_TRUE(producer.try_push(1, 0, 0, payload_of(1500, 'z')));
  ASSERT_TRUE(consumer.peek(rec));
  consumer.pop();
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(producer.try_push(1, 0, i, p)) << i;
  consumer.hold();
  std::vector<std::string_view> held;
  while (consumer.peek(rec)) {
    held.push_back(rec.payload);
    consumer.pop();
  }
  ASSERT_EQ(held.size(), 3u);
  // Consumed (nothing more to peek) but not released: the producer finds
  // no room, and the bytes are what was sent.
  EXPECT_FALSE(consumer.peek(rec));
  EXPECT_FALSE(producer.try_push(1, 0, 4, p));
  // 1520 bytes consumed and released before holding; then three records
  // (1520..2544..3568), padding to the end (528), the third at 4096..5120.
  EXPECT_EQ(producer.unconsumed(), 5120u - 1520u);
  for (std::string_view v : held) EXPECT_EQ(v, p);
  consumer.release_held();
  EXPECT_EQ(producer.unconsumed(), 0u);
  for (int i = 4; i <= 6; ++i) EXPECT_TRUE(producer.try_push(1, 0, i, p)) << i;
  // Not holding any more: a pop gives its space back at once.
  const uint64_t before = producer.unconsumed();
  ASSERT_TRUE(consumer.peek(rec));
  EXPECT_EQ(rec.id, 4u);
  consumer.pop();
  EXPECT_EQ(producer.unconsumed(), before - 1024u);
}

TEST(Ring, OversizedRecordIsRefused) {
  TestRing t(4096);
  Ring ring = t.view();
  EXPECT_FALSE(ring.try_push(1, 0, 0, payload_of(max_record_payload(4096) + 1, 'x')));
  EXPECT_TRUE(ring.try_push(1, 0, 0, payload_of(max_record_payload(4096), 'x')));
}

TEST(Ring, WrapsAroundWithPaddingAndKeepsOrderAndContent) {
  TestRing t(4096);
  Ring producer = t.view(), consumer = t.view();
  // Sizes chosen so records keep landing near the end of the area.
  uint64_t next_push = 0, next_pop = 0;
  RecordView rec;
  for (int round = 0; round < 2000; ++round) {
    const size_t size = static_cast<size_t>((round * 131) % 1500);
    while (!producer.try_push(2, 0, next_push, payload_of(size, static_cast<char>(next_push)))) {
      ASSERT_TRUE(consumer.peek(rec));
      ASSERT_EQ(rec.id, next_pop);
      const size_t pushed_size = static_cast<size_t>((next_pop * 131) % 1500);
      ASSERT_EQ(rec.payload, payload_of(pushed_size, static_cast<char>(next_pop)));
      consumer.pop();
      ++next_pop;
    }
    ++next_push;
  }
  while (consumer.peek(rec)) {
    ASSERT_EQ(rec.id, next_pop++);
    consumer.pop();
  }
  EXPECT_EQ(next_pop, next_push);
  EXPECT_GT(t.header()->head, 100u * 4096u);  // it really wrapped many times
}

TEST(Ring, RecordExactlyToTheEndNeedsNoPadding) {
  TestRing t(4096);
  Ring ring = t.view();
  RecordView rec;
  ASSERT_TRUE(ring.try_push(1, 0, 1, payload_of(2048 - 16, 'a')));  // footprint 2048
  ASSERT_TRUE(ring.peek(rec));
  ring.pop();
  ASSERT_TRUE(ring.try_push(1, 0, 2, payload_of(2048 - 16, 'b')));  // ends exactly at 4096
  ASSERT_TRUE(ring.try_push(1, 0, 3, payload_of(100, 'c')));        // starts at 0
  ASSERT_TRUE(ring.peek(rec));
  EXPECT_EQ(rec.id, 2u);
  ring.pop();
  ASSERT_TRUE(ring.peek(rec));
  EXPECT_EQ(rec.id, 3u);
  EXPECT_EQ(rec.payload, payload_of(100, 'c'));
}

TEST(Ring, ConsumerSleepFlagIsSeenOnceByTheProducer) {
  TestRing t(4096);
  Ring producer = t.view(), consumer = t.view();
  EXPECT_FALSE(producer.consumer_needs_wake());  // consumer awake
  ASSERT_TRUE(consumer.prepare_sleep());         // empty: may sleep
  ASSERT_TRUE(producer.try_push(1, 0, 1, std::string_view("x")));
  EXPECT_TRUE(producer.consumer_needs_wake());  // must wake it, once
  EXPECT_FALSE(producer.consumer_needs_wake());
}

TEST(Ring, ConsumerDoesNotSleepOnARecordThatArrived) {
  TestRing t(4096);
  Ring producer = t.view(), consumer = t.view();
  ASSERT_TRUE(producer.try_push(1, 0, 1, std::string_view("x")));
  EXPECT_FALSE(consumer.prepare_sleep());
  EXPECT_FALSE(producer.consumer_needs_wake());  // the flag was withdrawn
}

TEST(Ring, CancelSleepStopsWakeups) {
  TestRing t(4096);
  Ring producer = t.view(), consumer = t.view();
  ASSERT_TRUE(consumer.prepare_sleep());
  consumer.cancel_sleep();
  ASSERT_TRUE(producer.try_push(1, 0, 1, std::string_view("x")));
  EXPECT_FALSE(producer.consumer_needs_wake());
}

TEST(Ring, ProducerWaitingForSpaceIsWokenAfterAPop) {
  TestRing t(4096);
  Ring producer = t.view(), consumer = t.view();
  const std::string p = payload_of(2000, 'p');
  ASSERT_TRUE(producer.try_push(1, 0, 1, p));
  ASSERT_TRUE(producer.try_push(1, 0, 2, p));
  ASSERT_FALSE(producer.try_push(1, 0, 3, p));
  EXPECT_TRUE(producer.prepare_producer_wait(p.size()));
  RecordView rec;
  ASSERT_TRUE(consumer.peek(rec));
  consumer.pop();
  EXPECT_TRUE(consumer.producer_needs_wake());
  EXPECT_FALSE(consumer.producer_needs_wake());
  EXPECT_FALSE(producer.prepare_producer_wait(p.size()));  // space now: no wait
}

TEST(Ring, ResetEmptiesTheRing) {
  TestRing t(4096);
  Ring ring = t.view();
  ASSERT_TRUE(ring.try_push(1, 0, 1, std::string_view("abc")));
  ring.reset();
  EXPECT_TRUE(ring.empty());
  RecordView rec;
  EXPECT_FALSE(ring.peek(rec));
}

}  // namespace
}  // namespace ringhttpd::shm
