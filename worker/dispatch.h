// The dispatch decision: which service process of a pool gets the next
// request. Shortest queue first (the `inflight` count each service process
// has in the scoreboard, summed over all network processes); ties go round
// robin from `start` so equal processes share the load. Processes the caller
// found unable to take the request (ring full, dead) are passed over.
#pragma once

#include <cstdint>
#include <span>

namespace ringhttpd::worker {

// Index into `inflight` of the chosen process, or -1 when none is available.
// `available[i]` is non-zero when process i may be tried.
int choose_service(std::span<const uint64_t> inflight, std::span<const uint8_t> available,
                   uint32_t start);

}  // namespace ringhttpd::worker
