// See takeover.h: the supervisor's decisions about taken-over connections.
#include "master/takeover.h"

#include "master/adopt_placement.h"
#include "proto/takeover.h"

namespace ringhttpd::master {

std::string check_takeover(uint32_t service, size_t n_fds, std::string_view payload,
                           size_t n_services) {
  if (n_fds != 1) return "takeover with " + std::to_string(n_fds) + " descriptors (not 1)";
  if (service >= n_services) {
    return "takeover for service " + std::to_string(service) + " of " + std::to_string(n_services);
  }
  proto::HttpRequest req;
  proto::RequestOrigin origin;
  std::string_view early;
  if (!proto::decode_takeover(payload, req, origin, early)) {
    return "takeover payload that does not decode (" + std::to_string(payload.size()) + " bytes)";
  }
  return "";
}

int serving_service(std::string_view name, std::span<const worker::ServiceSettings> services) {
  for (size_t i = 0; i < services.size(); ++i) {
    const worker::ServiceSettings& s = services[i];
    if (s.name == name) return s.type == "proxy" && s.proxy.upgrade ? static_cast<int>(i) : -1;
  }
  return -1;
}

int pick_taker(std::span<const TakerCandidate> candidates, uint32_t& next) {
  const size_t n = candidates.size();
  int best = -1;
  uint64_t best_load = 0;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (next + k) % n;
    const TakerCandidate& c = candidates[i];
    if (!c.ready) continue;
    const uint64_t load = passed_load(c.connections, c.sent, c.taken);
    if (best >= 0 && load >= best_load) continue;
    best = static_cast<int>(i);
    best_load = load;
  }
  if (best >= 0) next = static_cast<uint32_t>(best + 1);
  return best;
}

}  // namespace ringhttpd::master
