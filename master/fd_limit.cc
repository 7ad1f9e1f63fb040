// RLIMIT_NOFILE planning and setting (see fd_limit.h).
#include "master/fd_limit.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

namespace ringhttpd::master {

uint64_t fd_need(uint64_t max_connections, uint64_t listeners, uint64_t processes) {
  const uint64_t network = max_connections + listeners + 2 * processes;
  const uint64_t supervisor = 2 * (listeners + 2 * processes);  // two generations
  return std::max(network, supervisor) + kFdOverhead;
}

FdLimitPlan plan_fd_limit(uint64_t max_connections, uint64_t listeners, uint64_t processes,
                          uint64_t soft, uint64_t hard, bool can_raise_hard, uint64_t ceiling) {
  FdLimitPlan plan{soft, hard, false, {}};
  const uint64_t need = fd_need(max_connections, listeners, processes);
  if (soft >= need) return plan;
  if (hard < need && !(can_raise_hard && ceiling >= need)) {
    const bool by_supervisor = need > max_connections + listeners + 2 * processes + kFdOverhead;
    plan.error =
        by_supervisor
            ? "network.processes, services[].processes: " + std::to_string(processes) +
                  " processes and " + std::to_string(listeners) + " listening sockets need " +
                  std::to_string(need) +
                  " open files in the supervisor (it holds two generations during a reload), "
                  "but RLIMIT_NOFILE is " +
                  std::to_string(soft) + " (hard " + std::to_string(hard) +
                  "); raise it (ulimit -n, or LimitNOFILE= under systemd) or run fewer processes"
            : "network.max_connections: " + std::to_string(max_connections) + " needs " +
                  std::to_string(need) + " open files per network process, but RLIMIT_NOFILE is " +
                  std::to_string(soft) + " (hard " + std::to_string(hard) +
                  "); raise it (ulimit -n, or LimitNOFILE= under systemd) or lower "
                  "max_connections";
    return plan;
  }
  plan.soft = need;
  plan.hard = std::max(hard, need);
  plan.change = true;
  return plan;
}

namespace {

// CAP_SYS_RESOURCE (bit 24) in the effective set: root in a container may
// lack it, and then cannot raise the hard limit.
bool has_sys_resource() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    const uint64_t caps = std::stoull(line.substr(7), nullptr, 16);
    return (caps >> 24) & 1;
  }
  return false;
}

}  // namespace

namespace {

// The plan for this process's limits as they are now.
FdLimitPlan plan_for_this_process(uint64_t max_connections, uint64_t listeners,
                                  uint64_t processes) {
  rlimit now{};
  if (::getrlimit(RLIMIT_NOFILE, &now) < 0) {
    FdLimitPlan failed;
    failed.error = std::string("getrlimit: ") + std::strerror(errno);
    return failed;
  }
  uint64_t ceiling = 1048576;
  std::ifstream("/proc/sys/fs/nr_open") >> ceiling;
  return plan_fd_limit(max_connections, listeners, processes, now.rlim_cur, now.rlim_max,
                       has_sys_resource(), ceiling);
}

}  // namespace

std::string fd_limit_problem(uint64_t max_connections, uint64_t listeners, uint64_t processes) {
  return plan_for_this_process(max_connections, listeners, processes).error;
}

std::string raise_fd_limit(uint64_t max_connections, uint64_t listeners, uint64_t processes) {
  const FdLimitPlan plan = plan_for_this_process(max_connections, listeners, processes);
  if (!plan.error.empty() || !plan.change) return plan.error;
  const rlimit want{plan.soft, plan.hard};
  if (::setrlimit(RLIMIT_NOFILE, &want) < 0) {
    return "setrlimit(RLIMIT_NOFILE, " + std::to_string(plan.soft) + "): " + std::strerror(errno) +
           " (network.max_connections: " + std::to_string(max_connections) + ")";
  }
  return {};
}

std::string reload_fd_problem(uint64_t open_now, uint64_t soft, uint64_t processes,
                              size_t generations_running) {
  const uint64_t need = generation_fds(processes);
  if (open_now + need <= soft) return {};
  return "the supervisor has " + std::to_string(open_now) + " of its " + std::to_string(soft) +
         " open files (RLIMIT_NOFILE) in use with " + std::to_string(generations_running) +
         " generations running, and another of " + std::to_string(processes) + " processes needs " +
         std::to_string(need) +
         " more; let the older generations' drain end first, or raise the limit (ulimit -n, "
         "LimitNOFILE= under systemd)";
}

uint64_t open_fd_count() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  uint64_t n = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n > 0 ? n - 1 : 0;  // the directory's own descriptor
}

uint64_t fd_soft_limit() {
  rlimit now{};
  if (::getrlimit(RLIMIT_NOFILE, &now) < 0) return 0;
  return now.rlim_cur;
}

}  // namespace ringhttpd::master
