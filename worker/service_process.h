// The service process: runs one service's handler. It reads requests from
// the request ring of every network process and writes each response into
// the response ring back to the network process the request came from. It
// sleeps on its eventfd only after announcing it in every ring it reads (see
// shm/ring.h), so an idle service uses no CPU.
//
// Every request is a Stream (service_stream.h): its body arrives in pieces
// and its response leaves in pieces, each way under a window of
// proto::kBodyWindow bytes that the receiver refills with credit records.
// A handler that takes whole requests (Handler::handle) gets the body
// collected, up to max_body_bytes; a streaming one (handle_stream) reads it
// as it comes. The process drains its rings every iteration whatever the
// handlers do, so a slow handler never blocks the other requests on a ring.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/unique_fd.h"
#include "worker/access_log.h"
#include "worker/block_cache.h"
#include "worker/event_loop.h"
#include "worker/handler.h"
#include "worker/ring_channel.h"
#include "worker/worker_env.h"

namespace ringhttpd::worker {

class Stream;
struct StreamMarks;

class ServiceProcess : public HandlerLoop {
 public:
  explicit ServiceProcess(WorkerEnv& env);
  ~ServiceProcess();
  int run();

  // ---- for Stream ----
  // The stream has records to send (head, body, end, credit): they go at
  // the end of this loop iteration, batched (a whole response is sent when
  // it is given, Stream::respond; the mark still makes the iteration end
  // with a flush that wakes the peer).
  void mark_dirty(Stream& stream);
  // The stream's listener should run (from the loop, not from the caller).
  void mark_notify(Stream& stream);
  RingChannel& channel(uint32_t network) { return channels_[network]; }
  uint64_t epoch(uint32_t network) const { return epochs_[network]; }
  uint64_t max_body_bytes() const { return env_.network.max_body_bytes; }
  // The stream is over (its end was sent, or it was cancelled or refused):
  // it leaves its table and the in-flight count.
  void retire(Stream& stream, bool answered);
  // 500 for a record that is not a request (logged with `why`).
  void refuse_request(uint32_t network, uint64_t id, const char* why);

  // ---- HandlerLoop ----
  bool watch(int fd, uint32_t events, std::function<void(uint32_t)> ready) override;
  bool modify(int fd, uint32_t events) override;
  void unwatch(int fd) override;
  std::pmr::memory_resource& blocks() override { return blocks_; }
  void account_response(const AccessEntry& entry) override;

 private:
  bool start();
  bool drain_requests();
  void on_request_record(uint32_t network, const shm::RecordView& rec);
  void on_head(uint32_t network, const shm::RecordView& rec);
  void hand_over(const std::shared_ptr<Stream>& stream);
  void flush_rings();
  void run_listeners();
  int sleep_timeout();
  void handle_event(const epoll_event& ev);
  void handle_control();
  void on_network_gone(uint32_t network, uint64_t incarnation);
  void on_stop(bool graceful);
  void on_take(std::vector<proto::UniqueFd>& fds, const std::string& payload);
  void count_done(uint64_t inflight_delta, uint64_t answered);
  void publish_done();
  void publish_tunnels();
  void flush_access_log(int64_t now_ms, bool at_exit);
  template <typename F>
  void for_each_once(std::vector<std::shared_ptr<Stream>>& list,
                     std::vector<std::shared_ptr<Stream>>& scratch, bool StreamMarks::*mark, F f);

  // First member, so last destroyed: the streams and their table entries
  // are allocated from it (block_cache.h).
  BlockCache blocks_;
  WorkerEnv& env_;
  EventLoop loop_;
  proto::UniqueFd signal_fd_;
  // Lines for the answers of connections taken over (account_response);
  // before handler_, so it outlives the handler's last lines at exit.
  AccessLog access_log_;
  std::unique_ptr<Handler> handler_;
  bool streaming_ = false;             // the handler takes streams
  std::vector<RingChannel> channels_;  // per network process
  // Per network process: the requests not finished yet, by id.
  using StreamTable = std::pmr::unordered_map<uint64_t, std::shared_ptr<Stream>>;
  std::vector<StreamTable> streams_;
  std::vector<uint64_t> epochs_;  // per network process: bumped when it dies
  std::vector<std::shared_ptr<Stream>> dirty_;
  std::vector<std::shared_ptr<Stream>> notify_;
  std::vector<std::shared_ptr<Stream>> whole_;  // for the handler, after the drain
  // The lists above while they are walked (swapped: both keep their capacity).
  std::vector<std::shared_ptr<Stream>> handing_;
  std::vector<std::shared_ptr<Stream>> notifying_;
  std::vector<std::shared_ptr<Stream>> pumping_;
  uint64_t done_inflight_ = 0;  // finished since the last publish_done
  uint64_t done_answered_ = 0;
  std::vector<std::shared_ptr<Stream>> retired_;  // ended this iteration: freed after it
  struct Watch {
    uint64_t serial;
    std::shared_ptr<std::function<void(uint32_t)>> ready;
  };
  std::unordered_map<int, Watch> watches_;  // handler descriptors, by fd
  uint64_t next_watch_ = 1;
  void on_handler_event(uint64_t id, uint32_t events);
  bool stop_ = false;
  bool stopping_gracefully_ = false;  // stop once the handler holds no connection
  uint32_t published_tunnels_ = 0;    // connections_held() as last stored in the slot
  uint64_t taken_ = 0;                // take messages read off the control socket (slot taken_in)
};

}  // namespace ringhttpd::worker
