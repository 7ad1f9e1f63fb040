// One shared-memory segment per generation: its layout (header, process
// slots, ring table, rings), and creating, mapping and removing it with
// Boost.Interprocess. The supervisor creates and removes it; workers inherit
// the mapping across fork (or open it by name) and check the layout first.
//
//   offset 0     SegmentHeader   magic, layout version + tag, sizes, counts,
//                                the supervisor's counters (reloads, handed-over
//                                connections closed, takeovers refused)
//   slots_off    ProcessSlot[n_network + n_service]       six 64-byte lines each
//   routes_off   uint64_t[n_network][n_routes][5]         responses by route and
//                                                         status class, one row per
//                                                         network process
//   rings_off    RingEntry[n_network * n_service * 2]     offset + capacity
//   ring_k       RingHeader (192 bytes) + data[capacity]  for every entry,
//                aligned to 64 bytes
//
// Ring (n, s, dir) joins network process n and service process s; dir 0
// carries requests (network -> service), dir 1 responses (service -> network).
// Process slot i < n_network is network process i; n_network + s is service
// process s (services in config order, processes of a service consecutive).
#pragma once

#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "shm/ring.h"

namespace ringhttpd::shm {

inline constexpr uint64_t kSegmentMagic = 0x52494e4748545450ull;  // "RINGHTTP"
inline constexpr uint32_t kLayoutVersion = 6;

struct SegmentHeader {
  uint64_t magic;
  uint32_t layout_version;
  uint32_t layout_tag;  // from the sizes and offsets of the shared structs
  uint64_t total_bytes;
  uint32_t generation;
  uint32_t n_network;
  uint32_t n_service;
  uint32_t n_routes;
  uint64_t slots_offset;
  uint64_t rings_offset;
  uint64_t routes_offset;
  // Written by the supervisor into the serving generation's segment (and
  // carried into the next one), so a process that serves /metrics can read
  // them, all since the start: reloads that committed and that failed;
  // connections handed over by a draining generation that the serving one
  // had no room for (closed with a FIN); connections to be taken over (an
  // upgrade) that no process could take (answered 503 by the supervisor).
  uint64_t reloads_ok;
  uint64_t reloads_failed;
  uint64_t handoffs_closed;
  uint64_t takeovers_refused;
};
static_assert(std::is_trivially_copyable_v<SegmentHeader>);

// SegmentHeader's counters, as read or written at once.
struct SupervisorCounters {
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
  uint64_t handoffs_closed = 0;
  uint64_t takeovers_refused = 0;
};

enum class ProcessRole : uint32_t { none = 0, network = 1, service = 2 };
enum class ProcessState : uint32_t { empty = 0, starting = 1, ready = 2, stopping = 3 };

// Request latency buckets (upper bounds in microseconds; the last is +Inf),
// for the fast path and the service path apart.
inline constexpr uint64_t kLatencyBoundsUs[] = {500,   1000,   2500,   5000,   10000,  25000,
                                                50000, 100000, 250000, 500000, 1000000};
inline constexpr size_t kLatencyBuckets = std::size(kLatencyBoundsUs) + 1;
enum class Path : uint32_t { fast = 0, service = 1 };

// One process's lines of the scoreboard. Each field has one writer: the
// process itself, except where noted; `inflight` is written by every network
// process (dispatch) and the service process (completion). Readers (siblings,
// the supervisor, /metrics) use relaxed atomic loads: a value may be a moment
// old, never torn.
//
//   line 0  identity and load   pid role generation index state incarnation
//                               started_at requests inflight connections
//                               restarts heartbeat
//   line 1  traffic             responses[1xx..5xx] accepted bytes_in bytes_out
//   line 2  rings, latency,     ring_full latency_sum_us[2] latency_count[2]
//           handoffs            access_lines_lost passed_in taken_in
//   line 3-5 latency histogram  latency_buckets[fast|service][12]
struct alignas(64) ProcessSlot {
  uint32_t pid;
  ProcessRole role;
  uint32_t generation;
  uint32_t index;  // within its role (network) or its service's pool
  ProcessState state;
  uint32_t incarnation;  // bumped (by the supervisor) each time a process takes this slot
  uint64_t started_at_ms;
  uint64_t requests;      // requests answered
  uint64_t inflight;      // requests queued to (service) or being served by it
  uint32_t connections;   // network: client connections open (siblings read it);
                          // service: connections taken over (tunnels) still open
  uint32_t restarts;      // the supervisor: processes this slot lost so far
  uint64_t heartbeat_ms;  // monotonic ms of the process's last loop iteration

  alignas(64) uint64_t responses[5];  // responses written, by status class (a service
                                      // process: its tunnels' answers)
  uint64_t accepted;                  // network: connections accepted (and adopted)
  uint64_t bytes_in;                  // network: bytes read from clients
  uint64_t bytes_out;                 // network: bytes written to clients

  alignas(64) uint64_t ring_full;  // network: requests refused because every ring was full
  uint64_t latency_sum_us[2];      // network: by Path
  uint64_t latency_count[2];
  uint64_t access_lines_lost;  // access log lines a failed write lost
  // Connections the supervisor passes to this process, on their way: to a
  // network process the ones a draining generation handed over (adopt), to
  // a service process the ones it takes over (take, an upgrade). The
  // supervisor counts the messages it sent (passed_in), the process those
  // it took off its control socket (taken_in), both from 0 at each spawn.
  // The difference is what it has yet to receive: the supervisor counts it
  // as open when placing the next one, and a network process when it
  // decides whether it may accept, so the two never overfill it.
  uint64_t passed_in;  // the supervisor
  uint64_t taken_in;   // the process

  alignas(64) uint64_t latency_buckets[2][kLatencyBuckets];  // network: by Path, not cumulative
};
static_assert(sizeof(ProcessSlot) == 384);
static_assert(std::is_trivially_copyable_v<ProcessSlot>);

struct RingEntry {
  uint64_t offset;    // of its RingHeader from the segment start
  uint64_t capacity;  // data bytes
};
static_assert(std::is_trivially_copyable_v<RingEntry>);

enum class Direction : uint32_t { request = 0, response = 1 };

// The header's layout fields as this process took them: from the spec when
// it created the segment, or, when it opened one, read once from shared
// memory and checked. Sizes, indexes and addresses come only from this
// copy: a child can write the shared header at any time.
struct SegmentShape {
  uint64_t total_bytes = 0;
  uint32_t generation = 0;
  uint32_t n_network = 0;
  uint32_t n_service = 0;
  uint32_t n_routes = 0;
  uint64_t slots_offset = 0;
  uint64_t rings_offset = 0;
  uint64_t routes_offset = 0;
};

// What a segment must hold: the shape of one generation.
struct SegmentSpec {
  uint32_t generation = 1;
  uint32_t n_network = 1;
  std::vector<uint64_t> service_ring_bytes;  // one entry per service process
  uint32_t n_routes = 0;
};

// Offsets computed from a spec; pure arithmetic, no memory touched.
struct SegmentLayout {
  uint64_t total_bytes = 0;
  uint64_t slots_offset = 0;
  uint64_t routes_offset = 0;
  uint64_t rings_offset = 0;
  std::vector<RingEntry> rings;  // index ring_index(n, s, dir)
};

SegmentLayout compute_layout(const SegmentSpec& spec);
uint32_t layout_tag();
inline size_t ring_index(uint32_t n_service, uint32_t network, uint32_t service, Direction dir) {
  return (static_cast<size_t>(network) * n_service + service) * 2 + static_cast<size_t>(dir);
}

// "ringhttpd.<pid>.g<generation>" (Boost adds the leading '/'; the file shows
// up as /dev/shm/ringhttpd.<pid>.g<generation>).
std::string segment_name(uint32_t instance_pid, uint32_t generation);
// The instance pid of a name segment_name() made, or nullopt for other names.
std::optional<uint32_t> segment_instance(std::string_view name);

// A mapped segment. Move-only; unmaps on destruction, never removes (the
// owner calls remove()).
class Segment {
 public:
  Segment();
  ~Segment();
  Segment(Segment&&) noexcept;
  Segment& operator=(Segment&&) noexcept;

  // Creates (fails if the name exists), sizes, maps and formats a segment.
  // On failure returns nullopt and sets `error`.
  static std::optional<Segment> create(const std::string& name, const SegmentSpec& spec,
                                       std::string& error);
  // Maps an existing segment and checks magic, layout version and tag.
  static std::optional<Segment> open(const std::string& name, std::string& error);
  // Unlinks the name (mappings stay valid). True if it existed.
  static bool remove(const std::string& name);

  // Checks magic, layout version and tag, and that every ring is formatted
  // for its capacity. open() runs it; a child runs it on its inherited mapping
  // (with the private copy of the layout it inherited: the layout fields in
  // shared memory are not read again).
  bool verify(std::string& error) const;
  // The same for the rings one process uses (network: its row; service: its
  // column; `index` is the network index or the service process index).
  bool verify_for(ProcessRole role, uint32_t index, std::string& error) const;

  const std::string& name() const { return name_; }
  // The layout, from this process's private copy (SegmentShape), never from
  // shared memory.
  const SegmentShape& header() const { return shape_; }
  // The supervisor's counters, live from the shared header (relaxed loads:
  // numbers to show, never a size or an index).
  SupervisorCounters supervisor_counters() const;
  // The shared header, for its one writer (the supervisor's counters)
  // and for tests that play a misbehaving child.
  SegmentHeader& header_for_writer() { return *header_; }
  ProcessSlot& slot(uint32_t i);
  uint32_t slot_count() const { return shape_.n_network + shape_.n_service; }
  Ring ring(uint32_t network, uint32_t service, Direction dir);
  // Responses by status class (0 = 1xx ... 4 = 5xx) that network process
  // `network` wrote for route `route`.
  uint64_t* route_counters(uint32_t network, uint32_t route);
  const uint64_t* route_counters(uint32_t network, uint32_t route) const;
  const ProcessSlot& slot(uint32_t i) const;
  // Bytes published and not yet consumed in one ring, for status and
  // metrics (a moment old; never more than the ring's capacity; 0 for a
  // ring the segment does not have).
  uint64_t ring_used(uint32_t network, uint32_t service, Direction dir) const;

 private:
  struct Mapping;
  void attach(const std::string& name);  // points the accessors at the mapping
  // open(): takes the layout from shared memory once, into shape_ and rings_.
  bool read_layout(std::string& error);
  bool verify_header(std::string& error) const;
  bool verify_ring(size_t i, std::string& error) const;

  std::unique_ptr<Mapping> mapping_;
  std::string name_;
  SegmentHeader* header_ = nullptr;  // shared: only magic, version, tag and counters are read
  std::byte* base_ = nullptr;
  // Private copies (a forked child inherits the supervisor's).
  SegmentShape shape_;
  std::vector<RingEntry> rings_;  // the ring table, index ring_index()
};

}  // namespace ringhttpd::shm
