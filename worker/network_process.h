// The network process: owns client connections. One epoll loop accepts on
// the shared listening sockets (EPOLLEXCLUSIVE), reads and parses requests,
// answers `respond` routes itself (fast path), sends service routes over the
// rings to the least busy service process of the route's pool, collects
// their responses, and writes everything back in request order with writev.
//
// A service process that dies is settled here (peer_gone): requests it never
// took move to a sibling, safe ones it took are retried once, the rest get
// 502; the rings are emptied for its replacement. On reload (drain) every
// connection is handed, between two requests, to the next generation through
// the supervisor; a graceful stop instead tells every client
// "Connection: close" and waits for the connections to end.
//
// One loop iteration: wait (epoll) -> handle events -> read all response
// rings (holding a ring whose records hold bodies still to write) -> write
// to connections that got responses -> release the held rings -> (every
// 250 ms) timeouts -> flush queued ring records and wake each consumer that
// sleeps, once.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/control.h"
#include "proto/ring_codec.h"
#include "proto/unique_fd.h"
#include "worker/access_log.h"
#include "worker/block_cache.h"
#include "worker/connection.h"
#include "worker/event_loop.h"
#include "worker/file_cache.h"
#include "worker/metrics.h"
#include "worker/response_outcome.h"
#include "worker/ring_channel.h"
#include "worker/router.h"
#include "worker/worker_env.h"

namespace ringhttpd::worker {

// Whether a network process that drains (a reload) or stops may end its
// loop: no connection is left, none is on its way here (adopts the
// supervisor sent that it has not taken: a generation that began to drain
// may still have some in its control queue, sent while it served), and,
// when stopping, the supervisor has said no more will be sent
// (adopts_done). The drain or stop deadline ends it regardless.
constexpr bool may_end_loop(bool no_connections, uint64_t adopts_in_flight, bool draining,
                            bool adopts_done) {
  return no_connections && adopts_in_flight == 0 && (draining || adopts_done);
}

class NetworkProcess {
 public:
  explicit NetworkProcess(WorkerEnv& env);
  ~NetworkProcess();
  // Runs until stopped; returns the exit status.
  int run();

 private:
  // A request a service process owes an answer to. After a 504 the entry
  // stays, without a slot, until the answer comes or kill_after passes (then
  // the supervisor is told to replace the process).
  struct Pending {
    uint64_t connection;
    ResponseSlot* slot;  // nullptr once answered 504
    uint32_t service;
    uint32_t incarnation;
    int64_t kill_at_ms;
  };

  bool start();
  uint64_t static_cache_fds();
  void handle_event(const epoll_event& ev);
  void handle_signal();
  void handle_control();
  void handle_control_message(const proto::ControlMessage& msg, std::vector<proto::UniqueFd>& fds,
                              std::string& payload);
  void add_listeners(std::vector<proto::UniqueFd>& fds);
  void accept_all(int listener);
  void refuse(int fd);
  static bool over_budget(Connection& c, size_t divisor);
  void read_from(Connection& c);
  void parse(Connection& c, std::string_view data);
  bool one_request(const Connection& c, size_t n) const;
  size_t parse_slice(Connection& c, std::string_view data, bool one);
  // ---- a request as it is parsed: head, body pieces, end ----
  void on_request_head(Connection& c, proto::RequestHead head, uint64_t length);
  void on_request_body(Connection& c, std::string_view piece);
  void release_incoming(Connection& c);
  void on_request_end(Connection& c);
  void on_parse_error(Connection& c, int status);
  void refuse_path(Connection& c, int status);
  uint64_t upload_room(const Connection& c);
  bool uploading(Incoming& in);
  void start_upload(Connection& c);
  void continue_upload(Connection& c, bool end);
  void stop_upload(Connection& c);
  void on_credit(const Pending& p, const shm::RecordView& rec);
  void credit_response(Connection& c, ResponseSlot& slot);
  void abort_response(ResponseSlot& slot);
  void pause_accepting();
  void update_accepting();
  void on_siblings_changed();
  void watch_listener(size_t i, bool want);
  bool sibling_has_room();
  void publish_connections();
  ResponseSlot& add_slot(Connection& c);
  ResponseSlot& new_slot(Connection& c, const proto::RequestHead& req);
  void add_response(Connection& c, proto::RequestHead& req, const RouteSettings* route);
  void answer_fixed(ResponseSlot& slot, const RespondSettings& r);
  void answer_metrics(ResponseSlot& slot);
  void answer_static(ResponseSlot& slot, const proto::RequestHead& req, const RouteSettings& route);
  // Sends the request's head with `body` (all of it with `end`, else its
  // beginning); 503 when no ready service process has room for the head
  // now, 431 when the pool's rings could never take it. False when answered.
  bool dispatch(ResponseSlot& slot, Connection& c, const proto::RequestHead& req,
                const RouteSettings& route, std::span<const std::string_view> body, bool end);
  bool send_request(uint32_t service, uint64_t id, std::span<const std::string_view> body,
                    bool end);
  // The ready service process of `pool` with the shortest queue, other than
  // `exclude`, or -1.
  static constexpr int64_t kAwakeHeartbeatMs = 10;
  bool loop_ran_lately(shm::ProcessSlot& slot) const;
  int pick_service(const ServicePool& pool, int exclude);
  void track(ResponseSlot& slot, uint64_t connection, uint32_t service, uint64_t id);
  uint64_t next_id(uint32_t service);

  // ---- a service process died (peer_gone) ----
  void on_service_gone(uint32_t slot, uint64_t incarnation);
  void recover_request(uint64_t id, Pending pending, const std::vector<HeldRecord>& untaken);
  bool resend(ResponseSlot& slot, uint64_t connection, uint32_t from,
              const std::vector<HeldRecord>& records, uint64_t old_id);
  void drain_ring(uint32_t service);
  void finish_ring(uint32_t service);

  // ---- reload: hand connections over; take them over ----
  void begin_drain();
  bool at_boundary(const Connection& c) const;
  // Sends the connection to the supervisor, or, when that has to wait
  // (a full control queue, or ETOOMANYREFS), keeps it and tries again in
  // retry_handoffs.
  void hand_over(Connection& c);
  enum class Handoff { sent, later, failed };
  Handoff try_hand_over(Connection& c);
  void retry_handoffs();
  void adopt(proto::UniqueFd fd, std::string bytes, uint64_t idle_ms);
  // ---- upgrades: connections a service process takes over ----
  void begin_takeover(Connection& c, const proto::RequestHead& req, const RouteSettings& route);
  void take_over(Connection& c);
  void answer_listing(ResponseSlot& slot, const proto::RequestHead& req, const RouteSettings& route,
                      proto::UniqueFd directory, int root_fd, const std::string& relative);
  void on_take_refused(proto::UniqueFd fd, std::string_view payload, uint64_t asked_us);
  // Adopt messages the supervisor sent that this process has not taken yet
  // (the slot's passed_in against adopted_): they count as connections
  // when deciding whether it may accept.
  uint64_t adopts_in_flight();
  bool full();
  Connection* add_connection(proto::UniqueFd fd);
  void watch_overdue(int64_t now);
  void answer_error(ResponseSlot& slot, int status, bool keep_alive,
                    std::string_view extra_headers = {});
  void maybe_send_continue(Connection& c);

  void drain_responses();
  void release_responses();
  void cancel(uint64_t id);
  void on_response_record(uint32_t service, const shm::RecordView& rec);
  using PendingMap = std::pmr::unordered_map<uint64_t, Pending>;
  void fail_response(PendingMap::iterator it, const char* why);
  size_t service_of(uint32_t service_proc) const;
  void flush_rings();
  void write_dirty();
  void write_to(Connection& c);
  bool write_ready(Connection& c);
  bool finish_front(Connection& c, int64_t written_us);
  bool send_file_part(Connection& c, ResponseSlot& slot);
  bool resume_reading(Connection& c);
  void end_connection(Connection& c);
  void linger(Connection& c);
  // `by`: who ended it, for the responses it still owed (response_outcome.h).
  void close_connection(Connection& c, Closer by = Closer::server);
  static bool socket_failed(const Connection& c);
  void log_access(const Connection& c, const ResponseSlot& slot, const Outcome& o, uint64_t us);
  void count_response(const ResponseSlot& slot, const Outcome& o, uint64_t us, bool timed);
  void owe_unfinished(Connection& c);
  void account_unwritten(Connection& c, Closer by);
  shm::ProcessSlot& own_slot() { return env_.segment->slot(env_.index); }
  // A scoreboard counter this process alone writes: no read-modify-write
  // instruction needed, only a store others can load whole.
  static void count(uint64_t& field, uint64_t by = 1, bool set = false) {
    std::atomic_ref<uint64_t> f(field);
    f.store(set ? by : f.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
  void drop_finished();
  void sweep(int64_t now);
  void report_access_loss(int64_t now, bool at_exit = false);
  void expire_service_requests(Connection& c, int64_t now);
  bool sweep_connection(Connection& c, int64_t now);
  void begin_stop();
  static bool say_close(ResponseSlot& slot);
  int sleep_timeout();
  void update_date();

  WorkerEnv& env_;
  Router router_;
  std::string options_allow_;  // "Allow: ...\r\n" for OPTIONS * (Router::server_allow)
  // The normal form of a request path that needs one (Router::match); its
  // capacity is kept, so only a longer odd path than any before allocates.
  std::string path_scratch_;
  proto::RequestOrigin origin_;  // this process, as service processes see it
  EventLoop loop_;
  AccessLog access_log_;
  MetricsNames metrics_names_;                 // built on the first /metrics request
  std::vector<proto::UniqueFd> static_roots_;  // per route: its root (static routes only)
  // Per route: its open-file cache (static routes only).
  std::vector<std::unique_ptr<FileCache>> file_caches_;
  // Static responses whose file part is not sent yet -> the file they send
  // (a cached descriptor is shared, so the slot does not own it). An entry
  // of a slot that died with its connection is purged (answer_static).

  proto::UniqueFd signal_fd_;
  // A listening socket: `own` when it is this process's member of a
  // reuseport group (SO_REUSEPORT set), which no sibling can accept from;
  // `watched` while it is in the epoll set.
  struct ListenSocket {
    proto::UniqueFd fd;
    bool own = false;
    bool watched = false;
  };
  std::vector<ListenSocket> listeners_;
  std::unique_ptr<Incoming> spare_in_;  // a finished request's record, reused
  SlotPool slot_pool_;  // declared first, so it outlives connections_ (their queues point to it)
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  BlockCache pending_blocks_;  // pending_'s entries: one per request (block_cache.h)
  PendingMap pending_{&pending_blocks_};
  std::vector<uint64_t> dirty_;    // connections with new responses
  std::vector<uint64_t> writing_;  // dirty_ being written (see write_dirty)
  // Between drain_responses() and release_responses(): the response rings
  // hold what was read, and a complete response's body may stay there, to
  // be written straight from the ring (ResponseSlot::held_body).
  bool holding_bodies_ = false;
  std::vector<uint64_t> held_;         // connections with a held body
  std::vector<uint8_t> ring_held_;     // per response ring: released at the end
  std::vector<uint64_t> finished_;     // closed or handed over: dropped at the end of the iteration
  std::vector<RingChannel> channels_;  // per service process
  std::vector<uint32_t> overdue_reported_;  // per service process: incarnation reported overdue
  std::vector<uint64_t> inflight_scratch_;
  std::vector<uint8_t> awake_scratch_;
  std::vector<proto::HeaderView> response_headers_;  // a response head being read
  std::string response_head_copy_;  // its bytes, out of the ring (proto::own_head_views)
  std::vector<uint8_t> available_scratch_;
  proto::RequestEvents events_;           // what one parser slice produced
  std::vector<std::string_view> pieces_;  // body of Connection::in parsed, not yet sent
  uint64_t pieces_bytes_ = 0;
  proto::RequestHeadParts head_parts_;  // the request head being sent, in parts
  std::string read_buffer_;
  std::string date_;
  int64_t date_second_ = -1;
  proto::ParserLimits limits_;
  uint64_t next_connection_id_ = 1;
  uint64_t next_request_ = 1;
  uint32_t round_robin_ = 0;
  int64_t accept_resume_ms_ = 0;  // != 0: listeners unwatched until then (EMFILE)
  int64_t now_ms_ = 0;            // monotonic time of the current loop iteration
  int64_t now_us_ = 0;            // the same in microseconds
  int64_t next_sweep_ms_ = 0;
  int64_t stop_deadline_ms_ = 0;
  bool stopping_ = false;
  bool draining_ = false;  // reload: connections go to the next generation
  bool stop_now_ = false;
  // Adopt messages taken off the control socket (mirrored in the slot's
  // `adopted`, which the supervisor reads when placing the next one).
  uint64_t adopted_ = 0;
  // The supervisor said no more adopts can come (adopts_done): a stopping
  // process with no connections exits only then (or at its deadline), so a
  // connection handed over during a stop still finds it.
  bool adopts_done_ = false;
  // Draining: connections whose handoff has to wait (ids, oldest first),
  // tried again from next_handoff_ms_ on (kHandoffRetryMs apart) until
  // they go, get busy, or the drain's deadline ends the process.
  std::set<uint64_t> handoff_waiting_;
  int64_t next_handoff_ms_ = 0;
};

}  // namespace ringhttpd::worker
