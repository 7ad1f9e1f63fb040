// Segment layout arithmetic, names, the layout check on open, and the
// stale-instance decision.
#include "shm/segment.h"

#include <gtest/gtest.h>
#include <unistd.h>

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
    const_cast<SegmentHeader&>(created->header()).layout_tag ^= 1;
  }
  EXPECT_FALSE(Segment::open(name, error));
  EXPECT_NE(error.find("layout"), std::string::npos);
  Segment::remove(name);
}

TEST(StaleInstance, DeadOrForeignPidsAreStale) {
  EXPECT_TRUE(master::is_stale_instance(false, ""));
  EXPECT_TRUE(master::is_stale_instance(true, "bash"));
  EXPECT_FALSE(master::is_stale_instance(true, "ringhttpd: supe"));
}

}  // namespace
}  // namespace ringhttpd::shm
