// Framing, batching and wake-ups of one network<->service channel (see
// ring_channel.h).
#include "worker/ring_channel.h"

#include <algorithm>

#include "proto/ring_codec.h"
#include "worker/worker_env.h"

namespace ringhttpd::worker {
namespace {

// Body pieces: at most 64 KiB, and at most a quarter of the ring, so that a
// large body leaves room for other messages' heads between its pieces.
uint64_t piece_bytes(uint64_t capacity) { return std::min<uint64_t>(65536, capacity / 4); }

}  // namespace

RingChannel::RingChannel(shm::Ring out, shm::Ring in, int peer_wake_fd)
    : out_(out), in_(in), peer_wake_fd_(peer_wake_fd) {
  out_.set_max_payload(piece_bytes(out.capacity()));
}

uint64_t min_ring_bytes(uint64_t max_header_bytes) {
  const uint64_t head = proto::max_request_head_bytes(max_header_bytes);
  uint64_t ring = shm::kMinRingBytes;
  while (!head_ever_fits(head, ring)) ring *= 2;
  return ring;
}

uint64_t RingChannel::max_head() const { return max_head_bytes(out_.ring().capacity()); }

// The body as one view (pieces joined only when there are several), and how
// much of it rides in the head record; 0 with `fits` false when the head
// could never fit in this ring.
RingChannel::FirstRecord RingChannel::first_record(uint64_t head_size,
                                                   std::span<const std::string_view> pieces) {
  FirstRecord r;
  if (pieces.size() == 1) {
    r.body = pieces[0];
  } else if (pieces.size() > 1) {
    gather_.clear();
    for (std::string_view p : pieces) gather_.append(p);
    r.body = gather_;
  }
  const uint64_t limit = max_head();
  r.fits = head_ever_fits(head_size, out_.ring().capacity());
  if (r.fits) {
    r.first = std::min({out_.max_payload(), limit - head_size, uint64_t{r.body.size()}});
  }
  return r;
}

bool RingChannel::try_send(uint16_t head_type, uint16_t body_type, uint64_t id,
                           std::string_view head, std::string_view body) {
  const std::string_view one[] = {body};
  return try_send_message(head_type, body_type, id, head, one, true);
}

bool RingChannel::try_send_message(uint16_t head_type, uint16_t body_type, uint64_t id,
                                   std::string_view head, std::span<const std::string_view> pieces,
                                   bool end) {
  const std::string_view one[] = {head};
  return try_send_parts(head_type, body_type, id, one, head.size(), pieces, end);
}

bool RingChannel::try_send_parts(uint16_t head_type, uint16_t body_type, uint64_t id,
                                 std::span<const std::string_view> head, uint64_t head_size,
                                 std::span<const std::string_view> pieces, bool end) {
  const FirstRecord r = first_record(head_size, pieces);
  if (!r.fits) return false;
  parts_.assign(head.begin(), head.end());
  parts_.push_back(r.body.substr(0, r.first));
  const uint16_t flags = end && r.first == r.body.size() ? proto::kRecordEnd : 0;
  if (!out_.try_push(head_type, flags, id, parts_.data(), parts_.size())) return false;
  if (r.first < r.body.size()) send_rest(body_type, id, r.body.substr(r.first), end);
  return true;
}

bool RingChannel::send_message(uint16_t head_type, uint16_t body_type, uint64_t id,
                               std::string_view head, std::span<const std::string_view> pieces,
                               bool end) {
  if (try_send_message(head_type, body_type, id, head, pieces, end)) return true;
  const FirstRecord r = first_record(head.size(), pieces);
  if (!r.fits) return false;
  std::string record;
  record.reserve(head.size() + r.first);
  record.append(head).append(r.body.substr(0, r.first));
  out_.push_or_queue(head_type, end && r.first == r.body.size() ? proto::kRecordEnd : 0, id,
                     record);
  if (r.first < r.body.size()) send_rest(body_type, id, r.body.substr(r.first), end);
  return true;
}

void RingChannel::send_pieces(uint16_t body_type, uint64_t id,
                              std::span<const std::string_view> pieces, bool end) {
  size_t last = pieces.size();
  while (last > 0 && pieces[last - 1].empty()) --last;
  if (last == 0) {
    if (end) out_.push_or_queue(body_type, proto::kRecordEnd, id, {}, true);
    return;
  }
  for (size_t i = 0; i < last; ++i) send_rest(body_type, id, pieces[i], end && i + 1 == last);
}

void RingChannel::send_rest(uint16_t body_type, uint64_t id, std::string_view body, bool end) {
  for (size_t at = 0; at < body.size(); at += out_.max_payload()) {
    const std::string_view piece = body.substr(at, out_.max_payload());
    const bool last = end && at + piece.size() == body.size();
    out_.push_or_queue(body_type, last ? proto::kRecordEnd : 0, id, piece, true);
  }
}

bool RingChannel::send(uint16_t head_type, uint16_t body_type, uint64_t id, std::string_view head,
                       std::string_view body) {
  const std::string_view one[] = {body};
  return send_message(head_type, body_type, id, head, one, true);
}

void RingChannel::send_record(uint16_t type, uint16_t flags, uint64_t id,
                              std::string_view payload) {
  out_.push_or_queue(type, flags, id, payload);
}

void RingChannel::send_body(uint16_t type, uint16_t flags, uint64_t id, std::string_view piece) {
  out_.push_or_queue(type, flags, id, piece, true);
}

void RingChannel::send_control(uint16_t type, uint64_t id, std::string_view payload) {
  if (out_.try_push(type, 0, id, &payload, 1)) return;
  out_.push_or_queue(type, 0, id, payload);
}

bool RingChannel::finish_receiving() {
  in_.release_held();
  if (in_.producer_needs_wake()) wake(peer_wake_fd_);
  // The outgoing ring is broken when the positions this side found in it
  // at start made no sense (shm::Ring's constructor): the peer chose them.
  if (!(in_.broken() || out_.ring().broken()) || broken_reported_) return false;
  broken_reported_ = true;
  return true;
}

void RingChannel::flush() {
  out_.flush();
  if (out_.take_wake()) wake(peer_wake_fd_);
}

std::vector<HeldRecord> RingChannel::take_back_unread() {
  std::vector<HeldRecord> held;
  shm::Ring reader = out_.ring().reader_after_consumer();
  shm::RecordView rec;
  while (reader.peek(rec)) {
    held.push_back(HeldRecord{rec.type, rec.flags, rec.id, std::string(rec.payload)});
    reader.pop();
  }
  for (RingWriter::Queued& q : out_.reset()) {
    held.push_back(HeldRecord{q.type, q.flags, q.id, std::move(q.payload)});
  }
  in_.reset();
  broken_reported_ = false;
  return held;
}

void RingChannel::reset() {
  out_.reset();
  in_.reset();
  broken_reported_ = false;
}

}  // namespace ringhttpd::worker
