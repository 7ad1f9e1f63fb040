// Producer-side queueing and batched wake-ups (see ring_writer.h).
#include "worker/ring_writer.h"

namespace ringhttpd::worker {

bool RingWriter::try_push(uint16_t type, uint16_t flags, uint64_t id, const std::string_view* parts,
                          size_t n) {
  if (!queue_.empty() || !ring_.try_push(type, flags, id, parts, n)) return false;
  published_ = true;
  return true;
}

void RingWriter::push_or_queue(uint16_t type, uint16_t flags, uint64_t id,
                               std::string_view payload) {
  if (try_push(type, flags, id, &payload, 1)) return;
  queue_.push_back(Queued{type, flags, id, std::string(payload)});
}

bool RingWriter::flush() {
  for (;;) {
    while (!queue_.empty()) {
      const Queued& q = queue_.front();
      if (!ring_.try_push(q.type, q.flags, q.id, q.payload)) break;
      published_ = true;
      queue_.pop_front();
    }
    if (queue_.empty()) return false;
    // Announce the wait; if space appeared meanwhile, go round again.
    if (ring_.prepare_producer_wait(queue_.front().payload.size())) return true;
  }
}

std::deque<RingWriter::Queued> RingWriter::reset() {
  std::deque<Queued> queued;
  queued.swap(queue_);
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
