// The supervisor's pure decisions (see lifecycle.h).
#include "master/lifecycle.h"

#include <algorithm>

namespace ringhttpd::master {

int64_t RestartPolicy::on_death(int64_t started_ms, int64_t now_ms) {
  if (now_ms - started_ms >= kHealthyMs) streak_ = 0;
  ++restarts_;
  const uint32_t step = streak_++;
  if (step == 0) return 0;
  // 100, 200, 400, ... capped; the shift is bounded before it can overflow.
  const uint32_t shift = std::min<uint32_t>(step - 1, 20);
  return std::min(kFirstBackoffMs << shift, kMaxBackoffMs);
}

DeathAction decide_death(GenerationPhase phase, bool server_stopping) {
  switch (phase) {
    case GenerationPhase::starting:
      return server_stopping ? DeathAction::nothing : DeathAction::fail_reload;
    case GenerationPhase::serving:
      return server_stopping ? DeathAction::settle_only : DeathAction::replace;
    case GenerationPhase::draining:
      return DeathAction::settle_only;
    case GenerationPhase::discarding:
      return DeathAction::nothing;
  }
  return DeathAction::nothing;
}

bool ReloadMachine::request() {
  if (running_) {
    pending_ = true;
    return false;
  }
  running_ = true;
  return true;
}

bool ReloadMachine::finished() {
  running_ = false;
  if (!pending_) return false;
  pending_ = false;
  running_ = true;
  return true;
}

}  // namespace ringhttpd::master
