// A connection's state and activity (worker/connection.h): the one place a
// stop, a drain (handoff) and the timeouts look to decide what to do with a
// connection. The state only moves forward; the activity is derived from the
// parser and the response queue, never stored beside them.
#include <gtest/gtest.h>

#include "worker/connection.h"
#include "worker/network_process.h"

namespace ringhttpd::worker {
namespace {

Connection fresh() { return Connection(1, proto::UniqueFd(), proto::ParserLimits{}); }

TEST(ConnectionState, ActivityFollowsTheParserAndTheOldestResponse) {
  Connection c = fresh();
  EXPECT_EQ(c.activity(), Activity::idle);
  proto::RequestEvents events;
  ASSERT_TRUE(c.parser.feed_events("GET / HTTP/1.1\r\nHo", events));
  EXPECT_EQ(c.activity(), Activity::receiving);  // half a head: not at a boundary
  ASSERT_TRUE(c.parser.feed_events("st: x\r\n\r\n", events));
  EXPECT_EQ(c.activity(), Activity::idle);  // parsed, and nothing queued yet
  ResponseSlot& owed = c.slots.emplace_back();
  owed.request_id = 5;
  EXPECT_EQ(c.activity(), Activity::waiting);  // a service process owes it
  owed.ready = true;
  owed.data = "HTTP/1.1 200 OK\r\n\r\n";
  EXPECT_EQ(c.activity(), Activity::writing);
  c.slots.pop_front();
  EXPECT_EQ(c.activity(), Activity::idle);
}

TEST(ConnectionState, AStreamedResponseIsWritingOnceBytesAreThere) {
  Connection c = fresh();
  ResponseSlot& s = c.slots.emplace_back();
  s.streaming = true;
  EXPECT_EQ(c.activity(), Activity::waiting);  // head not here yet
  s.data = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_EQ(c.activity(), Activity::writing);
  c.sent = s.data.size();  // all written, the rest still owed
  EXPECT_EQ(c.activity(), Activity::waiting);
}

TEST(ConnectionState, InputClosesOnceAndOnlyFromOpen) {
  Connection c = fresh();
  EXPECT_TRUE(c.input_open());
  EXPECT_FALSE(c.finished());
  c.close_input();
  EXPECT_EQ(c.state, ConnState::input_closed);
  EXPECT_FALSE(c.input_open());
  c.close_input();
  EXPECT_EQ(c.state, ConnState::input_closed);
  c.state = ConnState::lingering;
  c.close_input();  // never moves a connection back
  EXPECT_EQ(c.state, ConnState::lingering);
  EXPECT_FALSE(c.finished());
}

TEST(ConnectionState, ClosedAndHandedOverAreFinished) {
  for (ConnState s : {ConnState::closed, ConnState::handed_over}) {
    Connection c = fresh();
    c.state = s;
    EXPECT_TRUE(c.finished());
    EXPECT_FALSE(c.input_open());
    c.close_input();
    EXPECT_EQ(c.state, s);
  }
  for (ConnState s : {ConnState::open, ConnState::input_closed, ConnState::lingering}) {
    Connection c = fresh();
    c.state = s;
    EXPECT_FALSE(c.finished());
  }
}

// A draining or stopping network process ends its loop only with no
// connection and none on its way: a generation that began to drain may
// still hold adopts in its control queue, sent while it served (they were
// lost when it ended on "no connections" before reading them).
TEST(NetworkLoopEnd, WaitsForAdoptsOnTheirWayAndForAdoptsDoneWhenStopping) {
  EXPECT_TRUE(may_end_loop(true, 0, /*draining=*/true, /*adopts_done=*/false));
  EXPECT_FALSE(may_end_loop(true, 2, true, false));  // two adopts still in its queue
  EXPECT_FALSE(may_end_loop(false, 0, true, false));
  EXPECT_FALSE(may_end_loop(true, 0, false, false));  // stopping: no adopts_done yet
  EXPECT_TRUE(may_end_loop(true, 0, false, true));
  EXPECT_FALSE(may_end_loop(true, 1, false, true));
}

}  // namespace
}  // namespace ringhttpd::worker
