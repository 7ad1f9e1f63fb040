// The one channel both processes use (worker/ring_channel.h), on ordinary
// memory with real eventfds and no processes: framing into pieces, a head
// that is sent whole or not at all, queueing, one wake-up per flush and only
// for a sleeping peer, taking back what a dead peer never read, and a broken
// ring reported once.
#include "worker/ring_channel.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <bit>
#include <cstdlib>
#include <string>
#include <vector>

#include "proto/http_parser.h"
#include "proto/ring_codec.h"
#include "proto/unique_fd.h"

namespace ringhttpd::worker {
namespace {

using shm::Ring;
using shm::RingHeader;

struct Memory {
  explicit Memory(uint64_t capacity)
      : bytes(static_cast<std::byte*>(std::aligned_alloc(64, sizeof(RingHeader) + capacity))) {
    Ring::init(header(), capacity);
  }
  ~Memory() { std::free(bytes); }
  RingHeader* header() { return reinterpret_cast<RingHeader*>(bytes); }
  Ring view() { return Ring(header(), bytes + sizeof(RingHeader)); }
  std::byte* bytes;
};

// A network side and a service side joined by two rings, each with the
// other's eventfd.
struct Pair {
  explicit Pair(uint64_t capacity) : requests(capacity), responses(capacity) {}
  Memory requests, responses;
  proto::UniqueFd network_wake{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
  proto::UniqueFd service_wake{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
  RingChannel network{requests.view(), responses.view(), service_wake.get()};
  RingChannel service{responses.view(), requests.view(), network_wake.get()};
};

uint64_t wakes(int fd) {
  uint64_t n = 0;
  return ::read(fd, &n, sizeof n) == sizeof n ? n : 0;
}

// Reads one whole message: the head payload (head + first piece) and the
// body pieces, checking the types and that only the last carries the end.
std::string receive_message(RingChannel& ch, uint64_t id) {
  std::string all;
  shm::RecordView rec;
  bool first = true;
  while (ch.next(rec)) {
    EXPECT_EQ(rec.id, id);
    EXPECT_EQ(rec.type, first ? proto::kRequestHead : proto::kRequestBody);
    first = false;
    all.append(rec.payload);
    const bool end = rec.flags & proto::kRecordEnd;
    ch.release();
    if (end) return all;
  }
  ADD_FAILURE() << "message not complete";
  return all;
}

TEST(RingChannel, ALargeBodyTravelsInPiecesAndArrivesWhole) {
  Pair p(1 << 20);
  std::string body(300000, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  ASSERT_TRUE(p.network.try_send(proto::kRequestHead, proto::kRequestBody, 7, "HEAD", body));
  p.network.flush();
  EXPECT_EQ(receive_message(p.service, 7), "HEAD" + body);
}

TEST(RingChannel, AHeadIsSentWholeOrNotAtAllAndTheRestQueues) {
  Pair p(4096);
  const std::string head(100, 'h');
  int sent = 0;
  while (p.network.try_send(proto::kRequestHead, proto::kRequestBody, 1, head, "")) ++sent;
  EXPECT_GT(sent, 10);
  EXPECT_LT(sent, 4096 / 100);
  // A head larger than the ring could ever carry is refused by send() too.
  EXPECT_FALSE(
      p.service.send(proto::kResponseHead, proto::kResponseBody, 1, std::string(4096, 'x'), ""));
  // send() queues what does not fit; it goes as the reader makes room.
  const std::string body(10000, 'b');
  ASSERT_TRUE(p.service.send(proto::kResponseHead, proto::kResponseBody, 2, "H", body));
  std::string got;
  shm::RecordView rec;
  for (int round = 0; round < 100 && got.size() < 1 + body.size(); ++round) {
    p.service.flush();
    while (p.network.next(rec)) {
      got.append(rec.payload);
      p.network.release();
    }
    p.network.finish_receiving();
  }
  EXPECT_EQ(got, "H" + body);
}

TEST(RingChannel, APeerIsWokenOncePerFlushAndOnlyWhenItSleeps) {
  Pair p(1 << 16);
  ASSERT_TRUE(p.service.prepare_sleep());  // the service goes to sleep
  for (uint64_t id = 1; id <= 5; ++id) {
    ASSERT_TRUE(p.network.try_send(proto::kRequestHead, proto::kRequestBody, id, "h", "b"));
  }
  p.network.flush();
  EXPECT_EQ(wakes(p.service_wake.get()), 1u);
  p.network.flush();  // nothing new
  EXPECT_EQ(wakes(p.service_wake.get()), 0u);
  // Awake (not announced): no eventfd write at all.
  p.service.cancel_sleep();
  ASSERT_TRUE(p.network.try_send(proto::kRequestHead, proto::kRequestBody, 6, "h", "b"));
  p.network.flush();
  EXPECT_EQ(wakes(p.service_wake.get()), 0u);
}

TEST(RingChannel, TakingBackWhatADeadReaderNeverRead) {
  Pair p(4096);
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(p.network.try_send(proto::kRequestHead, proto::kRequestBody, id, "head", "x"));
  }
  shm::RecordView rec;
  ASSERT_TRUE(p.service.next(rec));
  p.service.release();  // took 1, then "died"
  // Queue more than fits, so some are only in the local queue.
  for (uint64_t id = 4; id <= 80; ++id) {
    p.network.send_record(proto::kRequestHead, proto::kRecordEnd, id, std::string(100, 'q'));
  }
  const std::vector<HeldRecord> back = p.network.take_back_unread();
  ASSERT_EQ(back.size(), 79u);
  for (size_t i = 0; i < back.size(); ++i) EXPECT_EQ(back[i].id, i + 2);
  // Both rings are empty now, for the replacement.
  RingChannel replacement(p.responses.view(), p.requests.view(), p.network_wake.get());
  EXPECT_FALSE(replacement.next(rec));
}

TEST(RingChannel, ABrokenRingIsReportedOnceAndReadNoMore) {
  Pair p(4096);
  ASSERT_TRUE(p.network.try_send(proto::kRequestHead, proto::kRequestBody, 1, "h", ""));
  p.requests.header()->head += 8;  // the writer went wrong
  shm::RecordView rec;
  EXPECT_FALSE(p.service.next(rec));
  EXPECT_TRUE(p.service.finish_receiving());
  EXPECT_FALSE(p.service.next(rec));
  EXPECT_FALSE(p.service.finish_receiving());  // once
  int heads = 0;
  p.service.discard_incoming([&](const shm::RecordView&) { ++heads; });
  EXPECT_EQ(heads, 0);  // nothing trusted from a broken ring
  p.network.reset();
  ASSERT_TRUE(p.network.try_send(proto::kRequestHead, proto::kRequestBody, 2, "h", ""));
  ASSERT_TRUE(p.service.next(rec));
  EXPECT_EQ(rec.id, 2u);
}

// A side that starts on an outgoing ring whose positions the peer left
// impossible (not record-aligned) writes nothing into it and reports the
// peer once, through the same path as a broken incoming ring.
TEST(RingChannel, AnOutgoingRingWithImpossiblePositionsIsReportedAndNotWritten) {
  Memory requests(4096), responses(4096);
  requests.header()->head = requests.header()->tail = 4096 - 8;  // the peer's doing
  proto::UniqueFd wake{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
  RingChannel network(requests.view(), responses.view(), wake.get());
  EXPECT_FALSE(network.try_send(proto::kRequestHead, proto::kRequestBody, 1, "h", ""));
  network.send_record(proto::kRequestHead, proto::kRecordEnd, 2, "queued, never written");
  network.flush();
  EXPECT_EQ(requests.header()->head, 4096u - 8);
  EXPECT_TRUE(network.finish_receiving());
  EXPECT_FALSE(network.finish_receiving());  // once
  // The peer is replaced: nothing of it is taken back, the rings start
  // afresh.
  EXPECT_EQ(network.take_back_unread().size(), 1u);  // only the local queue
  EXPECT_TRUE(network.try_send(proto::kRequestHead, proto::kRequestBody, 3, "h", ""));
  EXPECT_EQ(requests.header()->head % shm::kRecordAlign, 0u);
}

// Streaming: a head whose body is still coming carries no end flag; the
// pieces that follow do, on the last one only (an empty record when the
// body ends without more bytes).
TEST(RingChannel, AMessageCanBeSentBeforeItsBodyHasArrived) {
  Pair p(1 << 16);
  const std::string_view first[] = {"ab", "cd"};
  ASSERT_TRUE(
      p.network.try_send_message(proto::kRequestHead, proto::kRequestBody, 3, "H", first, false));
  shm::RecordView rec;
  ASSERT_TRUE(p.service.next(rec));
  EXPECT_EQ(rec.type, proto::kRequestHead);
  EXPECT_EQ(rec.payload, "Habcd");  // the pieces joined into the head record
  EXPECT_EQ(rec.flags & proto::kRecordEnd, 0);
  p.service.release();
  const std::string_view more[] = {"ef", "", "gh"};
  p.network.send_pieces(proto::kRequestBody, 3, more, false);
  p.network.send_pieces(proto::kRequestBody, 3, {}, true);
  std::string body;
  int ends = 0;
  while (p.service.next(rec)) {
    EXPECT_EQ(rec.type, proto::kRequestBody);
    body.append(rec.payload);
    ends += (rec.flags & proto::kRecordEnd) ? 1 : 0;
    if (rec.flags & proto::kRecordEnd) {
      EXPECT_TRUE(rec.payload.empty());
    }
    p.service.release();
  }
  EXPECT_EQ(body, "efgh");
  EXPECT_EQ(ends, 1);
}

// Body records fill the ring only to half: heads and credits still find
// room beside a large transfer (and go ahead of the queued body records).
TEST(RingChannel, BodyRecordsLeaveHalfTheRingForHeadsAndCredits) {
  Pair p(1 << 16);
  const std::string piece(4096, 'p');
  for (int i = 0; i < 32; ++i) {  // 128 KiB of body: twice the ring
    const std::string_view one[] = {piece};
    p.network.send_pieces(proto::kRequestBody, 1, one, false);
  }
  EXPECT_LE(p.requests.view().used(), (uint64_t{1} << 16) / 2);
  EXPECT_GT(p.network.queued_bytes(), 0u);
  // A new message's head goes in now, past the queued body.
  const std::string_view none[] = {""};
  EXPECT_TRUE(
      p.network.try_send_message(proto::kRequestHead, proto::kRequestBody, 2, "H2", none, true));
  p.network.send_control(proto::kCredit, 9, proto::encode_credit(100));
  // The reader sees them all, and the queue drains as it reads.
  uint64_t body = 0;
  bool head = false, credit = false;
  shm::RecordView rec;
  for (int round = 0; round < 100 && body < 32 * piece.size(); ++round) {
    p.network.flush();
    while (p.service.next(rec)) {
      if (rec.type == proto::kRequestBody) body += rec.payload.size();
      head |= rec.type == proto::kRequestHead && rec.id == 2;
      credit |= rec.type == proto::kCredit && rec.id == 9;
      p.service.release();
    }
    p.service.finish_receiving();
    EXPECT_LE(p.requests.view().used(), (uint64_t{1} << 16) / 2 + 64);
  }
  EXPECT_EQ(body, 32 * piece.size());
  EXPECT_TRUE(head);
  EXPECT_TRUE(credit);
  EXPECT_EQ(p.network.queued_bytes(), 0u);
}

// ---- what a ring of ring_bytes can take: the config check's arithmetic ----

// A head record carries at most ring_bytes / 2 - 16 bytes, the largest head
// included: one of exactly that size goes into an empty ring (a body would
// follow in body records), one byte more never does, whatever the ring holds.
TEST(RingChannel, AHeadAsLargeAsTheLargestRecordGoesIntoAnEmptyRing) {
  Pair p(4096);
  EXPECT_EQ(max_head_bytes(4096), 4096u / 2 - 16);
  EXPECT_EQ(p.network.max_head(), max_head_bytes(4096));
  const std::string head(max_head_bytes(4096), 'h');
  EXPECT_FALSE(p.network.try_send(proto::kRequestHead, proto::kRequestBody, 1, head + "h", ""));
  ASSERT_TRUE(p.network.try_send(proto::kRequestHead, proto::kRequestBody, 2, head, ""));
  p.network.flush();
  EXPECT_EQ(receive_message(p.service, 2), head);
}

// The 431-or-503 decision of a network process whose pool took no head
// (NetworkProcess::dispatch): a head that fits an empty ring is refused only
// because the ring is busy now (503, Retry-After); one that does not is
// refused for its size, for good (431).
TEST(RingChannel, AHeadThatCanNeverFitIsToldFromARingThatIsOnlyBusy) {
  Pair p(8192);
  const std::string head(1000, 'h');
  while (p.network.try_send(proto::kRequestHead, proto::kRequestBody, 1, head, "")) {
  }
  EXPECT_TRUE(head_ever_fits(head.size(), p.network.capacity()));  // busy: 503
  const std::string huge(max_head_bytes(8192) + 1, 'h');
  EXPECT_FALSE(head_ever_fits(huge.size(), p.network.capacity()));  // never: 431
  EXPECT_TRUE(head_ever_fits(huge.size() - 1, p.network.capacity()));
  // Emptied, the ring takes the head it was too busy for, never the other.
  shm::RecordView rec;
  while (p.service.next(rec)) p.service.release();
  p.service.finish_receiving();
  EXPECT_FALSE(p.network.try_send(proto::kRequestHead, proto::kRequestBody, 3, huge, ""));
  EXPECT_TRUE(p.network.try_send(proto::kRequestHead, proto::kRequestBody, 4, head, ""));
}

// min_ring_bytes is the smallest power of two whose head record holds
// proto::max_request_head_bytes: the ring of exactly 2 x (bound + 16) bytes
// would hold it, one byte less would not, and neither does half the minimum.
TEST(RingChannel, MinRingBytesIsTheSmallestPowerOfTwoThatHoldsTheLargestHead) {
  for (const uint64_t max : {1024u, 1027u, 3000u, 4096u, 16384u, 100000u, 1048576u}) {
    const uint64_t bound = proto::max_request_head_bytes(max);
    const uint64_t exact = 2 * (bound + 16);
    EXPECT_TRUE(head_ever_fits(bound, exact)) << max;
    EXPECT_FALSE(head_ever_fits(bound, exact - 1)) << max;
    const uint64_t ring = min_ring_bytes(max);
    EXPECT_TRUE(std::has_single_bit(ring)) << max;
    EXPECT_GE(ring, shm::kMinRingBytes) << max;
    EXPECT_TRUE(head_ever_fits(bound, ring)) << max;
    EXPECT_FALSE(head_ever_fits(bound, ring / 2)) << max;
  }
  // 2.25 x max_header_bytes + 90, twice, plus 32: over 4 x, and 8 x for a
  // power of two (the default 16384 needs 131072; 4 x was 65536).
  EXPECT_EQ(min_ring_bytes(16384), 131072u);
  EXPECT_EQ(min_ring_bytes(1024), 8192u);
  EXPECT_EQ(min_ring_bytes(1048576), 8u << 20);
  EXPECT_EQ(min_ring_bytes(3000), 16384u);  // 2 x (3000 + 90 + 5 x 746 + 16) = 13672
}

// The worst head the parser accepts under max_header_bytes (its shortest
// header lines, the longest client text) goes whole into an empty ring of
// the minimum size and arrives as it was sent; the tester's request too.
TEST(RingChannel, TheLargestAcceptedHeadGoesThroughARingOfTheMinimumSize) {
  for (const uint32_t max : {1024u, 16384u}) {
    std::string text = "GET / HTTP/1.1\r\nHost: a\r\n";
    while (text.size() + 4 + 2 <= max) text += "a:\r\n";
    text.insert(5, std::string(max - 2 - text.size(), 't'));  // the rest into the target
    text += "\r\n";
    ASSERT_EQ(text.size(), max);
    proto::ParserLimits limits;
    limits.max_header_bytes = max;
    proto::RequestParser parser(limits);
    std::vector<proto::HttpRequest> requests;
    ASSERT_TRUE(parser.feed(text, requests));
    ASSERT_EQ(requests.size(), 1u);
    const proto::RequestOrigin origin{1, 2, 3, std::string(proto::kMaxClientText, '9')};
    proto::RequestHeadParts parts;
    ASSERT_TRUE(parts.build(requests[0], origin, 0));
    EXPECT_LE(parts.size(), proto::max_request_head_bytes(max));

    Pair p(min_ring_bytes(max));
    const std::string_view none[] = {""};
    ASSERT_TRUE(p.network.try_send_parts(proto::kRequestHead, proto::kRequestBody, 5, parts.parts(),
                                         parts.size(), none, true))
        << max;
    p.network.flush();
    std::string sent;
    parts.append_to(sent);
    EXPECT_EQ(receive_message(p.service, 5), sent);
    // Half that ring (4 x max_header_bytes, the old minimum) never takes it.
    EXPECT_FALSE(head_ever_fits(parts.size(), min_ring_bytes(max) / 2)) << max;
  }
}

TEST(RingCodec, CreditsAreEightBytesAndNeverZero) {
  uint64_t n = 0;
  EXPECT_TRUE(proto::decode_credit(proto::encode_credit(65536), n));
  EXPECT_EQ(n, 65536u);
  EXPECT_FALSE(proto::decode_credit(proto::encode_credit(0), n));
  EXPECT_FALSE(proto::decode_credit("1234567", n));
  EXPECT_FALSE(proto::decode_credit("123456789", n));
}

}  // namespace
}  // namespace ringhttpd::worker
