// Shortest-queue choice and recovery after a death (see dispatch.h).
#include "worker/dispatch.h"

namespace ringhttpd::worker {

int choose_service(std::span<const uint64_t> inflight, std::span<const uint8_t> available,
                   std::span<const uint8_t> awake, uint32_t start) {
  const size_t n = inflight.size();
  int best = -1;
  int best_awake = -1;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (start + k) % n;
    if (!available[i]) continue;
    if (best < 0 || inflight[i] < inflight[static_cast<size_t>(best)]) best = static_cast<int>(i);
    if (i < awake.size() && awake[i] &&
        (best_awake < 0 || inflight[i] < inflight[static_cast<size_t>(best_awake)])) {
      best_awake = static_cast<int>(i);
    }
  }
  if (best_awake >= 0 && inflight[static_cast<size_t>(best_awake)] <=
                             inflight[static_cast<size_t>(best)] + kAwakeMargin) {
    return best_awake;
  }
  return best;
}

Recovery recover(bool taken, bool retryable, bool already_retried, bool sibling_ready) {
  if (taken && (!retryable || already_retried)) return Recovery::bad_gateway;
  if (!sibling_ready) return Recovery::unavailable;
  return taken ? Recovery::retry : Recovery::move;
}

bool is_retryable(std::string_view method, bool has_body) {
  return !has_body && (method == "GET" || method == "HEAD" || method == "OPTIONS");
}

}  // namespace ringhttpd::worker
