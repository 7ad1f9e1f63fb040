// The producer end of one ring, as a process uses it: records go straight
// into the ring when they fit and nothing is queued before them; otherwise
// they wait in a local queue, in order, until the consumer frees space.
// Body records fill the ring only up to half its capacity, so that heads and
// control records (credit, cancel) always find room beside a large transfer
// (they go first, past queued body records: their order only matters
// within one message, and a head starts its message). The
// writer remembers whether it published anything since the last wake check,
// so the process wakes each consumer at most once per loop iteration.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "shm/ring.h"

namespace ringhttpd::worker {

class RingWriter {
 public:
  RingWriter() = default;
  explicit RingWriter(shm::Ring ring) : ring_(ring) {}

  // Largest payload one record may carry on this ring (bodies are cut into
  // pieces of at most this size).
  uint64_t max_payload() const { return max_payload_; }
  void set_max_payload(uint64_t bytes) { max_payload_ = bytes; }

  // Pushes now if it fits, whatever is queued; false otherwise (nothing
  // written, nothing queued). Only for a message's first record (a head),
  // or a record whose order does not matter (credit, cancel).
  bool try_push(uint16_t type, uint16_t flags, uint64_t id, const std::string_view* parts,
                size_t n);
  // Pushes now, or queues a copy behind the records already waiting. A
  // `body` record is pushed only while the ring stays at most half full.
  void push_or_queue(uint16_t type, uint16_t flags, uint64_t id, std::string_view payload,
                     bool body = false);
  // Bytes of the records queued here (not in the ring yet).
  uint64_t queued_bytes() const { return queued_bytes_; }

  // Moves queued records into the ring while they fit. When some remain, the
  // writer announces that it waits for space and returns true (the consumer
  // will wake this process).
  bool flush();
  bool has_queued() const { return !queue_.empty(); }
  size_t queued() const { return queue_.size(); }

  // True when records were published since the last call and the consumer
  // sleeps: the caller must write the consumer's eventfd.
  bool take_wake();
  // Records were published since the last take_wake(): the consumer is
  // woken at the end of this iteration anyway if it sleeps.
  bool published() const { return published_; }

  shm::Ring& ring() { return ring_; }
  const shm::Ring& ring() const { return ring_; }

  struct Queued {
    uint16_t type;
    uint16_t flags;
    uint64_t id;
    std::string payload;
    bool body = false;
  };
  // The peer is gone: hands back the records still queued (oldest first),
  // and empties the ring. Only while the peer has no process.
  std::deque<Queued> reset();

 private:
  shm::Ring ring_;
  std::deque<Queued> queue_;
  bool push_now(const Queued& q);
  uint64_t body_room() const { return ring_.capacity() / 2; }

  uint64_t max_payload_ = 65536;
  uint64_t queued_bytes_ = 0;
  bool published_ = false;
};

}  // namespace ringhttpd::worker
