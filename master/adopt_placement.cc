// The relay's placement decisions (see adopt_placement.h).
#include "master/adopt_placement.h"

namespace ringhttpd::master {

uint64_t passed_load(uint32_t connections, uint64_t sent, uint64_t taken) {
  return uint64_t{connections} + (sent > taken ? sent - taken : 0);
}

AdoptChoice place_adopt(std::span<const AdoptTarget> targets, uint64_t max_connections) {
  AdoptChoice best{AdoptChoice::close, 0};
  uint64_t best_load = 0;
  bool busy_with_room = targets.empty();  // none ready yet: one may become ready
  for (size_t i = 0; i < targets.size(); ++i) {
    const uint64_t load = adopt_load(targets[i]);
    if (load >= max_connections) continue;
    if (targets[i].busy) {
      busy_with_room = true;
      continue;
    }
    if (best.kind == AdoptChoice::send && load >= best_load) continue;
    best = {AdoptChoice::send, i};
    best_load = load;
  }
  if (best.kind == AdoptChoice::close && busy_with_room) best.kind = AdoptChoice::wait;
  return best;
}

bool adopts_done_due(bool serving_generation, size_t queued, size_t handing_processes) {
  return !serving_generation || (queued == 0 && handing_processes == 0);
}

}  // namespace ringhttpd::master
