// Segment layout arithmetic, naming, and the Boost.Interprocess calls that
// create, map and unlink a segment. The shared_memory_object (and so its fd)
// is dropped as soon as the region is mapped: a mapping needs no descriptor,
// and none can leak into a child.
#include "shm/segment.h"

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <charconv>
#include <cstddef>
#include <cstring>

namespace bip = boost::interprocess;

namespace ringhttpd::shm {
namespace {

constexpr uint64_t align64(uint64_t v) { return (v + 63) & ~uint64_t{63}; }

uint32_t fnv1a(uint32_t h, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    h ^= static_cast<uint8_t>(v >> (i * 8));
    h *= 16777619u;
  }
  return h;
}

}  // namespace

uint32_t layout_tag() {
  uint32_t h = 2166136261u;
  for (uint64_t v :
       {sizeof(SegmentHeader), offsetof(SegmentHeader, slots_offset),
        offsetof(SegmentHeader, routes_offset), offsetof(SegmentHeader, reloads_ok),
        offsetof(SegmentHeader, takeovers_refused), offsetof(ProcessSlot, responses),
        offsetof(ProcessSlot, latency_buckets), uint64_t{kLatencyBuckets},
        offsetof(SegmentHeader, rings_offset), sizeof(ProcessSlot), offsetof(ProcessSlot, inflight),
        offsetof(ProcessSlot, connections), offsetof(ProcessSlot, taken_in), sizeof(RingEntry),
        sizeof(RingHeader), offsetof(RingHeader, head), offsetof(RingHeader, tail),
        sizeof(RecordHeader), uint64_t{kRecordAlign}}) {
    h = fnv1a(h, v);
  }
  return h;
}

SegmentLayout compute_layout(const SegmentSpec& spec) {
  SegmentLayout layout;
  const uint64_t n_service = spec.service_ring_bytes.size();
  layout.slots_offset = align64(sizeof(SegmentHeader));
  layout.routes_offset = layout.slots_offset + (spec.n_network + n_service) * sizeof(ProcessSlot);
  layout.rings_offset = align64(layout.routes_offset +
                                uint64_t{spec.n_network} * spec.n_routes * 5 * sizeof(uint64_t));
  uint64_t at = align64(layout.rings_offset + spec.n_network * n_service * 2 * sizeof(RingEntry));
  for (uint32_t n = 0; n < spec.n_network; ++n) {
    for (uint64_t s = 0; s < n_service; ++s) {
      for (int dir = 0; dir < 2; ++dir) {
        layout.rings.push_back(RingEntry{at, spec.service_ring_bytes[s]});
        at = align64(at + sizeof(RingHeader) + spec.service_ring_bytes[s]);
      }
    }
  }
  layout.total_bytes = at;
  return layout;
}

std::string segment_name(uint32_t instance_pid, uint32_t generation) {
  return "ringhttpd." + std::to_string(instance_pid) + ".g" + std::to_string(generation);
}

std::optional<uint32_t> segment_instance(std::string_view name) {
  constexpr std::string_view prefix = "ringhttpd.";
  if (!name.starts_with(prefix)) return std::nullopt;
  name.remove_prefix(prefix.size());
  uint32_t pid = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
  if (ec != std::errc{} || pid == 0) return std::nullopt;
  std::string_view rest(end, name.data() + name.size() - end);
  if (!rest.starts_with(".g") || rest.size() == 2) return std::nullopt;
  for (char c : rest.substr(2)) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return pid;
}

struct Segment::Mapping {
  bip::mapped_region region;
};

Segment::Segment() = default;
Segment::~Segment() = default;
Segment::Segment(Segment&&) noexcept = default;
Segment& Segment::operator=(Segment&&) noexcept = default;

std::optional<Segment> Segment::create(const std::string& name, const SegmentSpec& spec,
                                       std::string& error) {
  const SegmentLayout layout = compute_layout(spec);
  Segment seg;
  bool created = false;  // the name is ours to remove on failure
  try {
    bip::shared_memory_object object(bip::create_only, name.c_str(), bip::read_write,
                                     bip::permissions(0600));
    created = true;
    object.truncate(static_cast<bip::offset_t>(layout.total_bytes));
    // Reserve the pages now: a sparse segment larger than what /dev/shm can
    // hold would map fine and then kill a worker with SIGBUS on first touch.
    const int err = ::posix_fallocate(object.get_mapping_handle().handle, 0,
                                      static_cast<off_t>(layout.total_bytes));
    if (err != 0) {
      bip::shared_memory_object::remove(name.c_str());
      error = "cannot reserve " + std::to_string(layout.total_bytes) +
              " bytes of shared memory for " + name + ": " + std::strerror(err);
      return std::nullopt;
    }
    seg.mapping_ = std::make_unique<Mapping>(Mapping{bip::mapped_region(object, bip::read_write)});
  } catch (const bip::interprocess_exception& e) {
    if (created) bip::shared_memory_object::remove(name.c_str());
    error = "cannot create shared memory segment " + name + ": " + e.what();
    return std::nullopt;
  }
  seg.attach(name);
  // The private copy comes from the spec, not from what was just written:
  // children are forked with it and never take the layout from shared memory.
  seg.shape_ =
      SegmentShape{layout.total_bytes,  spec.generation,
                   spec.n_network,      static_cast<uint32_t>(spec.service_ring_bytes.size()),
                   spec.n_routes,       layout.slots_offset,
                   layout.rings_offset, layout.routes_offset};
  seg.rings_ = layout.rings;
  std::memset(seg.base_, 0, layout.rings_offset);  // header, slots, route counters
  auto* table = reinterpret_cast<RingEntry*>(seg.base_ + layout.rings_offset);
  for (size_t i = 0; i < layout.rings.size(); ++i) {
    table[i] = layout.rings[i];
    Ring::init(reinterpret_cast<RingHeader*>(seg.base_ + layout.rings[i].offset),
               layout.rings[i].capacity);
  }
  const SegmentShape& sh = seg.shape_;
  *seg.header_ = SegmentHeader{kSegmentMagic,
                               kLayoutVersion,
                               layout_tag(),
                               sh.total_bytes,
                               sh.generation,
                               sh.n_network,
                               sh.n_service,
                               sh.n_routes,
                               sh.slots_offset,
                               sh.rings_offset,
                               sh.routes_offset,
                               0,
                               0,
                               0,
                               0};
  return seg;
}

std::optional<Segment> Segment::open(const std::string& name, std::string& error) {
  Segment seg;
  try {
    bip::shared_memory_object object(bip::open_only, name.c_str(), bip::read_write);
    seg.mapping_ = std::make_unique<Mapping>(Mapping{bip::mapped_region(object, bip::read_write)});
  } catch (const bip::interprocess_exception& e) {
    error = "cannot open shared memory segment " + name + ": " + e.what();
    return std::nullopt;
  }
  seg.attach(name);
  if (!seg.read_layout(error) || !seg.verify(error)) {
    error = "shared memory segment " + name + ": " + error;
    return std::nullopt;
  }
  return seg;
}

// One read of the header and one of the ring table, into private memory;
// the checks run on those copies, so a writer cannot change a value between
// its check and its use. The layout must be exactly the one create() makes
// for the header's counts and the table's capacities: every area where
// compute_layout() puts it, every ring a power of two, both rings of a
// service process the same size in every row, the last one ending at
// total_bytes.
bool Segment::read_layout(std::string& error) {
  const uint64_t size = mapping_->region.get_size();
  if (size < sizeof(SegmentHeader)) {
    error = "too small";
    return false;
  }
  SegmentHeader h;
  std::memcpy(&h, base_, sizeof h);
  if (h.magic != kSegmentMagic || h.layout_version != kLayoutVersion ||
      h.layout_tag != layout_tag() || h.total_bytes > size) {
    error = "another layout (version or build mismatch)";
    return false;
  }
  const auto bad = [&error] {
    error = "the header's areas overlap or leave the segment";
    return false;
  };
  // Each area's end, with overflow checked: the counts are 32-bit, their
  // products are not bounded by anything but this check.
  uint64_t slots_bytes = 0, routes_bytes = 0, n_rings = 0, table_bytes = 0;
  uint64_t routes_offset = 0, routes_end = 0, table_end = 0;
  const uint64_t n_slots = uint64_t{h.n_network} + h.n_service;
  if (__builtin_mul_overflow(n_slots, sizeof(ProcessSlot), &slots_bytes) ||
      __builtin_mul_overflow(uint64_t{h.n_network} * h.n_routes, 5 * sizeof(uint64_t),
                             &routes_bytes) ||
      __builtin_mul_overflow(uint64_t{h.n_network} * h.n_service, 2, &n_rings) ||
      __builtin_mul_overflow(n_rings, sizeof(RingEntry), &table_bytes) ||
      __builtin_add_overflow(align64(sizeof(SegmentHeader)), slots_bytes, &routes_offset) ||
      __builtin_add_overflow(routes_offset, routes_bytes, &routes_end) || routes_end > size ||
      __builtin_add_overflow(align64(routes_end), table_bytes, &table_end)) {
    return bad();
  }
  if (h.slots_offset != align64(sizeof(SegmentHeader)) || h.routes_offset != routes_offset ||
      h.rings_offset != align64(routes_end) || table_end > h.total_bytes) {
    return bad();
  }
  std::vector<RingEntry> rings(n_rings);  // at most total_bytes / 16 entries
  if (n_rings != 0) std::memcpy(rings.data(), base_ + h.rings_offset, table_bytes);
  uint64_t at = align64(table_end);
  for (uint32_t n = 0; n < h.n_network; ++n) {
    for (uint32_t s = 0; s < h.n_service; ++s) {
      const uint64_t capacity = rings[ring_index(h.n_service, 0, s, Direction::request)].capacity;
      for (Direction dir : {Direction::request, Direction::response}) {
        const RingEntry& e = rings[ring_index(h.n_service, n, s, dir)];
        // `at` and `capacity` are at most total_bytes here: no overflow.
        if (e.offset != at || e.capacity != capacity || capacity < kMinRingBytes ||
            (capacity & (capacity - 1)) != 0 || capacity > h.total_bytes) {
          error = "ring " + std::to_string(ring_index(h.n_service, n, s, dir)) +
                  " is not where the layout puts it";
          return false;
        }
        at = align64(at + sizeof(RingHeader) + capacity);
        if (at > h.total_bytes) return bad();
      }
    }
  }
  if (at != h.total_bytes) return bad();
  shape_ = SegmentShape{h.total_bytes, h.generation,   h.n_network,    h.n_service,
                        h.n_routes,    h.slots_offset, h.rings_offset, h.routes_offset};
  rings_ = std::move(rings);
  return true;
}

bool Segment::verify(std::string& error) const {
  if (!verify_header(error)) return false;
  for (size_t i = 0; i < rings_.size(); ++i) {
    if (!verify_ring(i, error)) return false;
  }
  return true;
}

// A child checks only the rings it will use: one row (network process) or
// one column (service process) of the table. Checking every ring made each
// of N + M children touch N x M pages, which dominated start-up at scale.
bool Segment::verify_for(ProcessRole role, uint32_t index, std::string& error) const {
  if (!verify_header(error)) return false;
  const bool network = role == ProcessRole::network;
  if (index >= (network ? shape_.n_network : shape_.n_service)) {
    error = "process index " + std::to_string(index) + " is outside the segment";
    return false;
  }
  const uint32_t others = network ? shape_.n_service : shape_.n_network;
  for (uint32_t k = 0; k < others; ++k) {
    for (Direction dir : {Direction::request, Direction::response}) {
      const size_t i = network ? ring_index(shape_.n_service, index, k, dir)
                               : ring_index(shape_.n_service, k, index, dir);
      if (!verify_ring(i, error)) return false;
    }
  }
  return true;
}

// The constant fields only; the layout is the private copy's (shape_).
bool Segment::verify_header(std::string& error) const {
  const SegmentHeader& h = *header_;
  if (h.magic != kSegmentMagic || h.layout_version != kLayoutVersion ||
      h.layout_tag != layout_tag() || shape_.total_bytes > mapping_->region.get_size()) {
    error = "another layout (version or build mismatch)";
    return false;
  }
  return true;
}

bool Segment::verify_ring(size_t i, std::string& error) const {
  const RingEntry& e = rings_[i];
  if (!Ring::valid(reinterpret_cast<const RingHeader*>(base_ + e.offset), e.capacity)) {
    error = "ring " + std::to_string(i) + " is not formatted";
    return false;
  }
  return true;
}

void Segment::attach(const std::string& name) {
  name_ = name;
  base_ = static_cast<std::byte*>(mapping_->region.get_address());
  header_ = reinterpret_cast<SegmentHeader*>(base_);
}

bool Segment::remove(const std::string& name) {
  return bip::shared_memory_object::remove(name.c_str());
}

ProcessSlot& Segment::slot(uint32_t i) {
  return reinterpret_cast<ProcessSlot*>(base_ + shape_.slots_offset)[i];
}

const ProcessSlot& Segment::slot(uint32_t i) const {
  return reinterpret_cast<const ProcessSlot*>(base_ + shape_.slots_offset)[i];
}

SupervisorCounters Segment::supervisor_counters() const {
  const auto load = [](uint64_t& v) {
    return std::atomic_ref<uint64_t>(v).load(std::memory_order_relaxed);
  };
  SupervisorCounters c;
  c.reloads_ok = load(header_->reloads_ok);
  c.reloads_failed = load(header_->reloads_failed);
  c.handoffs_closed = load(header_->handoffs_closed);
  c.takeovers_refused = load(header_->takeovers_refused);
  return c;
}

uint64_t Segment::ring_used(uint32_t network, uint32_t service, Direction dir) const {
  if (network >= shape_.n_network || service >= shape_.n_service) return 0;
  const RingEntry& e = rings_[ring_index(shape_.n_service, network, service, dir)];
  auto* rh = reinterpret_cast<RingHeader*>(base_ + e.offset);
  const uint64_t tail = std::atomic_ref<uint64_t>(rh->tail).load(std::memory_order_relaxed);
  const uint64_t head = std::atomic_ref<uint64_t>(rh->head).load(std::memory_order_relaxed);
  return head >= tail ? std::min(head - tail, e.capacity) : 0;
}

uint64_t* Segment::route_counters(uint32_t network, uint32_t route) {
  return reinterpret_cast<uint64_t*>(base_ + shape_.routes_offset) +
         (uint64_t{network} * shape_.n_routes + route) * 5;
}

const uint64_t* Segment::route_counters(uint32_t network, uint32_t route) const {
  return reinterpret_cast<const uint64_t*>(base_ + shape_.routes_offset) +
         (uint64_t{network} * shape_.n_routes + route) * 5;
}

Ring Segment::ring(uint32_t network, uint32_t service, Direction dir) {
  const RingEntry& e = rings_[ring_index(shape_.n_service, network, service, dir)];
  auto* rh = reinterpret_cast<RingHeader*>(base_ + e.offset);
  return Ring(rh, base_ + e.offset + sizeof(RingHeader), e.capacity);
}

}  // namespace ringhttpd::shm
