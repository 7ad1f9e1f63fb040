// The admin socket: an AF_UNIX stream listener at `admin.socket` and its
// clients, owned by the Supervisor and run inside its poll loop. It owns the
// listening socket, the socket file (created with `admin.mode`, removed when
// the server closes it) and every client connection; the supervisor's state
// reaches it only through AdminHooks, so this file knows nothing of
// generations or processes.
//
// Never blocks the supervisor: every descriptor is non-blocking, a client is
// served one request at a time (its next line is not read until its answer
// is written), and every client is bounded: kMaxAdminLine per line, an
// output cap, kAdminIdleMs without progress, kMaxAdminClients at once.
//
// Who may connect (SO_PEERCRED, checked at accept): root, the server's own
// effective uid, and members (primary or supplementary gid, SO_PEERGROUPS)
// of `admin.group`. Anyone else is closed at once and logged. The socket
// file's mode is a first fence; the credential check is the real one.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "master/admin_protocol.h"
#include "master/config.h"
#include "proto/unique_fd.h"

namespace ringhttpd::master {

inline constexpr size_t kMaxAdminClients = 64;
inline constexpr int64_t kAdminIdleMs = 10000;
inline constexpr size_t kMaxAdminOutput = 4 << 20;

// What the admin socket asks of the supervisor. All are called from within
// AdminServer::handle(), i.e. from the supervisor's own loop.
struct AdminHooks {
  std::function<nlohmann::json()> status;
  std::function<nlohmann::json()> config;
  // {"ok":true,"metrics":"<Prometheus text exposition>"} of the serving generation.
  std::function<nlohmann::json()> metrics;
  // Requests a reload through the SIGHUP path. Returns the sequence number
  // of the reload that covers this request (the caller is answered by
  // reload_finished() with that number or a later one), or nullopt with
  // `error` set when no reload can be made now.
  std::function<std::optional<uint64_t>(std::string& error)> reload;
  // Whether the supervisor's descriptors leave room for one more client
  // (counted with it) beside what a respawn and a reload need: clients that
  // hold their connections must not take those (unset: room).
  std::function<bool()> room_for_client;
};

class AdminServer {
 public:
  // Binds and listens at config.socket. A socket file left by a dead
  // instance (connect() is refused) is replaced; a live one, or a file that
  // is not a socket, is an error naming `admin.socket`.
  static std::unique_ptr<AdminServer> open(const AdminConfig& config, AdminHooks hooks,
                                           std::string& error);
  ~AdminServer();  // closes every client and removes the socket file
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Appends the listener's and the clients' pollfds; handle() gets the same
  // entries back, in the same order, after poll().
  void add_pollfds(std::vector<pollfd>& fds) const;
  // Accepts, reads, answers, writes, and closes idle or finished clients.
  void handle(std::span<const pollfd> fds, int64_t now_ms);
  // The reload numbered `sequence` committed or failed: every client
  // waiting for it (or an earlier one) gets `answer`.
  void reload_finished(uint64_t sequence, const nlohmann::json& answer);
  // The server is stopping: clients waiting for a reload get an error,
  // every client is closed, the socket file removed. Idempotent.
  void shutdown(std::string_view reason);

  const std::string& path() const { return path_; }

 private:
  struct Client;
  AdminServer(std::string path, proto::UniqueFd listener, proto::UniqueFd dir, ino_t inode,
              AdminConfig config, AdminHooks hooks);
  void accept_all(int64_t now_ms);
  bool allowed(int fd, uid_t uid, gid_t gid) const;
  void read_from(Client& c, int64_t now_ms);
  void serve_lines(Client& c, int64_t now_ms);
  void answer(Client& c, const nlohmann::json& reply);
  void flush(Client& c, int64_t now_ms);
  void unlink_socket();

  std::string path_;  // as configured (relative to the working directory)
  proto::UniqueFd listener_;
  proto::UniqueFd dir_;  // the socket's directory (O_PATH): unlinked there at exit,
                         // whatever the working directory is by then
  ino_t inode_ = 0;      // of the socket file we created: only that one is removed
  AdminConfig config_;
  AdminHooks hooks_;
  std::vector<std::unique_ptr<Client>> clients_;
  int64_t accept_paused_until_ = 0;  // out of descriptors: accept again after this
};

}  // namespace ringhttpd::master
