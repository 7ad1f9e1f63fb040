// The service process: runs one service's handler. It reads requests from
// the request ring of every network process, reassembles bodies that came in
// several records, hands each complete request to the handler, and writes the
// handler's response into the response ring back to the network process the
// request came from. It sleeps on its eventfd only after announcing it in
// every ring it reads (see shm/ring.h), so an idle service uses no CPU.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/unique_fd.h"
#include "worker/event_loop.h"
#include "worker/handler.h"
#include "worker/ring_channel.h"
#include "worker/worker_env.h"

namespace ringhttpd::worker {

class ServiceProcess {
 public:
  explicit ServiceProcess(WorkerEnv& env);
  ~ServiceProcess();
  int run();

  // Called by a Responder: encodes the response into the ring back to
  // `network` (queued if the ring is full) and updates the scoreboard. An
  // answer for a network process that died since (`epoch` is older) is
  // dropped: its rings now belong to the replacement.
  void send_response(uint32_t network, uint64_t epoch, uint64_t id, proto::HttpResponse response);

 private:
  struct Assembly {
    ServiceRequest request;
    uint64_t body_length = 0;
  };

  bool start();
  bool drain_requests();
  // Takes one record; returns the request it completed, if any.
  std::optional<Assembly> on_request_record(uint32_t network, const shm::RecordView& rec);
  std::optional<Assembly> take_body(uint32_t network, const shm::RecordView& rec, Assembly a);
  std::optional<Assembly> reject(uint32_t network, uint64_t id, const char* why);
  void complete(uint32_t network, uint64_t id, Assembly assembly);
  void flush_rings();
  int sleep_timeout();
  void handle_event(const epoll_event& ev);
  void handle_control();
  void on_network_gone(uint32_t network, uint64_t incarnation);
  void count_done(uint64_t inflight_delta, uint64_t answered);

  WorkerEnv& env_;
  EventLoop loop_;
  proto::UniqueFd signal_fd_;
  std::unique_ptr<Handler> handler_;
  std::vector<RingChannel> channels_;                            // per network process
  std::vector<std::unordered_map<uint64_t, Assembly>> partial_;  // per network process
  std::vector<uint64_t> epochs_;  // per network process: bumped when it dies
  std::string encode_scratch_;
  bool stop_ = false;
};

}  // namespace ringhttpd::worker
