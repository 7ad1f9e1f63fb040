// The service process: runs one service's handler. It reads requests from
// the request ring of every network process, reassembles bodies that came in
// several records, hands each complete request to the handler, and writes the
// handler's response into the response ring back to the network process the
// request came from. It sleeps on its eventfd only after announcing it in
// every ring it reads (see shm/ring.h), so an idle service uses no CPU.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/unique_fd.h"
#include "worker/event_loop.h"
#include "worker/handler.h"
#include "worker/ring_writer.h"
#include "worker/worker_env.h"

namespace ringhttpd::worker {

class ServiceProcess {
 public:
  explicit ServiceProcess(WorkerEnv& env);
  ~ServiceProcess();
  int run();

  // Called by a Responder: encodes the response into the ring back to
  // `network` (queued if the ring is full) and updates the scoreboard.
  void send_response(uint32_t network, uint64_t id, proto::HttpResponse response);

 private:
  struct Assembly {
    ServiceRequest request;
    uint64_t body_length = 0;
  };

  bool start();
  bool drain_requests();
  void on_request_record(uint32_t network, const shm::RecordView& rec);
  void complete(uint32_t network, uint64_t id, Assembly assembly);
  void flush_rings();
  int sleep_timeout();
  void handle_event(const epoll_event& ev);

  WorkerEnv& env_;
  EventLoop loop_;
  proto::UniqueFd signal_fd_;
  std::unique_ptr<Handler> handler_;
  std::vector<shm::Ring> requests_;                              // per network process
  std::vector<RingWriter> responses_;                            // per network process
  std::vector<std::unordered_map<uint64_t, Assembly>> partial_;  // per network process
  std::string encode_scratch_;
  bool stop_ = false;
};

}  // namespace ringhttpd::worker
