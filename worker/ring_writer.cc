// Producer-side queueing and batched wake-ups (see ring_writer.h).
#include "worker/ring_writer.h"

#include <algorithm>

namespace ringhttpd::worker {

bool RingWriter::try_push(uint16_t type, uint16_t flags, uint64_t id, const std::string_view* parts,
                          size_t n) {
  if (!ring_.try_push(type, flags, id, parts, n)) return false;
  published_ = true;
  return true;
}

bool RingWriter::push_now(const Queued& q) {
  if (q.body && ring_.unconsumed() + shm::record_footprint(q.payload.size()) > body_room()) {
    return false;
  }
  if (!ring_.try_push(q.type, q.flags, q.id, q.payload)) return false;
  published_ = true;
  return true;
}

void RingWriter::push_or_queue(uint16_t type, uint16_t flags, uint64_t id, std::string_view payload,
                               bool body) {
  if (queue_.empty()) {
    if (!body || ring_.unconsumed() + shm::record_footprint(payload.size()) <= body_room()) {
      if (try_push(type, flags, id, &payload, 1)) return;
    }
  }
  queue_.push_back(Queued{type, flags, id, std::string(payload), body});
  queued_bytes_ += payload.size();
}

bool RingWriter::flush() {
  for (;;) {
    while (!queue_.empty()) {
      const Queued& q = queue_.front();
      if (!push_now(q)) break;
      queued_bytes_ -= q.payload.size();
      queue_.pop_front();
    }
    if (queue_.empty()) return false;
    // Announce the wait; if space appeared meanwhile, go round again.
    const Queued& q = queue_.front();
    const bool waits =
        q.body ? ring_.prepare_producer_wait_until(
                     body_room() - std::min(body_room(), shm::record_footprint(q.payload.size())))
               : ring_.prepare_producer_wait(q.payload.size());
    if (waits) return true;
  }
}

std::deque<RingWriter::Queued> RingWriter::reset() {
  std::deque<Queued> queued;
  queued.swap(queue_);
  queued_bytes_ = 0;
  published_ = false;
  ring_.reset();
  return queued;
}

bool RingWriter::take_wake() {
  if (!published_) return false;
  published_ = false;
  return ring_.consumer_needs_wake();
}

}  // namespace ringhttpd::worker
