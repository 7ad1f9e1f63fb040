// What a response amounted to, for the access log and the metrics: written
// whole, or cut short when its connection ended first (the client went
// away, a deadline, a timeout). Pure: read from the response slot, so the
// decisions are tested without sockets (tests/unit/response_outcome_test.cc).
#pragma once

#include <cstdint>

#include "worker/connection.h"

namespace ringhttpd::worker {

// Who ended a connection that still owed responses.
enum class Closer { client, server };

struct Outcome {
  int status = 0;  // 0: nothing to count or log (a 100 Continue)
  uint64_t body_bytes = 0;
};

// A response written whole.
Outcome written_outcome(const ResponseSlot& slot);
// A response its connection ended before it was written whole.
Outcome cut_outcome(const ResponseSlot& slot, Closer by);

}  // namespace ringhttpd::worker
