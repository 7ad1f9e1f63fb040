// A connection the proxy took over (an upgrade, such as a WebSocket
// handshake; docs/architecture.md, "Connections taken over"). The service
// process owns the client's socket; one Tunnel holds it and one upstream
// socket, both in the process's epoll set (HandlerLoop), so one process
// holds hundreds of tunnels and never blocks on one:
//
//   connecting    non-blocking connect to an upstream picked as for any
//                 request (balance, passing over resting ones); refused ->
//                 the next one; none left -> 502; connect_timeout_ms -> 504
//   awaiting_head the request (Upgrade and "Connection: upgrade" kept, other
//                 hop-by-hop fields dropped, X-Forwarded-* added) goes up;
//                 the upstream's head is read (response_timeout_ms -> 504,
//                 malformed -> 502). The bytes the client sent after its
//                 head wait, and the client is not read: until a 101 they
//                 are not known to be the new protocol, and the upstream
//                 would read them as a next request. A client that closes
//                 (EPOLLRDHUP) before any answer ends the tunnel: 499
//   relaying      after a 101: its head, then the client's early bytes,
//                 then bytes both ways, each way
//                 through one buffer of kFlowBytes (a side is read only
//                 while the buffer toward the other has room: flow control
//                 through EPOLLOUT); an EOF is passed on with
//                 shutdown(SHUT_WR) once its buffer is written; done when
//                 both ways are; tunnel_idle_timeout_ms without a byte, or
//                 any error, closes both sides
//   answering     any other answer goes to the client with "Connection:
//                 close", then both close; the early bytes are dropped
//
// The decisions about a flow (read, write, shut down, done) are the pure
// functions below, tested without sockets.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proto/http_request.h"
#include "proto/unique_fd.h"
#include "worker/handler.h"
#include "worker/settings.h"

namespace ringhttpd::worker {

// ---- one direction of a tunnel (pure) ----

// Bytes read from one side and not yet written to the other, at most this
// many (plus, at the start, the request and the bytes that came with it).
inline constexpr size_t kFlowBytes = 64 * 1024;

struct Flow {
  std::string buf;
  size_t at = 0;          // buf[at..] is still to write
  bool src_eof = false;   // the source sent its last byte (EOF)
  bool dst_shut = false;  // the destination's write side is shut down
  size_t pending() const { return buf.size() - at; }
};

// Read the source while it has not ended and the buffer has room.
inline bool flow_wants_read(const Flow& f) { return !f.src_eof && f.pending() < kFlowBytes; }
inline bool flow_wants_write(const Flow& f) { return f.pending() > 0; }
// The source ended and all it sent is written: pass the EOF on.
inline bool flow_should_shut(const Flow& f) { return f.src_eof && f.pending() == 0 && !f.dst_shut; }
inline bool flow_done(const Flow& f) { return f.src_eof && f.pending() == 0 && f.dst_shut; }

// ---- the bytes a tunnel writes (pure) ----

// The request for the upstream: `req` with hop-by-hop fields dropped but
// Upgrade kept and "Connection: upgrade", X-Forwarded-For/-Proto/-Host and
// Forwarded as for proxied requests (append_forwarding); Host as `host`
// says, `upstream_host` when the client sent none.
std::string upgrade_request_head(const ServiceRequest& req, std::string_view upstream_host,
                                 const HostHeader& host = {});
// The head of an answer other than 101, for the client: hop-by-hop fields
// dropped (the framing fields stay: the body follows as the upstream sent
// it) and "Connection: close".
std::string closing_response_head(int status, const std::vector<proto::Header>& headers);
// A whole error answer (502, 504) with "Connection: close".
std::string tunnel_error_response(int status, std::string_view why);

// ---- the tunnel ----

class Tunnel;

// What a tunnel needs from its proxy: the loop, the settings, and the
// upstream choice shared with requests.
struct TunnelUpstream {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string host;  // for a Host line when the client sent none
  std::string name;  // for logs
  size_t index = 0;  // the proxy's own number for it
};

class TunnelHost {
 public:
  virtual ~TunnelHost() = default;
  virtual HandlerLoop& loop() = 0;
  virtual const ProxySettings& settings() const = 0;
  // The next upstream to try, none of `tried` (to which it is added);
  // false when there is none. The upstream counts the tunnel as active
  // until upstream_released().
  virtual bool pick_upstream(std::vector<size_t>& tried, TunnelUpstream& out) = 0;
  // pick_upstream() would find one: an upstream not in `tried`.
  virtual bool may_try_another(const std::vector<size_t>& tried) const = 0;
  virtual void upstream_failed(size_t index, const std::string& why) = 0;  // it rests
  virtual void upstream_released(size_t index) = 0;
  // The tunnel wants check() at `ms` (monotonic) at the latest.
  virtual void wake_at(int64_t ms) = 0;
  // It is over: freed by the host later, never from inside its own calls.
  virtual void tunnel_ended(Tunnel& t) = 0;
};

class Tunnel {
 public:
  Tunnel(TunnelHost& host, proto::UniqueFd client, ServiceRequest request, std::string early);
  ~Tunnel();
  Tunnel(const Tunnel&) = delete;
  Tunnel& operator=(const Tunnel&) = delete;

  void start();
  // Past its deadline: 504 before the upstream's head, closed after.
  void check(int64_t now);
  int64_t deadline() const { return deadline_; }
  bool ended() const { return phase_ == Phase::ended; }

  struct Answer;  // an answer other than 101, parsed on to know where it ends

 private:
  enum class Phase { connecting, awaiting_head, relaying, answering, ended };

  void attempt();
  void on_client(uint32_t ev);
  void on_upstream(uint32_t ev);
  void on_connected();
  void read_upstream();
  void read_client();
  void take_head();
  void feed_answer(std::string_view bytes);
  bool write_flow(Flow& f, int fd);
  void pump();
  void update_interest();
  void fail(int status, const std::string& why);
  // Access-log statuses of a tunnel that ends before any byte of an
  // answer went out (nginx's): the client left, or this side ended it.
  static constexpr int kClientLeft = 499;
  static constexpr int kServerClosed = 444;
  void end(int no_answer_status = kServerClosed);
  void close_upstream();
  void touch();
  void set_deadline(uint32_t ms);
  void answer_with(int status);
  // No answer for the client yet (neither the upstream's nor ours).
  bool awaiting_answer() const { return status_ == 0 && phase_ != Phase::ended; }
  void account(int no_answer_status);

  TunnelHost& host_;
  proto::UniqueFd client_;
  proto::UniqueFd upstream_;
  ServiceRequest request_;
  std::string early_;
  Phase phase_ = Phase::connecting;
  Flow to_upstream_;
  Flow to_client_;
  std::string head_in_;  // the upstream's head while it arrives
  std::vector<size_t> tried_;
  bool have_upstream_ = false;
  size_t upstream_index_ = 0;
  std::string upstream_name_;
  uint32_t client_events_ = 0;
  uint32_t upstream_events_ = 0;
  bool client_watched_ = false;
  bool upstream_watched_ = false;
  int64_t deadline_ = 0;
  std::unique_ptr<Answer> answer_;
  // For its access-log line (account): the status passed on or given, the
  // head's bytes at the front of to_client_, and all bytes written to the
  // client; from the takeover on.
  int status_ = 0;
  uint64_t head_bytes_ = 0;
  uint64_t client_bytes_ = 0;
  int64_t began_us_ = 0;
  bool accounted_ = false;
};

}  // namespace ringhttpd::worker
