// The supervisor's part in a connection taken over by a service process
// (an upgrade through the proxy): a network process sends it the socket and
// the request (`takeover`), and the supervisor passes both on (`take`) to a
// ready process of that service in the serving generation, or answers the
// client 503 itself. These are the decisions, apart from the descriptors
// (Supervisor::relay_takeover does the I/O), so they are tested without
// processes: is the message well formed, which service of the serving
// config it means, and which process takes it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "worker/settings.h"

namespace ringhttpd::master {

// "" when a takeover message from a network process may be passed on, else
// why not (logged). Everything in it is a child's word: exactly one
// descriptor, a service index within the sender's config, a payload that
// decodes (proto/takeover.h).
std::string check_takeover(uint32_t service, size_t n_fds, std::string_view payload,
                           size_t n_services);

// The sender's service `name`, in the serving generation's `services`: the
// index of the proxy service of that name that takes upgrades, or -1. (A
// network process of a draining generation counts in its own config; the
// connection goes to the serving one, where the name may have moved or gone.)
int serving_service(std::string_view name, std::span<const worker::ServiceSettings> services);

// One service process that could take a connection, as the supervisor sees
// it: whether it can now, and what it holds (the same accounting as a
// handed-over connection's placement, master/adopt_placement.h).
struct TakerCandidate {
  bool ready = false;        // reported ready, control socket open, queue not found full
  uint32_t connections = 0;  // tunnels open, as it published them (ProcessSlot::connections)
  uint64_t sent = 0;         // take messages sent to this incarnation (the supervisor's count)
  uint64_t taken = 0;        // of those, taken off its socket (ProcessSlot::taken_in, its word)
};

// The ready candidate holding the fewest connections (open plus on their
// way: tunnels are long, so they are spread by count, not by turn), or -1.
// A tie goes to the first from the one `next` points at, and `next` moves
// past the one chosen, so equal processes take turns.
int pick_taker(std::span<const TakerCandidate> candidates, uint32_t& next);

}  // namespace ringhttpd::master
