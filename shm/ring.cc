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

[[noreturn]] void corrupt(const char* what) {
  std::fprintf(stderr, "ringhttpd: shared ring corrupt: %s\n", what);
  std::abort();
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

bool Ring::fits(uint64_t head, uint64_t footprint, uint64_t tail) const {
  const uint64_t to_end = header_->capacity - (head & mask());
  const uint64_t pad = footprint > to_end ? to_end : 0;
  return head + pad + footprint - tail <= header_->capacity;
}

bool Ring::try_push(uint16_t type, uint16_t flags, uint64_t id, const std::string_view* parts,
                    size_t n_parts) {
  uint64_t payload = 0;
  for (size_t i = 0; i < n_parts; ++i) payload += parts[i].size();
  if (payload > max_record_payload(header_->capacity)) return false;
  const uint64_t footprint = record_footprint(payload);
  uint64_t head = load_head(std::memory_order_relaxed);
  if (!fits(head, footprint, load_tail(std::memory_order_acquire))) return false;

  uint64_t offset = head & mask();
  const uint64_t to_end = header_->capacity - offset;
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
  shared(header_->head).store(head + footprint, std::memory_order_release);
  return true;
}

bool Ring::consumer_needs_wake() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  auto flag = shared(header_->consumer_sleeping);
  return flag.load(std::memory_order_relaxed) != 0 &&
         flag.exchange(0, std::memory_order_acq_rel) != 0;
}

bool Ring::prepare_producer_wait(uint64_t need_payload) {
  auto flag = shared(header_->producer_waiting);
  flag.store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint64_t head = load_head(std::memory_order_relaxed);
  if (fits(head, record_footprint(need_payload), load_tail(std::memory_order_acquire))) {
    flag.store(0, std::memory_order_relaxed);
    return false;
  }
  return true;
}

bool Ring::peek(RecordView& out) {
  uint64_t tail = load_tail(std::memory_order_relaxed);
  const uint64_t head = load_head(std::memory_order_acquire);
  while (tail != head) {
    const uint64_t offset = tail & mask();
    RecordHeader rec;
    std::memcpy(&rec, data_ + offset, sizeof rec);
    const uint64_t footprint = record_footprint(rec.length);
    if (footprint > head - tail || footprint > header_->capacity - offset) corrupt("bad length");
    if (rec.type == kPaddingRecord) {
      tail += footprint;
      shared(header_->tail).store(tail, std::memory_order_release);
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

void Ring::pop() { shared(header_->tail).store(peeked_end_, std::memory_order_release); }

bool Ring::prepare_sleep() {
  auto flag = shared(header_->consumer_sleeping);
  flag.store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (load_head(std::memory_order_acquire) != load_tail(std::memory_order_relaxed)) {
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

void Ring::reset() {
  shared(header_->tail).store(0, std::memory_order_relaxed);
  shared(header_->head).store(0, std::memory_order_relaxed);
  shared(header_->producer_waiting).store(0, std::memory_order_relaxed);
  shared(header_->consumer_sleeping).store(0, std::memory_order_release);
}

}  // namespace ringhttpd::shm
