// One client connection inside a network process: its socket, its streaming
// parser, and the ordered queue of responses for the requests it sent
// (pipelining: a response is written only when all before it are written).
// A slot waiting for a service process is filled in when the service's
// records arrive; the network process keeps a map from request id to slot.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proto/http_parser.h"
#include "proto/unique_fd.h"

namespace ringhttpd::worker {

// What the access log needs of a request, kept from its parse until its
// response is written (allocated only while the access log is on).
struct AccessInfo {
  std::string method;
  std::string target;
  std::string referer;
  std::string user_agent;
  uint8_t version_major = 1;
  uint8_t version_minor = 1;
};

struct OpenFile;  // worker/file_cache.h

struct ResponseSlot {
  std::string data;  // the bytes to send; complete once `ready`
  // The body of a complete response still in its ring record, sent after
  // `data` without being copied into it; valid only until the network
  // process's iteration releases its rings: what the socket did not take is
  // appended to `data` before that (NetworkProcess::release_responses).
  std::string_view held_body;
  // The response's bytes so far: `data`, then `held_body`.
  size_t size() const { return data.size() + held_body.size(); }
  // Drops the response's bytes (another answer takes their place).
  void clear_bytes() {
    data.clear();
    held_body = {};
  }
  uint64_t request_id = 0;  // != 0 while a service process owes the answer
  uint32_t service = 0;     // valid while request_id != 0: which process
  int64_t deadline_ms = 0;  // valid while request_id != 0: then 504
  bool ready = false;
  bool keep_alive = true;     // the connection stays open after this response
  bool head_only = false;     // head without body bytes (HEAD, 204, 304, or a 502 in place)
  bool head_request = false;  // the request was HEAD
  bool via_service = false;   // answered by a service process (for the latency histogram)
  int32_t route = -1;         // index of the route it matched, -1 for none
  int64_t start_us = 0;       // when the request was complete (monotonic us)
  bool retried = false;       // sent again after its service process died
  // The response being received from a service process (valid while
  // request_id != 0): its head arrived; body bytes announced and received.
  bool head_seen = false;
  uint64_t body_expected = 0;
  uint64_t body_got = 0;
  std::unique_ptr<AccessInfo> access;  // set while the access log is on
  // A static file's bytes, sent after `data` (the head) with sendfile: from
  // the slot's own descriptor, or from the open-file cache's (shared, kept
  // open while this slot needs it).
  proto::UniqueFd file;
  std::shared_ptr<const OpenFile> cached_file;
  uint64_t file_offset = 0;  // next byte of the file to send
  uint64_t file_left = 0;    // bytes of the file still to send
  uint64_t file_bytes = 0;   // the file part's whole length (access log)
  // The request's ring record, kept while request_id != 0 for a request
  // that may be sent twice (is_retryable); empty otherwise.
  std::string retry_record;
  // A response streamed from a service (its head arrived, its end not yet):
  // `data` holds what was received and not written; what was written is
  // dropped from it (compacted), so the status and body count live here.
  bool streaming = false;
  bool chunked = false;        // body pieces are framed as chunks for the client
  bool upload_open = false;    // the request's body is still being sent to the service
  int status = 0;              // the service's status, once its head arrived
  uint64_t body_bytes = 0;     // body bytes received from the service (access log)
  uint64_t credit_owed = 0;    // body bytes received and not yet credited back
  bool window_opened = false;  // kWindow sent: the service may use kBodyWindow
  bool http10 = false;         // the request was HTTP/1.0
  bool interim = false;        // a 100 Continue: not a response of its own
  // For the access log of a response cut short (NetworkProcess::cut_outcome):
  // its bytes written to the socket so far, head included (never reset,
  // unlike Connection::sent, which compaction moves), and the length of
  // the head a service response begins with.
  uint64_t written = 0;
  uint64_t head_len = 0;
};

// The request whose head arrived and whose end has not: routed at its head.
// For a service route its body goes to the service in pieces as it arrives,
// at most proto::kBodyWindow bytes beyond what the service credited back
// (reading pauses at the window); any other route discards the body and is
// answered at the end, as a request that arrived whole.
struct Incoming {
  proto::RequestHead head;
  uint64_t length = 0;          // announced, or kUnknownBodyLength
  const void* route = nullptr;  // RouteSettings* (nullptr: no route)
  bool to_service = false;
  bool dispatched = false;       // its head went to a service (or it was answered)
  uint64_t id = 0;               // request id, once dispatched (0: not sent)
  uint32_t service = 0;          // valid while id != 0
  ResponseSlot* slot = nullptr;  // its response, once dispatched
  uint64_t sent = 0;             // body bytes sent to the service
  uint64_t credited = 0;         // body bytes the service credited back
  uint64_t received = 0;         // body bytes parsed so far
};

// Slots whose responses were sent, kept by the network process for the
// next requests with their buffers' capacity (`data`, `retry_record`): in a
// steady stream of small answers a request allocates no slot and no buffer.
// Bounded: at most kMaxPooled slots, and a buffer past kMaxPooledBuffer is
// given back to the allocator rather than kept, so the pool holds at most
// 512 x (2 x 4 KiB + the slot) = about 4.3 MiB per network process, kept
// after a burst.
class SlotPool {
 public:
  static constexpr size_t kMaxPooled = 512;
  static constexpr size_t kMaxPooledBuffer = 4096;

  std::unique_ptr<ResponseSlot> take() {
    if (free_.empty()) return std::make_unique<ResponseSlot>();
    std::unique_ptr<ResponseSlot> slot = std::move(free_.back());
    free_.pop_back();
    return slot;
  }
  void give(std::unique_ptr<ResponseSlot> slot) {
    if (free_.size() >= kMaxPooled) return;  // freed here
    std::string data = keep(std::move(slot->data));
    std::string retry = keep(std::move(slot->retry_record));
    *slot = ResponseSlot{};  // releases its file, cached file and access info now
    slot->data = std::move(data);
    slot->retry_record = std::move(retry);
    free_.push_back(std::move(slot));
  }
  size_t size() const { return free_.size(); }

 private:
  static std::string keep(std::string buffer) {
    if (buffer.capacity() > kMaxPooledBuffer) return {};
    buffer.clear();
    return buffer;
  }
  std::vector<std::unique_ptr<ResponseSlot>> free_;
};

// The responses owed on one connection, oldest first. Each slot is its own
// allocation, so its address stays valid while a service process fills it
// in; the queue is a vector of pointers that an idle connection gives back
// (trim), so an idle connection costs no queue memory. Slots come from and
// go back to the process's pool when it has one.
class SlotQueue {
 public:
  void set_pool(SlotPool* pool) { pool_ = pool; }
  bool empty() const { return head_ == slots_.size(); }
  size_t size() const { return slots_.size() - head_; }
  ResponseSlot& operator[](size_t i) { return *slots_[head_ + i]; }
  ResponseSlot& front() { return *slots_[head_]; }
  const ResponseSlot& front() const { return *slots_[head_]; }
  ResponseSlot& back() { return *slots_.back(); }
  ResponseSlot& emplace_back() {
    return *slots_.emplace_back(pool_ != nullptr ? pool_->take()
                                                 : std::make_unique<ResponseSlot>());
  }
  void pop_front() {
    if (pool_ != nullptr) {
      pool_->give(std::move(slots_[head_++]));
    } else {
      slots_[head_++].reset();
    }
    if (head_ == slots_.size()) {
      slots_.clear();
      head_ = 0;
    }
  }
  void trim() {
    if (empty()) std::vector<std::unique_ptr<ResponseSlot>>().swap(slots_);
  }

 private:
  std::vector<std::unique_ptr<ResponseSlot>> slots_;
  size_t head_ = 0;  // slots_[0, head_) are already sent (null)
  SlotPool* pool_ = nullptr;
};

// Where a connection stands in its life. It only moves forward:
//
//   open --(close asked, error, EOF, stop)--> input_closed --(all answered)--> lingering
//     |                                            |                               |
//     +--(reload, between two requests)--> handed_over        closed <--(EOF, deadline)
//
// `closed` and `handed_over` connections are dropped at the end of the loop
// iteration (NetworkProcess::drop_finished), never in the middle of a call
// chain, so any function holding a Connection& may still look at it.
enum class ConnState : uint8_t {
  open,          // requests may still arrive
  input_closed,  // no more requests are read: answer what was asked, then end
  lingering,     // all answered; half-closed, input discarded until EOF or linger_until_ms
  handed_over,   // given to another process; this copy only waits to be dropped
  closed,        // ended; dropped at the end of the loop iteration
};

// What a connection is busy with, from its queue and parser: what a stop, a
// drain and the timeouts decide on.
enum class Activity {
  idle,       // nothing owed, nothing half received
  receiving,  // a request is arriving (its head or body is incomplete)
  waiting,    // the oldest response is still owed by a service process
  writing,    // the oldest response is ready and being written
};

struct Connection {
  Connection(uint64_t id_, proto::UniqueFd fd_, proto::ParserLimits limits)
      : id(id_), fd(std::move(fd_)), parser(limits) {}

  Activity activity() const {
    if (!slots.empty()) {
      const ResponseSlot& f = slots.front();
      return f.ready || (f.streaming && sent < f.data.size()) ? Activity::writing
                                                              : Activity::waiting;
    }
    return parser.mid_request() ? Activity::receiving : Activity::idle;
  }
  bool input_open() const { return state == ConnState::open; }
  void close_input() {
    if (state == ConnState::open) state = ConnState::input_closed;
  }
  bool finished() const { return state == ConnState::closed || state == ConnState::handed_over; }

  uint64_t id;
  proto::UniqueFd fd;
  proto::RequestParser parser;
  SlotQueue slots;
  std::string peer;  // client address (access log, X-Forwarded-For)
  ConnState state = ConnState::open;
  size_t sent = 0;               // bytes of slots.front() (data, then held_body) written
  std::string stash;             // bytes read but not parsed yet (budget reached, or draining);
                                 // at most one read's worth, and only while read_paused
  std::unique_ptr<Incoming> in;  // the request being received, past its head
  bool window_paused = false;    // reading waits for the service's credit
  int64_t last_active_ms = 0;    // last read or write progress
  int64_t request_start_ms = 0;  // valid while parser.mid_request()
  int64_t linger_until_ms = 0;   // valid while lingering
  bool peer_closed = false;      // read returned 0 or failed
  bool read_paused = false;      // too many responses queued, or draining; reads wait
  bool readable = false;         // edge-triggered: data may be waiting
  bool end_reported = false;     // EPOLLRDHUP/HUP/ERR came: read on to the EOF, even
                                 // after a short read (no later event will say so)
  bool continue_sent = false;    // "100 Continue" sent for the current request
  // An upgrade request a service takes over (worker/takeover.h): its encoded
  // head, kept until every earlier response is written; then the socket, the
  // head and the stash (the bytes after the head) go to the supervisor.
  // Non-empty: nothing more is read or parsed here.
  std::string takeover;
  int32_t takeover_service = -1;  // valid while takeover is set: index into services
  int64_t takeover_start_us = 0;  // valid while takeover is set: when its head was complete
};

}  // namespace ringhttpd::worker
