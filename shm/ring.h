// A single-producer single-consumer byte ring in shared memory, carrying
// variable-length records. It owns the record framing and the wake-up
// protocol; it knows nothing about processes, eventfds or HTTP. Two processes
// share one RingHeader and its data area; each side holds its own Ring view.
//
// Layout of one ring (RingHeader, then `capacity` bytes of data):
//
//   +--------------------------- 64 ------------------------------+
//   | magic | capacity | (reserved)                                |  line 0: fixed at init
//   +--------------------------------------------------------------+
//   | head: u64, written by the producer (release)                 |  line 1
//   | producer_waiting: u32, set by the producer when full         |
//   +--------------------------------------------------------------+
//   | tail: u64, written by the consumer (release)                 |  line 2
//   | consumer_sleeping: u32, set by the consumer before it sleeps |
//   +--------------------------------------------------------------+
//   | data[capacity] ...                                           |
//
// head and tail are ever-increasing 64-bit byte positions (they never wrap in
// practice); a position p lives at data[p & (capacity - 1)]. Every record
// starts on a 16-byte boundary with a 16-byte RecordHeader:
//
//   +----------+--------+--------+------------------+-------------+
//   | length32 | type16 | flags16|   request id 64  | payload ... | pad to 16
//   +----------+--------+--------+------------------+-------------+
//
// A record never straddles the end of the data area: when it would, the
// producer first writes a Padding record covering the rest of the area (the
// alignment guarantees at least a header's worth of room for it). The
// producer writes the record bytes, then publishes them with a release store
// of head; the consumer reads head with acquire, so a record is never seen
// half written.
//
// Wake-ups (no lost wake-up, no syscall per record under load):
//   consumer: set consumer_sleeping = 1; full fence; re-check the ring; sleep
//             only if still empty.
//   producer: publish records; full fence; if consumer_sleeping, clear it and
//             wake the consumer (the caller writes its eventfd).
// The same protocol runs the other way for a producer waiting for space
// (producer_waiting, cleared and signalled by the consumer after it frees).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace ringhttpd::shm {

inline constexpr uint64_t kRingMagic = 0x52494e4731000001ull;  // "RING1" + version
inline constexpr uint32_t kRecordAlign = 16;
inline constexpr uint64_t kMinRingBytes = 4096;

struct RingHeader {
  uint64_t magic;
  uint64_t capacity;  // bytes of data, a power of two
  uint8_t reserved0[48];
  alignas(64) uint64_t head;
  uint32_t producer_waiting;
  uint8_t reserved1[52];
  alignas(64) uint64_t tail;
  uint32_t consumer_sleeping;
  uint8_t reserved2[52];
};
static_assert(sizeof(RingHeader) == 192);
static_assert(std::is_trivially_copyable_v<RingHeader>);
static_assert(std::is_standard_layout_v<RingHeader>);
static_assert(offsetof(RingHeader, head) == 64 && offsetof(RingHeader, tail) == 128);

struct RecordHeader {
  uint32_t length;  // payload bytes (the header and padding not counted)
  uint16_t type;    // RecordType, or an application value
  uint16_t flags;   // RecordFlags
  uint64_t id;      // request id
};
static_assert(sizeof(RecordHeader) == 16);
static_assert(std::is_trivially_copyable_v<RecordHeader>);

// Type 0 is reserved for the ring's own padding; users start at 1.
inline constexpr uint16_t kPaddingRecord = 0;

// Bytes a record with `payload` bytes takes in the ring.
constexpr uint64_t record_footprint(uint64_t payload) {
  return (sizeof(RecordHeader) + payload + kRecordAlign - 1) & ~uint64_t{kRecordAlign - 1};
}

// Largest payload a ring of `capacity` bytes can ever carry in one record.
constexpr uint64_t max_record_payload(uint64_t capacity) {
  return capacity / 2 - sizeof(RecordHeader);
}

// One record seen by the consumer; `payload` points into the ring and stays
// valid until pop().
struct RecordView {
  uint16_t type = 0;
  uint16_t flags = 0;
  uint64_t id = 0;
  std::string_view payload;
};

// A view of one ring, used by exactly one producer or one consumer.
class Ring {
 public:
  Ring() = default;
  // The capacity is read once, here (after the segment was verified): the
  // header lives in memory the peer can write, so a later change to it must
  // not move this process's reads or writes outside the data area.
  // Likewise each side keeps its own position (the producer its head, the
  // consumer its tail) and only publishes it: a peer that overwrites it in
  // shared memory cannot make this side write or read out of place.
  // The positions it starts from are the peer's word, so they are checked:
  // a head or tail that is not record-aligned, or a head more than the
  // capacity ahead of the tail (or behind it), makes the view broken() from
  // the start, on either side; nothing is written to or read from it until
  // reset().
  Ring(RingHeader* header, std::byte* data);
  // The same with the capacity from the caller's own (private) copy of the
  // ring table rather than from the shared header (Segment::ring()).
  Ring(RingHeader* header, std::byte* data, uint64_t capacity);

  // Formats an empty ring over `capacity` bytes (a power of two >= 4096).
  static void init(RingHeader* header, uint64_t capacity);
  // True when the header looks like one init() wrote for this capacity.
  static bool valid(const RingHeader* header, uint64_t capacity);

  uint64_t capacity() const { return capacity_; }
  // Bytes published and not yet consumed (either side may ask).
  uint64_t used() const;
  bool empty() const { return used() == 0; }

  // ---- producer side ----
  // Bytes this producer published that the consumer has not freed yet.
  uint64_t unconsumed() const;
  // Appends one record whose payload is the concatenation of `parts` and
  // publishes it. Returns false (writing nothing) when it does not fit now.
  bool try_push(uint16_t type, uint16_t flags, uint64_t id, const std::string_view* parts,
                size_t n_parts);
  bool try_push(uint16_t type, uint16_t flags, uint64_t id, std::string_view payload) {
    return try_push(type, flags, id, &payload, 1);
  }
  // After publishing: true when the consumer announced it sleeps (the flag is
  // cleared; the caller must wake it). Call once per batch, not per record.
  bool consumer_needs_wake();
  // A hint, read without a fence: the consumer announced it sleeps (or is
  // about to). Only for choosing where to send; consumer_needs_wake()
  // decides the wake-up itself.
  bool consumer_asleep() const;
  // The producer found the ring full: announce it. Returns false when space
  // appeared meanwhile (do not sleep on it; retry now).
  bool prepare_producer_wait(uint64_t need_payload);
  // The same for a producer that waits until at most `max_used` bytes are
  // published and unconsumed (it keeps part of the ring for other records).
  bool prepare_producer_wait_until(uint64_t max_used);

  // ---- consumer side ----
  // The next record, or false when the ring is empty or broken. Skips
  // padding. Positions and lengths come from the peer and are checked: a
  // ring whose head or record lengths do not fit is broken (see broken()),
  // never read past.
  bool peek(RecordView& out);
  // The peer wrote something impossible; nothing more is read from (or, on
  // the producer side, written to) this ring until reset(). The caller
  // reports the peer (it gets replaced).
  bool broken() const { return broken_; }
  // Releases the record returned by the last peek(): its space goes back to
  // the producer at once, or, while holding, at release_held().
  void pop();
  // Holding: popped records are consumed (peek() moves on) but their bytes
  // stay where they are, unreusable by the producer, until release_held().
  // A consumer may then keep views into several records at once (the
  // network process writes response bodies from the ring to the socket).
  void hold() { holding_ = true; }
  // Gives back every record popped while holding, and stops holding. Call it
  // before producer_needs_wake(): a producer waiting for space wants it.
  void release_held();
  // Announces the consumer goes to sleep. Returns false when a record arrived
  // meanwhile (the flag is withdrawn; do not sleep).
  bool prepare_sleep();
  // Withdraws the announcement after waking for another reason, so producers
  // stop paying for wake-ups the consumer does not need.
  void cancel_sleep();
  // After consuming: true when the producer announced it waits for space
  // (the flag is cleared; the caller must wake it).
  bool producer_needs_wake();

  // The producer's way to read what its dead consumer left: a copy of this
  // view that reads from the tail that consumer last published (checked like
  // any position the peer wrote; see broken()).
  Ring reader_after_consumer() const;

  // The shared header, for tests that play a misbehaving peer.
  RingHeader* header_for_tests() { return header_; }

  // Empties the ring (only while neither peer uses it, e.g. peer replaced);
  // a broken ring is usable again.
  void reset();
  // Zeroes the shared head and tail only, leaving the wake-up flags to a
  // live peer that may be asleep on them: the supervisor, before it forks a
  // process for one end, so the process never starts from positions the
  // other end chose (that end emptied the ring and holds 0 too).
  void reset_positions();

 private:
  uint64_t load_head(std::memory_order order) const;
  uint64_t load_tail(std::memory_order order) const;
  uint64_t mask() const { return capacity_ - 1; }
  bool fits(uint64_t head, uint64_t footprint, uint64_t tail) const;
  bool capacity_ok() const;  // a power of two, at least kMinRingBytes
  // Both positions record-aligned, head at most the capacity ahead of tail.
  bool positions_consistent(uint64_t head, uint64_t tail) const;

  RingHeader* header_ = nullptr;
  std::byte* data_ = nullptr;
  uint64_t capacity_ = 0;
  uint64_t own_head_ = 0;    // producer: the head it published last
  uint64_t own_tail_ = 0;    // consumer: where it reads next (published unless holding)
  uint64_t peeked_end_ = 0;  // consumer: tail after the peeked record
  bool broken_ = false;      // the peer's positions or data made no sense
  bool holding_ = false;     // consumer: pop() does not publish (hold())
};

}  // namespace ringhttpd::shm
