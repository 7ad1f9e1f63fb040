// Whether a config fits this machine's shared memory: the segment holds two
// rings per (network process, service process) pair, so its size grows with
// the product of the two counts. `check` and every start (and reload) ask
// the same question, so a config that `check` accepts does not then fail
// half-way through a start for lack of /dev/shm.
#pragma once

#include <cstdint>
#include <string>

#include "master/config.h"

namespace ringhttpd::master {

// network.processes, with 0 resolved to the online CPUs.
uint32_t network_process_count(const Config& config);
// Bytes of the segment this config needs.
uint64_t segment_bytes(const Config& config);
// "" when `needed` bytes fit in `available`; otherwise the error, naming
// the keys that size the segment. Pure, for testing.
std::string capacity_error(uint64_t needed, uint64_t available, uint32_t n_network);
// The same against the free space of /dev/shm now.
std::string check_capacity(const Config& config);

}  // namespace ringhttpd::master
