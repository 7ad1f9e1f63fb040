// The producer end of one ring, as a process uses it: records go straight
// into the ring when they fit and nothing is queued before them; otherwise
// they wait in a local queue, in order, until the consumer frees space. The
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

  // Pushes now if nothing is queued and it fits; false otherwise (nothing
  // written, nothing queued). For records the caller may send elsewhere.
  bool try_push(uint16_t type, uint16_t flags, uint64_t id, const std::string_view* parts,
                size_t n);
  // Pushes now, or queues a copy behind the records already waiting.
  void push_or_queue(uint16_t type, uint16_t flags, uint64_t id, std::string_view payload);

  // Moves queued records into the ring while they fit. When some remain, the
  // writer announces that it waits for space and returns true (the consumer
  // will wake this process).
  bool flush();
  bool has_queued() const { return !queue_.empty(); }
  size_t queued() const { return queue_.size(); }

  // True when records were published since the last call and the consumer
  // sleeps: the caller must write the consumer's eventfd.
  bool take_wake();

  shm::Ring& ring() { return ring_; }
  const shm::Ring& ring() const { return ring_; }

  struct Queued {
    uint16_t type;
    uint16_t flags;
    uint64_t id;
    std::string payload;
  };
  // The peer is gone: hands back the records still queued (oldest first),
  // and empties the ring. Only while the peer has no process.
  std::deque<Queued> reset();

 private:
  shm::Ring ring_;
  std::deque<Queued> queue_;
  uint64_t max_payload_ = 65536;
  bool published_ = false;
};

}  // namespace ringhttpd::worker
