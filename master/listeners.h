// The listening sockets: bound by the supervisor (never by a worker), held
// by it for each generation that serves (a reload reuses the open socket of
// an unchanged address; the copies close when that generation drains or a
// stop begins), and passed to network processes over their control
// socketpairs. Port 0 binds any free port; the bound address is read
// back so the "ready" line says where the server really listens.
//
// A listener with `reuseport` is a group of SO_REUSEPORT sockets on one
// address, one per network process: the kernel spreads new connections over
// them by hash, instead of the one shared socket's EPOLLEXCLUSIVE wake-up of
// whichever process waits. Network process k of n holds members k, k+n,
// k+2n, ... (listener_belongs). A group only grows: a reload to fewer network
// processes keeps every member open, held by the processes that remain,
// because closing a member would reset the connections in its queue.
#pragma once

#include <string>
#include <vector>

#include "master/config.h"
#include "proto/unique_fd.h"

namespace ringhttpd::master {

struct Listener {
  proto::UniqueFd fd;
  std::string address;  // as bound, "127.0.0.1:8080" or "[::1]:8080"
  std::string key;      // as configured, "127.0.0.1:0" (the n-th repeat "127.0.0.1:0#n"):
                        // what a reload matches on
  int member = -1;      // reuseport: the index in its group; -1: shared by all
};

// Whether network process `index` of `n_network` gets `l`.
constexpr bool listener_belongs(const Listener& l, uint32_t index, uint32_t n_network) {
  return l.member < 0 || (n_network != 0 && static_cast<uint32_t>(l.member) % n_network == index);
}

// Binds and listens on every configured address. A configured address that
// `keep` already listens on is not bound again: its socket is duplicated
// (the same open socket, so its backlog and port survive a reload). Next,
// the same for `activated`: the sockets systemd passed (socket activation,
// master/systemd.h), which the supervisor keeps for its whole life, so a
// listener removed by one reload and added back by a later one is systemd's
// socket again (binding it would fail: systemd holds the port). On failure
// returns false and `error` names the listener and the failing call; `out`
// then holds what was opened so far (the caller discards it). A reuseport
// listener gets at least `n_network` members: those of `keep` (all of
// them), then systemd's socket as member 0 if it passed one (it must have
// ReusePort=yes), then new ones bound on the port the first one has.
bool bind_listeners(const std::vector<ListenerConfig>& configs, std::vector<Listener>& out,
                    std::string& error, const std::vector<Listener>& keep = {},
                    const std::vector<Listener>& activated = {}, uint32_t n_network = 1);

}  // namespace ringhttpd::master
