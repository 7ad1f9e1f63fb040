// Everything a child process starts with, filled in by the supervisor before
// fork and inherited: who the child is, the settings it runs with, the
// shared-memory segment (already mapped), every process's wake-up eventfd,
// and its end of the control socketpair. Workers never see the JSON config.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shm/segment.h"
#include "worker/settings.h"

namespace ringhttpd::worker {

// The service processes of one service, consecutive in the segment.
struct ServicePool {
  uint32_t first = 0;  // index of its first service process (0-based among services)
  uint32_t count = 0;
};

struct WorkerEnv {
  shm::ProcessRole role = shm::ProcessRole::none;
  uint32_t generation = 1;
  uint32_t index = 0;         // within its role (network) or its pool (service)
  uint32_t service_proc = 0;  // service processes: index among all service processes
  int service = -1;           // service processes: index into services
  uint32_t supervisor_pid = 0;

  shm::Segment* segment = nullptr;  // inherited mapping
  std::vector<int> wake_fds;        // eventfd per scoreboard slot (borrowed)
  int control_fd = -1;              // this child's end of its socketpair

  NetworkSettings network;
  std::vector<ServiceSettings> services;
  std::vector<RouteSettings> routes;
  std::vector<ServicePool> pools;  // one per service
  std::string log_level = "info";
  std::string access_log = "off";          // log.access: "off", "stderr" or a path
  std::string access_format = "combined";  // log.format: "combined" or "json"
  // Forked to replace a process of a generation already serving (not one
  // of a generation's first processes, whose failure fails its start).
  bool replacement = false;

  uint32_t slot() const {
    return role == shm::ProcessRole::network ? index : segment->header().n_network + service_proc;
  }
};

// Writes 1 to an eventfd (wakes its owner). Errors are ignored: EAGAIN means
// the counter is already non-zero, which wakes the owner just as well.
void wake(int eventfd);

}  // namespace ringhttpd::worker
