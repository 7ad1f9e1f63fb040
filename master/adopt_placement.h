// Where a connection handed over in a reload goes, and when a stopping
// network process may be told that no more will come: the decisions of the
// supervisor's relay (Supervisor::flush_adopts, master/supervisor.cc), kept
// apart from its sockets so tests/unit/adopt_placement_test.cc checks them
// without processes.
//
// A network process of the serving generation holds at most
// network.max_connections connections, and its RLIMIT_NOFILE is planned for
// exactly that (master/fd_limit.h). A handed-over connection is therefore
// placed only where it fits, counting what the target holds and what is
// already on its way to it:
//
//   load = connections (its slot) + adopts sent to it - adopts it took (its slot)
//          (passed_load)
//
// on the ready target with the least load. When no target has room the
// connection is closed (the new generation is smaller than the old one);
// when only targets whose control queue is full have room, it waits for them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ringhttpd::master {

// One ready network process of the serving generation, as the supervisor
// sees it when placing a connection.
struct AdoptTarget {
  uint32_t connections = 0;  // open, as it published them (ProcessSlot::connections)
  uint64_t sent = 0;         // adopt messages sent to this incarnation (the supervisor's count)
  uint64_t adopted = 0;      // of those, taken off its socket (ProcessSlot::taken_in, its word)
  bool busy = false;         // its control queue refused a send this round: skip it for now
};

// Connections a process holds or will hold: the open ones it published plus
// those passed to it and not yet taken off its socket. A process that
// reports more taken than were sent counts none on their way. (Also the
// load of a service process taking upgrades: master/takeover.h.)
uint64_t passed_load(uint32_t connections, uint64_t sent, uint64_t taken);
inline uint64_t adopt_load(const AdoptTarget& t) {
  return passed_load(t.connections, t.sent, t.adopted);
}

struct AdoptChoice {
  enum Kind {
    send,   // to targets[target]
    wait,   // room only on busy targets (or no target yet): keep it queued
    close,  // no target has room: the serving generation is full
  };
  Kind kind = wait;
  size_t target = 0;  // valid for send
};

// The not-busy target with the least load below `max_connections` (the
// first on a tie).
AdoptChoice place_adopt(std::span<const AdoptTarget> targets, uint64_t max_connections);

// Whether a network process that is stopping may be told that no more
// connections will be adopted (ControlType::adopts_done): at once when it is
// not of the serving generation (adopts go only there); otherwise when no
// handed-over connection is queued in the supervisor and no network process
// that could hand one over (of an older generation) is still running.
bool adopts_done_due(bool serving_generation, size_t queued, size_t handing_processes);

}  // namespace ringhttpd::master
