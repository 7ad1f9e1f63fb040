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
  std::string key;      // as configured, "127.0.0.1:0": what a reload matches on
};

// Binds and listens on every configured address. A configured address that
// `keep` already listens on is not bound again: its socket is duplicated
// (the same open socket, so its backlog and port survive a reload). On
// failure returns false and `error` names the listener and the failing call;
// `out` then holds what was opened so far (the caller discards it).
bool bind_listeners(const std::vector<ListenerConfig>& configs, std::vector<Listener>& out,
                    std::string& error, const std::vector<Listener>& keep = {});

}  // namespace ringhttpd::master
