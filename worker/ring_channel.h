// One channel between a network process and a service process, seen from
// one side: the ring it writes (with its local queue, see RingWriter), the
// ring it reads, and the peer's wake-up eventfd. Both processes use this one
// type, so framing, chunking, batching, the wake-up protocol and the checks
// on what the peer wrote exist once:
//
//   message  = head record (encoded head + first body piece) + body records;
//              the last record carries kRecordEnd (proto/ring_codec.h)
//   batching = records are published as they are sent; the peer is woken at
//              most once per loop iteration (flush), and only if it said it
//              sleeps (shm/ring.h)
//   checks   = a ring whose positions or lengths make no sense is broken:
//              nothing more is read, and newly_broken() says so once, so the
//              process reports the peer (it is replaced)
//
// A process holds one channel per peer; it knows nothing about HTTP.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shm/ring.h"
#include "worker/ring_writer.h"

namespace ringhttpd::worker {

// A head goes whole in one record (with as much of the body as fits after
// it), and a record carries at most half the ring less its 16-byte header
// (shm::max_record_payload): the largest encoded head a ring of `capacity`
// bytes can ever take, even empty.
constexpr uint64_t max_head_bytes(uint64_t capacity) { return shm::max_record_payload(capacity); }
// Whether a head of `head_bytes` (encoded) fits a ring of `capacity` bytes
// when it is empty. If not, no retry can ever send it (431, not 503).
constexpr bool head_ever_fits(uint64_t head_bytes, uint64_t capacity) {
  return head_bytes <= max_head_bytes(capacity);
}
// The smallest ring_bytes (a power of two, at least shm::kMinRingBytes)
// whose records hold the encoding of any request head the parser accepts
// under `max_header_bytes` (proto::max_request_head_bytes): such a ring
// refuses a request only while it is busy, never for its size.
uint64_t min_ring_bytes(uint64_t max_header_bytes);

// A record taken back from the ring of a peer that died.
struct HeldRecord {
  uint16_t type;
  uint16_t flags;
  uint64_t id;
  std::string payload;
};

class RingChannel {
 public:
  RingChannel(shm::Ring out, shm::Ring in, int peer_wake_fd);

  // ---- sending ----
  // Sends a message now or not at all: false (nothing written) when its
  // head record does not fit in the ring now, or could never fit. Body
  // records after the head queue when the ring is full (the message was
  // accepted; they go as the peer reads).
  bool try_send(uint16_t head_type, uint16_t body_type, uint64_t id, std::string_view head,
                std::string_view body);
  // Sends a message, queueing what does not fit. False only when the head
  // could never fit in this ring (the caller sends something smaller).
  bool send(uint16_t head_type, uint16_t body_type, uint64_t id, std::string_view head,
            std::string_view body);
  // A message whose body may still be coming: the head record carries the
  // first bytes of `pieces` (joined), the rest follow as body records; with
  // `end` the last record carries kRecordEnd. False (nothing written) when
  // the head record does not fit in the ring now, or could never fit.
  bool try_send_message(uint16_t head_type, uint16_t body_type, uint64_t id, std::string_view head,
                        std::span<const std::string_view> pieces, bool end);
  // The same with the head in parts (proto::RequestHeadParts), gathered
  // straight into the ring record: `head_size` bytes in all.
  bool try_send_parts(uint16_t head_type, uint16_t body_type, uint64_t id,
                      std::span<const std::string_view> head, uint64_t head_size,
                      std::span<const std::string_view> pieces, bool end);
  // try_send_message, queueing what does not fit now; false only when the
  // head could never fit in this ring.
  bool send_message(uint16_t head_type, uint16_t body_type, uint64_t id, std::string_view head,
                    std::span<const std::string_view> pieces, bool end);
  // More body of a message whose head was sent: cut into records of at most
  // max_piece() bytes; with `end` the last one (empty if there are no
  // bytes) carries kRecordEnd.
  void send_pieces(uint16_t body_type, uint64_t id, std::span<const std::string_view> pieces,
                   bool end);
  // Sends one record as it is (queued behind others if needed).
  void send_record(uint16_t type, uint16_t flags, uint64_t id, std::string_view payload);
  // Sends one body record (at most max_piece() bytes) of a message whose
  // head was sent; queued behind others when the ring is half full.
  void send_body(uint16_t type, uint16_t flags, uint64_t id, std::string_view piece);
  // Sends a credit or cancel record, ahead of queued body records.
  void send_control(uint16_t type, uint64_t id, std::string_view payload);
  // Largest head record payload this ring can ever carry (max_head_bytes).
  uint64_t max_head() const;
  // Bytes of the ring this side writes.
  uint64_t capacity() const { return out_.ring().capacity(); }
  // Largest body piece per record.
  uint64_t max_piece() const { return out_.max_payload(); }
  // Bytes queued locally, waiting for room in the ring.
  uint64_t queued_bytes() const { return out_.queued_bytes(); }

  // ---- receiving ----
  // The next record from the peer, or false (empty, or broken). Its payload
  // is valid until release().
  bool next(shm::RecordView& out) { return in_.peek(out); }
  void release() { in_.pop(); }
  // Until finish_receiving(), released records keep their bytes in place:
  // views into their payloads stay valid (shm::Ring::hold).
  void hold_received() { in_.hold(); }
  // After a batch of next/release: gives the space back and wakes the peer
  // if it waits for it. True exactly once when the incoming ring is found
  // broken (or the outgoing one was, when this side started on it).
  bool finish_receiving();

  // ---- the loop ----
  // Publishes queued records and wakes the peer once if it sleeps.
  void flush();
  // Announces this side sleeps on the incoming ring; false when a record
  // arrived meanwhile (do not sleep).
  bool prepare_sleep() { return in_.prepare_sleep(); }
  // Sending to the peer now costs no wake-up of its own: it is awake, or
  // this side already sent to it since the last flush (a hint; see
  // choose_service).
  bool peer_awake() const { return out_.published() || !out_.ring().consumer_asleep(); }
  void cancel_sleep() { in_.cancel_sleep(); }

  // ---- the peer died (only while it has no process) ----
  // What it never read: the records after the tail it last published, then
  // those queued here. Both rings are emptied.
  std::vector<HeldRecord> take_back_unread();
  // Everything it sent and this side did not read is dropped (counted by
  // `count`, which sees each record), and both rings are emptied.
  template <typename F>
  void discard_incoming(F&& count) {
    shm::RecordView rec;
    while (in_.peek(rec)) {
      count(rec);
      in_.pop();
    }
    reset();
  }
  void reset();

 private:
  struct FirstRecord {
    std::string_view body;  // the pieces as one view
    uint64_t first = 0;     // bytes of it in the head record
    bool fits = false;      // the head can ever fit in this ring
  };
  FirstRecord first_record(uint64_t head_size, std::span<const std::string_view> pieces);
  void send_rest(uint16_t body_type, uint64_t id, std::string_view body, bool end);

  RingWriter out_;
  std::string gather_;                   // several pieces joined for one head record
  std::vector<std::string_view> parts_;  // a head record's parts, for try_push
  shm::Ring in_;
  int peer_wake_fd_;
  bool broken_reported_ = false;
};

}  // namespace ringhttpd::worker
