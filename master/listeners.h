// The listening sockets: bound by the supervisor (never by a worker), kept
// open by it for its whole life, and passed to network processes over their
// control socketpairs. Port 0 binds any free port; the bound address is read
// back so the "ready" line says where the server really listens.
#pragma once

#include <string>
#include <vector>

#include "master/config.h"
#include "proto/unique_fd.h"

namespace ringhttpd::master {

struct Listener {
  proto::UniqueFd fd;
  std::string address;  // as bound, "127.0.0.1:8080" or "[::1]:8080"
};

// Binds and listens on every configured address. On failure returns false
// and `error` names the listener and the failing call.
bool bind_listeners(const std::vector<ListenerConfig>& configs, std::vector<Listener>& out,
                    std::string& error);

}  // namespace ringhttpd::master
