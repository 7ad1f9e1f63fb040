// The control channel between the supervisor and each child: a small fixed
// message over a unix socketpair, optionally carrying descriptors in
// SCM_RIGHTS. Receiving checks MSG_CTRUNC (truncated control data means lost
// descriptors), takes descriptors with MSG_CMSG_CLOEXEC, and never lets an
// unexpected descriptor leak: every received fd lands in a UniqueFd.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proto/unique_fd.h"

namespace ringhttpd::proto {

// At most this many descriptors per message (the kernel's SCM_MAX_FD).
inline constexpr size_t kMaxFdsPerMessage = 253;

enum class ControlType : uint32_t {
  listeners = 1,  // supervisor -> network: the listening sockets (fds attached)
  ready = 2,      // child -> supervisor: initialised, serving
  stop = 3,       // supervisor -> child: stop (arg 1 = graceful)
};

struct ControlMessage {
  ControlType type;
  uint32_t arg;
};

// Sends one message with up to kMaxFdsPerMessage descriptors (borrowed, not
// closed). Returns an empty string or the error text naming the syscall.
std::string send_control(int sock, const ControlMessage& msg, const std::vector<int>& fds = {});

enum class RecvStatus { ok, closed, again, error };

// Receives one message and its descriptors. On `error`, `error_text` says
// what went wrong (including truncated control data).
RecvStatus recv_control(int sock, ControlMessage& msg, std::vector<UniqueFd>& fds,
                        std::string& error_text);

}  // namespace ringhttpd::proto
