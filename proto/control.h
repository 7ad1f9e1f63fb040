// The control channel between the supervisor and each child: a small fixed
// message over a unix SOCK_SEQPACKET socketpair, optionally carrying
// descriptors in SCM_RIGHTS and a short byte payload (a handed-over
// connection's unparsed bytes). Receiving checks MSG_CTRUNC (truncated
// control data means lost descriptors), takes descriptors with
// MSG_CMSG_CLOEXEC, and never lets an unexpected descriptor leak: every
// received fd lands in a UniqueFd. A message is one datagram:
//
//   +-----------+----------+-----------+---------------------------+
//   | type u32  | arg u32  | arg2 u64  | payload (0..64 KiB)       |
//   +-----------+----------+-----------+---------------------------+
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/unique_fd.h"

namespace ringhttpd::proto {

// At most this many descriptors per message (the kernel's SCM_MAX_FD).
inline constexpr size_t kMaxFdsPerMessage = 253;
// At most this many payload bytes per message.
inline constexpr size_t kMaxControlPayload = 65536;

enum class ControlType : uint32_t {
  listeners = 1,          // supervisor -> network: the listening sockets (fds attached)
  ready = 2,              // child -> supervisor: initialised, serving
  stop = 3,               // supervisor -> child: stop (arg 1 = graceful)
  peer_gone = 4,          // supervisor -> child: the peer at slot `arg` died (incarnation arg2);
                          // settle what it owed and reset the rings shared with it
  peer_released = 5,      // child -> supervisor: done with peer_gone for slot `arg`
  drain = 6,              // supervisor -> network: stop accepting; hand every connection over
  handoff = 7,            // network -> supervisor: a connection (1 fd) and its unparsed bytes;
                          // arg2 = how long it has been idle (ms)
  adopt = 8,              // supervisor -> network: continue this connection (1 fd + bytes);
                          // arg2 = how long it has been idle (ms), handoff's plus the wait
  overdue = 9,            // network -> supervisor: service slot `arg`, incarnation arg2,
                          // holds a request past its kill_after_ms
  peer_broken = 10,       // child -> supervisor: the peer at slot `arg`, incarnation arg2,
                          // wrote a ring that cannot be read (it is replaced)
  reopen_logs = 11,       // supervisor -> child: reopen log files (SIGUSR1, after a rotation)
  failed = 12,            // child -> supervisor, before it exits: it could not start, and why
                          // (payload: its last error line, at most 1 KiB)
  takeover = 13,          // network -> supervisor: a connection (1 fd) that service `arg` (index
                          // in the sender's config) takes over; payload: proto/takeover.h
  take = 14,              // supervisor -> service: own this connection from now on (1 fd,
                          // the takeover's payload)
  adopts_done = 15,       // supervisor -> network, during a stop: no more adopt messages will
                          // come (no older network process is left to hand a connection over
                          // and none is queued); until then a stopping process with no
                          // connections waits instead of exiting. No fds, no payload.
  siblings_changed = 16,  // supervisor -> network, in a serving generation: the network
                          // process at slot `arg` died, or its replacement is ready; a
                          // full process decides now whether to take new connections
                          // (to refuse them). No fds, no payload.
  take_refused = 17,      // supervisor -> network: a `takeover` this process sent that no
                          // process of the service could take (1 fd, the takeover's payload
                          // back; arg2 = the takeover's arg2, when the request came, in
                          // monotonic us). The network process answers 503, counts it and
                          // writes its access-log line.
};

struct ControlMessage {
  ControlType type;
  uint32_t arg;
  uint64_t arg2 = 0;
};
static_assert(sizeof(ControlMessage) == 16);

// Sends one message with up to kMaxFdsPerMessage descriptors (borrowed, not
// closed) and up to kMaxControlPayload bytes. Returns an empty string or the
// error text naming the syscall. `dont_wait`: fail with EAGAIN rather than
// block when the peer's queue is full.
std::string send_control(int sock, const ControlMessage& msg, const std::vector<int>& fds = {},
                         std::string_view payload = {}, bool dont_wait = false);

enum class SendStatus { ok, again, error };

// send_control without waiting, telling "later" from a failure: `again`
// when the peer's queue is full (EAGAIN) or when too many descriptors are in
// flight for this user (ETOOMANYREFS: Linux caps a user's descriptors
// sitting in unix socket queues at the sender's RLIMIT_NOFILE unless it has
// CAP_SYS_RESOURCE; they leave the count as the receiver takes them). Both
// clear as the peer reads, so the message is to be sent again later.
// `error_text` says what failed (also for `again`).
SendStatus try_send_control(int sock, const ControlMessage& msg, const std::vector<int>& fds,
                            std::string_view payload, std::string& error_text);

// Ends a client connection that was handed over and that no process will
// serve (no room left for it): with a FIN, not a reset. close() resets a
// socket with unread input, so what the client sent is read and dropped
// first (it gets no answer either way).
void close_unserved(UniqueFd fd);

enum class RecvStatus { ok, closed, again, error };

// Receives one message, its descriptors and (if `payload` is given) its
// payload. On `error`, `error_text` says what went wrong (including
// truncated control data or a payload where none was expected).
RecvStatus recv_control(int sock, ControlMessage& msg, std::vector<UniqueFd>& fds,
                        std::string& error_text, std::string* payload = nullptr);

}  // namespace ringhttpd::proto
