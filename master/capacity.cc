// Segment size against /dev/shm (see capacity.h).
#include "master/capacity.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>

#include "shm/segment.h"

namespace ringhttpd::master {

uint32_t network_process_count(const Config& config) {
  const int n = config.network.processes;
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  return static_cast<uint32_t>(n > 0 ? n : std::max(cpus, 1L));
}

uint64_t segment_bytes(const Config& config) {
  shm::SegmentSpec spec{1, network_process_count(config), {}};
  for (const auto& s : config.services) {
    for (int i = 0; i < s.processes; ++i) spec.service_ring_bytes.push_back(s.ring_bytes);
  }
  return shm::compute_layout(spec).total_bytes;
}

std::string capacity_error(uint64_t needed, uint64_t available, uint32_t n_network) {
  if (needed <= available) return {};
  constexpr uint64_t kMiB = 1 << 20;
  return "services[*].ring_bytes x services[*].processes x network.processes (" +
         std::to_string(n_network) + "): the shared memory segment needs " +
         std::to_string((needed + kMiB - 1) / kMiB) + " MiB (two rings per network and service " +
         "process pair) and /dev/shm has " + std::to_string(available / kMiB) +
         " MiB free; lower ring_bytes or the process counts";
}

std::string check_capacity(const Config& config) {
  struct statvfs fs {};
  if (::statvfs("/dev/shm", &fs) != 0) return {};  // unknown: the start will say
  const uint64_t available = uint64_t{fs.f_bavail} * fs.f_frsize;
  return capacity_error(segment_bytes(config), available, network_process_count(config));
}

}  // namespace ringhttpd::master
