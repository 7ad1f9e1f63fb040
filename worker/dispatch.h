// The dispatch decision: which service process of a pool gets the next
// request. Shortest queue first (the `inflight` count each service process
// has in the scoreboard, summed over all network processes); ties go round
// robin from `start` so equal processes share the load. Processes the caller
// found unable to take the request (ring full, dead) are passed over. Also
// the decision for requests left on a service process that died.
//
// Wake the fewest: a process that is awake (or that this network process
// already sends to in this loop iteration, so it is woken anyway) is
// preferred to a sleeping one while its queue is at most `kAwakeMargin`
// longer than the shortest. A wake-up costs both sides a context switch;
// a few more requests queued on a busy process cost nothing when it drains
// its ring in one pass. Past the margin, the sleeping process is woken: a
// pool under real load still spreads over all its processes.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace ringhttpd::worker {

inline constexpr uint64_t kAwakeMargin = 8;

// Index into `inflight` of the chosen process, or -1 when none is available.
// `available[i]` is non-zero when process i may be tried; `awake[i]` when
// sending to it needs no wake-up (empty: none is known awake).
int choose_service(std::span<const uint64_t> inflight, std::span<const uint8_t> available,
                   std::span<const uint8_t> awake, uint32_t start);

// What becomes of a request whose service process died before answering.
enum class Recovery {
  move,         // never taken: send it to a sibling as it is, whatever its method
  retry,        // taken, but safe to send again (GET, HEAD, OPTIONS without a body), once
  bad_gateway,  // taken and not safe to repeat: 502
  unavailable,  // would move or retry, but no sibling is ready: 503 with Retry-After
};
// `taken`: the dead process had read the request's head from its ring.
Recovery recover(bool taken, bool retryable, bool already_retried, bool sibling_ready);
// Whether a request may be sent twice without harm (RFC 9110 9.2.2, and no
// body that could have been half consumed).
bool is_retryable(std::string_view method, bool has_body);

}  // namespace ringhttpd::worker
