// The network process: owns client connections. One epoll loop accepts on
// the shared listening sockets (EPOLLEXCLUSIVE), reads and parses requests,
// answers `respond` routes itself (fast path), sends service routes over the
// rings to the least busy service process of the route's pool, collects
// their responses, and writes everything back in request order with writev.
//
// One loop iteration: wait (epoll) -> handle events -> read all response
// rings -> flush queued ring records -> wake each consumer that sleeps, once
// -> write to connections that got responses -> (every 250 ms) timeouts.
#pragma once

#include <sys/epoll.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/ring_codec.h"
#include "proto/unique_fd.h"
#include "worker/connection.h"
#include "worker/event_loop.h"
#include "worker/ring_writer.h"
#include "worker/router.h"
#include "worker/worker_env.h"

namespace ringhttpd::worker {

class NetworkProcess {
 public:
  explicit NetworkProcess(WorkerEnv& env);
  ~NetworkProcess();
  // Runs until stopped; returns the exit status.
  int run();

 private:
  struct Pending {
    uint64_t connection;
    ResponseSlot* slot;
  };

  bool start();
  void handle_event(const epoll_event& ev);
  void handle_signal();
  void handle_control();
  void accept_all(int listener);
  void refuse(int fd);
  static bool over_budget(Connection& c, size_t divisor);
  void read_from(Connection& c);
  void parse(Connection& c, std::string_view data);
  void parse_slice(Connection& c, std::string_view data);
  void pause_accepting();
  void resume_accepting();
  void add_response(Connection& c, proto::HttpRequest& req);
  void answer_fixed(ResponseSlot& slot, const RespondSettings& r);
  void dispatch(ResponseSlot& slot, Connection& c, const proto::HttpRequest& req,
                const RouteSettings& route);
  bool send_request(uint32_t service, uint64_t id, const proto::HttpRequest& req);
  void answer_error(ResponseSlot& slot, int status, bool keep_alive,
                    std::string_view extra_headers = {});
  void maybe_send_continue(Connection& c);

  void drain_responses();
  void on_response_record(const shm::RecordView& rec);
  void flush_rings();
  void write_dirty();
  void write_to(Connection& c);
  bool write_ready(Connection& c);
  bool resume_reading(Connection& c);
  void end_connection(Connection& c);
  void linger(Connection& c);
  void close_connection(Connection& c);
  void sweep(int64_t now);
  void expire_service_requests(Connection& c, int64_t now);
  bool sweep_connection(Connection& c, int64_t now);
  void begin_stop();
  int sleep_timeout();
  void update_date();

  WorkerEnv& env_;
  Router router_;
  proto::RequestOrigin origin_;  // this process, as service processes see it
  EventLoop loop_;
  proto::UniqueFd signal_fd_;
  std::vector<proto::UniqueFd> listeners_;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::unordered_map<uint64_t, Pending> pending_;
  std::vector<uint64_t> dirty_;       // connections with new responses
  std::vector<uint64_t> writing_;     // dirty_ being written (see write_dirty)
  std::vector<RingWriter> requests_;  // per service process
  std::vector<shm::Ring> responses_;  // per service process
  std::vector<uint64_t> inflight_scratch_;
  std::vector<uint8_t> available_scratch_;
  std::vector<proto::HttpRequest> parsed_;
  std::string encode_scratch_;
  std::string read_buffer_;
  std::string date_;
  int64_t date_second_ = -1;
  proto::ParserLimits limits_;
  uint64_t next_connection_id_ = 1;
  uint64_t next_request_ = 1;
  uint32_t round_robin_ = 0;
  int64_t accept_resume_ms_ = 0;  // != 0: listeners unwatched until then (EMFILE)
  int64_t now_ms_ = 0;            // monotonic time of the current loop iteration
  int64_t next_sweep_ms_ = 0;
  int64_t stop_deadline_ms_ = 0;
  bool stopping_ = false;
  bool stop_now_ = false;
};

}  // namespace ringhttpd::worker
