// Segment layout arithmetic, names, the layout check on open, and the
// stale-instance decision.
#include "shm/segment.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <optional>
#include <string>

#include "master/supervisor.h"

namespace ringhttpd::shm {
namespace {

TEST(SegmentLayout, RingsAreAlignedAndDisjoint) {
  const SegmentLayout layout = compute_layout(SegmentSpec{1, 2, {4096, 8192, 4096}});
  ASSERT_EQ(layout.rings.size(), 2u * 3u * 2u);
  uint64_t end = layout.rings_offset;
  for (const RingEntry& e : layout.rings) {
    EXPECT_EQ(e.offset % 64, 0u);
    EXPECT_GE(e.offset, end);
    end = e.offset + sizeof(RingHeader) + e.capacity;
  }
  EXPECT_LE(end, layout.total_bytes);
  EXPECT_EQ(layout.rings[ring_index(3, 1, 1, Direction::response)].capacity, 8192u);
}

TEST(SegmentName, RoundTripsTheInstancePid) {
  EXPECT_EQ(segment_name(4242, 3), "ringhttpd.4242.g3");
  EXPECT_EQ(segment_instance("ringhttpd.4242.g3"), 4242u);
  EXPECT_FALSE(segment_instance("ringhttpd.4242"));
  EXPECT_FALSE(segment_instance("ringhttpd.x.g1"));
  EXPECT_FALSE(segment_instance("ringhttpd.12.g"));
  EXPECT_FALSE(segment_instance("other.12.g1"));
}

TEST(Segment, CreateOpenCheckAndRemove) {
  const std::string name = "ringhttpd-test." + std::to_string(::getpid()) + ".seg";
  std::string error;
  auto created = Segment::create(name, SegmentSpec{5, 1, {4096}}, error);
  ASSERT_TRUE(created) << error;
  Ring producer = created->ring(0, 0, Direction::request);
  ASSERT_TRUE(producer.try_push(1, 0, 77, std::string_view("through the segment")));
  auto opened = Segment::open(name, error);
  ASSERT_TRUE(opened) << error;
  EXPECT_EQ(opened->header().generation, 5u);
  EXPECT_EQ(opened->slot_count(), 2u);
  Ring consumer = opened->ring(0, 0, Direction::request);
  RecordView rec;
  ASSERT_TRUE(consumer.peek(rec));
  EXPECT_EQ(rec.id, 77u);
  EXPECT_EQ(rec.payload, "through the segment");
  EXPECT_FALSE(Segment::create(name, SegmentSpec{5, 1, {4096}}, error));  // exists
  EXPECT_TRUE(Segment::remove(name));
  EXPECT_FALSE(Segment::remove(name));
  EXPECT_FALSE(Segment::open(name, error));
}

TEST(Segment, OpenRefusesAnotherLayout) {
  const std::string name = "ringhttpd-test." + std::to_string(::getpid()) + ".bad";
  std::string error;
  {
    auto created = Segment::create(name, SegmentSpec{1, 1, {4096}}, error);
    ASSERT_TRUE(created) << error;
    // Simulate a segment written by another build.
    created->header_for_writer().layout_tag ^= 1;
  }
  EXPECT_FALSE(Segment::open(name, error));
  EXPECT_NE(error.find("layout"), std::string::npos);
  Segment::remove(name);
}

// A segment with a unique name, removed at the end of the test.
struct NamedSegment {
  explicit NamedSegment(const std::string& tag, const SegmentSpec& spec) {
    name = "ringhttpd-test." + std::to_string(::getpid()) + "." + tag;
    Segment::remove(name);
    std::string error;
    segment = Segment::create(name, spec, error);
    EXPECT_TRUE(segment) << error;
  }
  ~NamedSegment() { Segment::remove(name); }
  std::string name;
  std::optional<Segment> segment;
};

// What a misbehaving child can write: every layout field of the shared
// header, and the ring table. (0x100000000000 is the reviewer's value that
// made the supervisor fault in ring_used.)
void corrupt_layout(Segment& seg) {
  SegmentHeader& h = seg.header_for_writer();
  const uint64_t rings_offset = h.rings_offset;
  auto* table = reinterpret_cast<RingEntry*>(reinterpret_cast<std::byte*>(&h) + rings_offset);
  table[0].offset = 0x100000000000ull;
  table[1].capacity = 3;
  h.n_network = 0xffffffffu;
  h.n_service = 0xffffffffu;
  h.n_routes = 0xffffffffu;
  h.slots_offset = 1ull << 44;
  h.rings_offset = 1ull << 44;
  h.routes_offset = 1ull << 44;
  h.total_bytes = 1ull << 44;
}

// The accessors use the copy taken at create(), so rewriting the shared
// layout afterwards moves nothing: same slots, same rings, same counts.
TEST(Segment, AccessorsIgnoreALayoutRewrittenInSharedMemory) {
  NamedSegment named("private", SegmentSpec{3, 2, {4096, 8192}, 4});
  ASSERT_TRUE(named.segment);
  Segment& seg = *named.segment;
  ProcessSlot* slot3 = &seg.slot(3);
  uint64_t* route = seg.route_counters(1, 3);
  RingHeader* ring_header = seg.ring(1, 1, Direction::response).header_for_tests();
  Ring producer = seg.ring(0, 0, Direction::request);
  ASSERT_TRUE(producer.try_push(1, 0, 9, std::string_view("queued")));
  const uint64_t used = seg.ring_used(0, 0, Direction::request);
  EXPECT_GT(used, 0u);

  corrupt_layout(seg);

  EXPECT_EQ(seg.header().n_network, 2u);
  EXPECT_EQ(seg.header().n_service, 2u);
  EXPECT_EQ(seg.header().n_routes, 4u);
  EXPECT_EQ(seg.header().generation, 3u);
  EXPECT_EQ(seg.slot_count(), 4u);
  EXPECT_EQ(&seg.slot(3), slot3);
  EXPECT_EQ(seg.route_counters(1, 3), route);
  EXPECT_EQ(seg.ring(1, 1, Direction::response).header_for_tests(), ring_header);
  EXPECT_EQ(seg.ring_used(0, 0, Direction::request), used);
  EXPECT_EQ(seg.ring_used(7, 0, Direction::request), 0u);  // no such ring
  Ring consumer = seg.ring(0, 0, Direction::request);
  EXPECT_EQ(consumer.capacity(), 4096u);
  RecordView rec;
  ASSERT_TRUE(consumer.peek(rec));
  EXPECT_EQ(rec.payload, "queued");
  std::string error;
  EXPECT_TRUE(seg.verify(error)) << error;  // a forked child's check: its own copy
  EXPECT_TRUE(seg.verify_for(ProcessRole::service, 1, error)) << error;
  EXPECT_FALSE(seg.verify_for(ProcessRole::service, 2, error));
}

// open() reads the layout once and refuses one create() would not have made,
// whatever field is wrong; it never reads outside the mapping.
TEST(Segment, OpenRefusesAnImpossibleLayout) {
  struct Case {
    const char* what;
    void (*damage)(SegmentHeader& h, RingEntry* table);
  };
  const Case cases[] = {
      {"n_service huge", [](SegmentHeader& h, RingEntry*) { h.n_service = 0xffffffffu; }},
      {"n_network huge", [](SegmentHeader& h, RingEntry*) { h.n_network = 0xffffffffu; }},
      {"n_routes huge", [](SegmentHeader& h, RingEntry*) { h.n_routes = 0xffffffffu; }},
      {"n_service one more", [](SegmentHeader& h, RingEntry*) { h.n_service += 1; }},
      {"slots_offset huge", [](SegmentHeader& h, RingEntry*) { h.slots_offset = 1ull << 44; }},
      {"rings_offset huge", [](SegmentHeader& h, RingEntry*) { h.rings_offset = ~0ull - 8; }},
      {"routes_offset moved", [](SegmentHeader& h, RingEntry*) { h.routes_offset += 64; }},
      {"total_bytes past the mapping", [](SegmentHeader& h, RingEntry*) { h.total_bytes *= 2; }},
      {"ring offset huge", [](SegmentHeader&, RingEntry* t) { t[0].offset = 0x100000000000ull; }},
      {"ring offset misaligned", [](SegmentHeader&, RingEntry* t) { t[2].offset += 8; }},
      {"ring capacity not a power of two",
       [](SegmentHeader&, RingEntry* t) { t[1].capacity = 5000; }},
      {"ring capacity huge", [](SegmentHeader&, RingEntry* t) { t[3].capacity = 1ull << 62; }},
      {"rings of one service differ", [](SegmentHeader&, RingEntry* t) { t[3].capacity = 8192; }},
  };
  for (const Case& c : cases) {
    NamedSegment named("layout", SegmentSpec{1, 2, {4096, 4096}, 2});
    ASSERT_TRUE(named.segment);
    SegmentHeader& h = named.segment->header_for_writer();
    auto* table = reinterpret_cast<RingEntry*>(reinterpret_cast<std::byte*>(&h) + h.rings_offset);
    c.damage(h, table);
    std::string error;
    EXPECT_FALSE(Segment::open(named.name, error)) << c.what;
    EXPECT_FALSE(error.empty()) << c.what;
  }
  // Untouched, it opens.
  NamedSegment named("layout-ok", SegmentSpec{1, 2, {4096, 4096}, 2});
  std::string error;
  auto opened = Segment::open(named.name, error);
  ASSERT_TRUE(opened) << error;
  EXPECT_EQ(opened->header().n_routes, 2u);
  // Once open, it too keeps its copy.
  corrupt_layout(*named.segment);
  EXPECT_EQ(opened->slot_count(), 4u);
  EXPECT_EQ(opened->ring(1, 1, Direction::request).capacity(), 4096u);
}

// A ring whose positions the other end left impossible is broken for a view
// made through the segment too (a replacement process's first view).
TEST(Segment, ARingViewOnImpossiblePositionsIsBroken) {
  NamedSegment named("positions", SegmentSpec{1, 1, {4096}});
  ASSERT_TRUE(named.segment);
  RingHeader* h = named.segment->ring(0, 0, Direction::request).header_for_tests();
  h->head = h->tail = 4096 - 8;
  Ring producer = named.segment->ring(0, 0, Direction::request);
  EXPECT_TRUE(producer.broken());
  EXPECT_FALSE(producer.try_push(1, 0, 1, std::string_view("x")));
  EXPECT_EQ(named.segment->ring_used(0, 0, Direction::request), 0u);
}

TEST(StaleInstance, DeadOrForeignPidsAreStale) {
  EXPECT_TRUE(master::is_stale_instance(false, ""));
  EXPECT_TRUE(master::is_stale_instance(true, "bash"));
  EXPECT_FALSE(master::is_stale_instance(true, "ringhttpd: supe"));
}

}  // namespace
}  // namespace ringhttpd::shm
