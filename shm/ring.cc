// SPSC byte ring: record framing, publication order and the sleep/wake
// handshake described in ring.h. Shared fields are plain integers accessed
// through std::atomic_ref, so the shared structs stay trivially copyable.
#include "shm/ring.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ringhttpd::shm {
namespace {

template <typename T>
std::atomic_ref<T> shared(T& field) {
  return std::atomic_ref<T>(field);
}

}  // namespace

void Ring::init(RingHeader* header, uint64_t capacity) {
  std::memset(static_cast<void*>(header), 0, sizeof(RingHeader));
  header->capacity = capacity;
  shared(header->magic).store(kRingMagic, std::memory_order_release);
}

bool Ring::valid(const RingHeader* header, uint64_t capacity) {
  return header->magic == kRingMagic && header->capacity == capacity && capacity >= kMinRingBytes &&
         (capacity & (capacity - 1)) == 0;
}

Ring::Ring(RingHeader* header, std::byte* data) : Ring(header, data, header->capacity) {}

// The positions found here were written by whoever used the ring last, and
// a surviving peer can write them at any time: they are checked like any
// position read from the peer. A producer that started from a head that is
// not record-aligned would write its record (or its padding) past the end
// of the data area; a consumer would read past it.
Ring::Ring(RingHeader* header, std::byte* data, uint64_t capacity)
    : header_(header),
      data_(data),
      capacity_(capacity),
      own_head_(shared(header->head).load(std::memory_order_acquire)),
      own_tail_(shared(header->tail).load(std::memory_order_acquire)) {
  broken_ = !capacity_ok() || !positions_consistent(own_head_, own_tail_);
}

bool Ring::capacity_ok() const {
  return capacity_ >= kMinRingBytes && (capacity_ & (capacity_ - 1)) == 0;
}

bool Ring::positions_consistent(uint64_t head, uint64_t tail) const {
  return head % kRecordAlign == 0 && tail % kRecordAlign == 0 && head - tail <= capacity_;
}

uint64_t Ring::load_head(std::memory_order order) const {
  return shared(header_->head).load(order);
}

uint64_t Ring::load_tail(std::memory_order order) const {
  return shared(header_->tail).load(order);
}

uint64_t Ring::used() const {
  const uint64_t tail = load_tail(std::memory_order_acquire);
  return load_head(std::memory_order_acquire) - tail;
}

uint64_t Ring::unconsumed() const { return own_head_ - load_tail(std::memory_order_acquire); }

bool Ring::fits(uint64_t head, uint64_t footprint, uint64_t tail) const {
  const uint64_t to_end = capacity_ - (head & mask());
  const uint64_t pad = footprint > to_end ? to_end : 0;
  return head + pad + footprint - tail <= capacity_;
}

bool Ring::try_push(uint16_t type, uint16_t flags, uint64_t id, const std::string_view* parts,
                    size_t n_parts) {
  if (broken_) return false;
  uint64_t payload = 0;
  for (size_t i = 0; i < n_parts; ++i) payload += parts[i].size();
  if (payload > max_record_payload(capacity_)) return false;
  const uint64_t footprint = record_footprint(payload);
  uint64_t head = own_head_;
  if (!fits(head, footprint, load_tail(std::memory_order_acquire))) return false;

  uint64_t offset = head & mask();
  const uint64_t to_end = capacity_ - offset;
  if (footprint > to_end) {  // pad to the end; the record starts at data[0]
    const RecordHeader pad{static_cast<uint32_t>(to_end - sizeof(RecordHeader)), kPaddingRecord, 0,
                           0};
    std::memcpy(data_ + offset, &pad, sizeof pad);
    head += to_end;
    offset = 0;
  }
  const RecordHeader rec{static_cast<uint32_t>(payload), type, flags, id};
  std::memcpy(data_ + offset, &rec, sizeof rec);
  std::byte* out = data_ + offset + sizeof rec;
  for (size_t i = 0; i < n_parts; ++i) {
    if (!parts[i].empty()) std::memcpy(out, parts[i].data(), parts[i].size());
    out += parts[i].size();
  }
  own_head_ = head + footprint;
  shared(header_->head).store(own_head_, std::memory_order_release);
  return true;
}

bool Ring::consumer_needs_wake() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  auto flag = shared(header_->consumer_sleeping);
  return flag.load(std::memory_order_relaxed) != 0 &&
         flag.exchange(0, std::memory_order_acq_rel) != 0;
}

bool Ring::consumer_asleep() const {
  return shared(header_->consumer_sleeping).load(std::memory_order_relaxed) != 0;
}

// A broken ring takes nothing until reset(): the producer waits (for the
// peer's replacement) without announcing it, and never retries in a loop.
bool Ring::prepare_producer_wait(uint64_t need_payload) {
  if (broken_) return true;
  auto flag = shared(header_->producer_waiting);
  flag.store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (fits(own_head_, record_footprint(need_payload), load_tail(std::memory_order_acquire))) {
    flag.store(0, std::memory_order_relaxed);
    return false;
  }
  return true;
}

bool Ring::prepare_producer_wait_until(uint64_t max_used) {
  if (broken_) return true;
  auto flag = shared(header_->producer_waiting);
  flag.store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (own_head_ - load_tail(std::memory_order_acquire) <= max_used) {
    flag.store(0, std::memory_order_relaxed);
    return false;
  }
  return true;
}

bool Ring::peek(RecordView& out) {
  if (broken_) return false;
  uint64_t tail = own_tail_;
  const uint64_t head = load_head(std::memory_order_acquire);
  // The producer publishes whole, aligned records and never more than the
  // capacity ahead of the tail; anything else is a peer gone wrong.
  if (head - tail > capacity_ || (head - tail) % kRecordAlign != 0) {
    broken_ = true;
    return false;
  }
  while (tail != head) {
    const uint64_t offset = tail & mask();
    RecordHeader rec;
    std::memcpy(&rec, data_ + offset, sizeof rec);
    const uint64_t footprint = record_footprint(rec.length);
    if (footprint > head - tail || footprint > capacity_ - offset) {
      broken_ = true;
      return false;
    }
    if (rec.type == kPaddingRecord) {
      tail += footprint;
      own_tail_ = tail;
      if (!holding_) shared(header_->tail).store(tail, std::memory_order_release);
      continue;
    }
    out.type = rec.type;
    out.flags = rec.flags;
    out.id = rec.id;
    out.payload =
        std::string_view(reinterpret_cast<const char*>(data_ + offset + sizeof rec), rec.length);
    peeked_end_ = tail + footprint;
    return true;
  }
  return false;
}

Ring Ring::reader_after_consumer() const {
  Ring reader = *this;
  reader.own_tail_ = load_tail(std::memory_order_acquire);
  reader.peeked_end_ = reader.own_tail_;
  // A ring this producer never wrote (broken from the start) holds nothing
  // of its own to take back.
  reader.broken_ = broken_ || !positions_consistent(own_head_, reader.own_tail_);
  reader.holding_ = false;
  return reader;
}

void Ring::pop() {
  own_tail_ = peeked_end_;
  if (!holding_) shared(header_->tail).store(own_tail_, std::memory_order_release);
}

void Ring::release_held() {
  holding_ = false;
  shared(header_->tail).store(own_tail_, std::memory_order_release);
}

bool Ring::prepare_sleep() {
  if (broken_) return true;  // nothing will be read from it: no reason to stay awake
  auto flag = shared(header_->consumer_sleeping);
  flag.store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (load_head(std::memory_order_acquire) != own_tail_) {
    flag.store(0, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void Ring::cancel_sleep() {
  shared(header_->consumer_sleeping).store(0, std::memory_order_relaxed);
}

bool Ring::producer_needs_wake() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  auto flag = shared(header_->producer_waiting);
  return flag.load(std::memory_order_relaxed) != 0 &&
         flag.exchange(0, std::memory_order_acq_rel) != 0;
}

void Ring::reset_positions() {
  shared(header_->tail).store(0, std::memory_order_relaxed);
  shared(header_->head).store(0, std::memory_order_release);
}

void Ring::reset() {
  broken_ = !capacity_ok();
  holding_ = false;
  peeked_end_ = 0;
  own_head_ = 0;
  own_tail_ = 0;
  shared(header_->tail).store(0, std::memory_order_relaxed);
  shared(header_->head).store(0, std::memory_order_relaxed);
  shared(header_->producer_waiting).store(0, std::memory_order_relaxed);
  shared(header_->consumer_sleeping).store(0, std::memory_order_release);
}

}  // namespace ringhttpd::shm
