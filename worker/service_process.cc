// The service process's loop: records in, streams out (see
// service_process.h and service_stream.h).
#include "worker/service_process.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <ctime>

#include "proto/control.h"
#include "proto/ring_codec.h"
#include "proto/takeover.h"
#include "worker/child.h"
#include "worker/log.h"
#include "worker/service_stream.h"

namespace ringhttpd::worker {
namespace {

constexpr int kMaxEvents = 16;

// A stream and its shared_ptr control block are one allocation, which the
// block cache keeps only up to kMaxBlock bytes.
static_assert(sizeof(Stream) + 64 <= BlockCache::kMaxBlock, "streams would bypass the block cache");

// Answers a whole request through its stream; 500 if dropped unanswered.
class StreamResponder : public Responder {
 public:
  explicit StreamResponder(std::shared_ptr<Stream> stream) : stream_(std::move(stream)) {}
  ~StreamResponder() override {
    if (!done_) {
      proto::HttpResponse failed;
      failed.status = 500;
      failed.body = "500 Internal Server Error\n";
      respond(std::move(failed));
    }
  }
  void respond(proto::HttpResponse response) override {
    if (done_) return;
    done_ = true;
    stream_->respond(std::move(response));
  }

 private:
  std::shared_ptr<Stream> stream_;
  bool done_ = false;
};

}  // namespace

ServiceProcess::ServiceProcess(WorkerEnv& env) : env_(env) {
  const uint32_t n_network = env.segment->header().n_network;
  for (uint32_t n = 0; n < n_network; ++n) {
    channels_.emplace_back(env.segment->ring(n, env.service_proc, shm::Direction::response),
                           env.segment->ring(n, env.service_proc, shm::Direction::request),
                           env.wake_fds[n]);
  }
  streams_.reserve(n_network);
  for (uint32_t n = 0; n < n_network; ++n) streams_.emplace_back(&blocks_);
  epochs_.assign(n_network, 0);
}

// The handler goes first, while what its last calls reach (the stream
// tables, the lists, the channels) still exists: a handler holding a
// request at stop drops its responder, which answers. Every stream is
// cancelled before, so that answer goes nowhere (the rings are being
// given up with the process).
ServiceProcess::~ServiceProcess() {
  std::vector<std::shared_ptr<Stream>> open;
  for (auto& table : streams_) {
    for (auto& [id, stream] : table) open.push_back(stream);
  }
  for (auto& stream : open) stream->cancel(false);
  handler_.reset();  // connections it still held end here, each with its line
  flush_access_log(monotonic_ms(), true);
}

bool ServiceProcess::start() {
  const ServiceSettings& settings = env_.services[static_cast<size_t>(env_.service)];
  // Before the handler exists: a module's init may start threads, and a
  // thread takes its policy from the one that creates it.
  apply_scheduling(settings.scheduling,
                   "services[" + std::to_string(env_.service) + "].scheduling");
  handler_ =
      make_handler(settings, ServiceIdentity{settings.name, static_cast<uint32_t>(::getpid()),
                                             env_.generation, env_.index});
  if (!handler_) {
    // A known type's factory has logged why it could not start (a module
    // that does not load).
    const auto types = handler_type_names();
    if (std::find(types.begin(), types.end(), settings.type) == types.end()) {
      log_error("unknown handler type \"" + settings.type + "\"");
    }
    return false;
  }
  streaming_ = handler_->streams();
  // The same log as the network processes' (O_APPEND: whole lines from
  // every process), for the answers of connections taken over.
  const std::string target = handler_->takes_connections() ? env_.access_log : "off";
  if (!open_access_log(access_log_, target, env_)) return false;
  handler_->attach(*this);
  signal_fd_ = make_stop_signalfd();
  if (!watch_child_fds(loop_, signal_fd_.get(), env_)) return false;
  return report_ready(env_);
}

int ServiceProcess::run() {
  if (!start()) return 1;
  epoll_event events[kMaxEvents];
  while (!stop_) {
    const int n = loop_.wait(events, kMaxEvents, sleep_timeout());
    for (auto& channel : channels_) channel.cancel_sleep();
    const int64_t now = monotonic_ms();
    std::atomic_ref<uint64_t>(env_.segment->slot(env_.slot()).heartbeat_ms)
        .store(static_cast<uint64_t>(now), std::memory_order_relaxed);
    for (int i = 0; i < n; ++i) handle_event(events[i]);
    drain_requests();
    run_listeners();
    flush_rings();
    publish_tunnels();
    flush_access_log(now, false);  // a no-op unless the log is on
    if (stopping_gracefully_ && handler_->connections_held() == 0) stop_ = true;
  }
  return 0;
}

// A line and a count per answer a handler wrote itself; the class is
// counted like the network processes' (1xx included: a tunnel's 101).
void ServiceProcess::account_response(const AccessEntry& entry) {
  if (entry.status < 100 || entry.status > 599) return;
  shm::ProcessSlot& me = env_.segment->slot(env_.slot());
  std::atomic_ref<uint64_t> n(me.responses[static_cast<size_t>(entry.status / 100 - 1)]);
  n.store(n.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  access_log_.record(entry, ::time(nullptr));
}

// Written at least once a second (AccessLog::flush decides), and whole at
// exit; lines lost to a failed write are counted in the slot and reported,
// as the network processes do.
void ServiceProcess::flush_access_log(int64_t now_ms, bool at_exit) {
  if (!access_log_.enabled()) return;
  access_log_.flush(now_ms, at_exit);
  if (const uint64_t lost = access_log_.take_new_losses()) {
    std::atomic_ref<uint64_t> n(env_.segment->slot(env_.slot()).access_lines_lost);
    n.store(n.load(std::memory_order_relaxed) + lost, std::memory_order_relaxed);
  }
  if (std::string m = access_log_.loss_report(now_ms, at_exit); !m.empty()) log_warn(m);
}

int ServiceProcess::sleep_timeout() {
  const int64_t now = monotonic_ms();
  const int64_t next = handler_->poll(now);
  if (!notify_.empty() || !dirty_.empty()) return 0;
  bool can_sleep = true;
  for (auto& channel : channels_) can_sleep = channel.prepare_sleep() && can_sleep;
  if (!can_sleep) return 0;
  if (next < 0) return 1000;
  return static_cast<int>(std::clamp<int64_t>(next - now, 0, 1000));
}

void ServiceProcess::handle_event(const epoll_event& ev) {
  switch (token_kind(ev.data.u64)) {
    case TokenKind::signal:
      if (read_stop_signal(signal_fd_.get(), env_)) {
        supervisor_lost(env_);
        stop_ = true;
      }
      return;
    case TokenKind::control:
      return handle_control();
    case TokenKind::wake:
      return;  // the rings are read every iteration anyway
    case TokenKind::handler:
      return on_handler_event(token_id(ev.data.u64), ev.events);
    default:
      return;
  }
}

void ServiceProcess::handle_control() {
  for (;;) {
    proto::ControlMessage msg{};
    std::vector<proto::UniqueFd> fds;
    std::string err, payload;
    const proto::RecvStatus st = proto::recv_control(env_.control_fd, msg, fds, err, &payload);
    if (st == proto::RecvStatus::again) return;
    if (st == proto::RecvStatus::closed) {
      supervisor_lost(env_);
      stop_ = true;
      return;
    }
    if (st == proto::RecvStatus::error) return log_error(err);
    if (msg.type == proto::ControlType::stop) on_stop(msg.arg == 1);
    if (msg.type == proto::ControlType::peer_gone) on_network_gone(msg.arg, msg.arg2);
    if (msg.type == proto::ControlType::reopen_logs) {
      if (std::string e = access_log_.reopen(); !e.empty()) log_error(e);
    }
    if (msg.type == proto::ControlType::take) {
      on_take(fds, payload);
      // Counted after the connection is published, so the supervisor,
      // which reads the count first, can only overcount what is held.
      publish_tunnels();
      std::atomic_ref<uint64_t>(env_.segment->slot(env_.slot()).taken_in)
          .store(++taken_, std::memory_order_release);
    }
  }
}

// A graceful stop (nothing can reach the rings any more) still lets the
// connections this process took over run to their end; the supervisor's
// "stop now" at the drain deadline closes them (docs/lifecycle.md).
void ServiceProcess::on_stop(bool graceful) {
  if (graceful && handler_->connections_held() > 0) {
    if (!stopping_gracefully_) {
      log_info("stopping once " + std::to_string(handler_->connections_held()) +
               " taken-over connections end");
    }
    stopping_gracefully_ = true;
    return;
  }
  stop_ = true;
}

// A connection taken over (an upgrade), passed on by the supervisor: to the
// handler, with its request. The supervisor checked the payload; it is
// decoded again here, since a wrong one must not reach the handler.
void ServiceProcess::on_take(std::vector<proto::UniqueFd>& fds, const std::string& payload) {
  ServiceRequest request;
  std::string_view early;
  if (fds.size() != 1 || !proto::decode_takeover(payload, request.http, request.origin, early)) {
    log_error("take: malformed message (" + std::to_string(fds.size()) + " descriptors, " +
              std::to_string(payload.size()) + " bytes); connection closed");
    return;
  }
  handler_->take_connection(std::move(fds.front()), std::move(request), std::string(early));
}

// Network process `slot` died. What it had sent and this process had not
// finished will never be answered to anyone: its streams are cancelled (and
// leave the in-flight count), both rings are emptied, and the supervisor is
// told, which then starts the replacement on clean rings. Handlers still
// holding one of its requests see it cancelled.
void ServiceProcess::on_network_gone(uint32_t slot, uint64_t incarnation) {
  if (slot >= channels_.size()) {
    log_error("peer_gone for slot " + std::to_string(slot) + ", not a network process; ignored");
    return;
  }
  // Stale (the slot was given to a new process since): its rings are in use.
  if (env_.segment->slot(slot).incarnation != incarnation) return;
  ++epochs_[slot];
  std::vector<std::shared_ptr<Stream>> open;
  for (auto& [id, stream] : streams_[slot]) open.push_back(stream);
  for (auto& stream : open) stream->cancel(false);
  streams_[slot].clear();
  uint64_t dropped = 0;
  // Also when broken: the replacement starts on clean rings.
  channels_[slot].discard_incoming([&](const shm::RecordView& rec) {
    if (rec.type == proto::kRequestHead) ++dropped;
  });
  count_done(dropped, 0);
  publish_done();  // before the supervisor hears of it
  const std::string err =
      proto::send_control(env_.control_fd, {proto::ControlType::peer_released, slot});
  if (!err.empty()) log_error(err);
}

// In-flight requests finished (answered or dropped): added up here, and
// published on the scoreboard once per loop iteration (publish_done), not
// per request: the network processes write the same cache line for every
// request they send, and a write per answer from here made it bounce.
void ServiceProcess::count_done(uint64_t inflight_delta, uint64_t answered) {
  done_inflight_ += inflight_delta;
  done_answered_ += answered;
}

// A count that would go below zero stops at zero: the counter is shared
// memory other processes write, not something to trust blindly.
void ServiceProcess::publish_done() {
  if (done_inflight_ == 0 && done_answered_ == 0) return;
  shm::ProcessSlot& slot = env_.segment->slot(env_.slot());
  std::atomic_ref<uint64_t> inflight(slot.inflight);
  uint64_t now = inflight.load(std::memory_order_relaxed);
  while (!inflight.compare_exchange_weak(now, now - std::min(now, done_inflight_),
                                         std::memory_order_relaxed)) {
  }
  if (done_answered_ != 0) {
    std::atomic_ref<uint64_t>(slot.requests).fetch_add(done_answered_, std::memory_order_relaxed);
  }
  done_inflight_ = done_answered_ = 0;
}

// The connections the handler took over, in the slot's `connections` (a
// service process's own field there): the metrics show them, and the
// supervisor's graceful stop waits for a process only while it holds some.
void ServiceProcess::publish_tunnels() {
  const auto held = static_cast<uint32_t>(handler_->connections_held());
  if (held == published_tunnels_) return;
  published_tunnels_ = held;
  std::atomic_ref<uint32_t>(env_.segment->slot(env_.slot()).connections)
      .store(held, std::memory_order_relaxed);
}

void ServiceProcess::retire(Stream& stream, bool answered) {
  auto& table = streams_[stream.network()];
  auto it = table.find(stream.id());
  // Kept alive until the end of the iteration: the caller may be inside it.
  if (it != table.end() && it->second.get() == &stream) {
    retired_.push_back(std::move(it->second));
    table.erase(it);
  }
  count_done(1, answered ? 1 : 0);
}

// ---- the handler's descriptors ----
// A token carries the fd (low 24 bits) and the watch's serial, so an event
// for a descriptor unwatched (and its number reused) in the same batch is
// not delivered to the new watcher.
bool ServiceProcess::watch(int fd, uint32_t events, std::function<void(uint32_t)> ready) {
  if (fd < 0 || fd >= (1 << 24) || watches_.count(fd) != 0) {
    errno = EINVAL;
    return false;
  }
  const uint64_t serial = next_watch_++;
  const std::string err = loop_.add(
      fd, events, make_token(TokenKind::handler, serial << 24 | static_cast<uint64_t>(fd)));
  if (!err.empty()) return false;
  watches_.emplace(
      fd, Watch{serial, std::make_shared<std::function<void(uint32_t)>>(std::move(ready))});
  return true;
}

bool ServiceProcess::modify(int fd, uint32_t events) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) return false;
  return loop_
      .modify(fd, events,
              make_token(TokenKind::handler, it->second.serial << 24 | static_cast<uint64_t>(fd)))
      .empty();
}

void ServiceProcess::unwatch(int fd) {
  if (watches_.erase(fd) != 0) loop_.remove(fd);
}

void ServiceProcess::on_handler_event(uint64_t id, uint32_t events) {
  const int fd = static_cast<int>(id & ((1 << 24) - 1));
  auto it = watches_.find(fd);
  if (it == watches_.end() || it->second.serial != id >> 24) return;
  const auto ready = it->second.ready;  // the callback may unwatch itself
  (*ready)(events);
}

// What a network process sent cannot be a request: 500 under its id.
void ServiceProcess::refuse_request(uint32_t network, uint64_t id, const char* why) {
  log_error(std::string("bad request record from a network process (") + why + "); answering 500");
  const std::string_view body = "malformed request record\n";
  std::string encoded;
  proto::encode_response_head(500, {}, body.size(), encoded);
  channels_[network].send(proto::kResponseHead, proto::kResponseBody, id, encoded, body);
}

void ServiceProcess::mark_dirty(Stream& stream) {
  if (stream.queued.dirty) return;
  stream.queued.dirty = true;
  dirty_.push_back(stream.shared_from_this());
}

void ServiceProcess::mark_notify(Stream& stream) {
  if (stream.queued.notify) return;
  stream.queued.notify = true;
  notify_.push_back(stream.shared_from_this());
}

bool ServiceProcess::drain_requests() {
  bool any = false;
  for (uint32_t n = 0; n < channels_.size(); ++n) {
    RingChannel& channel = channels_[n];
    shm::RecordView rec;
    while (channel.next(rec)) {
      // Each record is taken (copied where it must be kept) and released
      // before any handler runs: a request this process took is off the
      // ring, so if the handler kills the process, the network process knows
      // it was taken (see NetworkProcess::on_service_gone) and never sends it
      // a second time unless that is safe.
      on_request_record(n, rec);
      channel.release();
      any = true;
    }
    if (channel.finish_receiving()) report_broken_peer(env_, n);
  }
  // New streams (streaming handlers) and whole requests go to the handler
  // now, off the ring.
  // (The lists are swapped with scratch ones, so both keep their capacity
  // from one iteration to the next.)
  handing_.swap(whole_);
  for (auto& stream : handing_) hand_over(stream);
  handing_.clear();
  return any;
}

// A request arrives as a head record, then body records; the last one
// carries kRecordEnd. The network process is a peer like any other: a head
// that does not decode, or body bytes that do not add up to the head's
// length, end that request with 500 (never the process). Records for a
// request this process no longer knows (answered, cancelled) are dropped.
void ServiceProcess::on_request_record(uint32_t network, const shm::RecordView& rec) {
  if (rec.type == proto::kRequestHead) return on_head(network, rec);
  auto& table = streams_[network];
  auto it = table.find(rec.id);
  if (it == table.end()) return;
  std::shared_ptr<Stream> stream = it->second;  // it may retire below
  switch (rec.type) {
    case proto::kRequestBody:
      if (stream->take_body(rec.payload, rec.flags & proto::kRecordEnd) &&
          (rec.flags & proto::kRecordEnd) && !streaming_) {
        whole_.push_back(stream);
      }
      return;
    case proto::kCredit: {
      uint64_t bytes = 0;
      if (proto::decode_credit(rec.payload, bytes)) stream->credit(bytes);
      return;
    }
    case proto::kWindow:
      return stream->open_window();
    case proto::kCancel:
      return stream->cancel(true);
    default:
      return;
  }
}

void ServiceProcess::on_head(uint32_t network, const shm::RecordView& rec) {
  ServiceRequest head;
  uint64_t body_length = 0;
  const size_t used = proto::decode_request_head(rec.payload, head.http, head.origin, body_length);
  auto& table = streams_[network];
  if (used == 0 || table.count(rec.id) != 0) {
    // Not a request (or a second head for one in progress): 500 under its id.
    refuse_request(network, rec.id, "malformed request head");
    count_done(1, 1);
    return;
  }
  auto stream =
      std::allocate_shared<Stream>(std::pmr::polymorphic_allocator<Stream>(&blocks_), *this,
                                   network, rec.id, std::move(head), body_length, !streaming_);
  table.emplace(rec.id, stream);
  const bool end = rec.flags & proto::kRecordEnd;
  if (!stream->take_body(rec.payload.substr(used), end)) return;
  // Handed over after the drain, off the ring (see drain_requests).
  if (streaming_ || end) whole_.push_back(stream);
}

void ServiceProcess::hand_over(const std::shared_ptr<Stream>& stream) {
  if (stream->cancelled()) return;
  if (streaming_) return handler_->handle_stream(stream);
  handler_->handle(stream->take_whole_request(), std::make_unique<StreamResponder>(stream));
}

// Listeners run here, outside any stream call; what they do may make more
// streams ready to notify (handled in the same pass).
void ServiceProcess::run_listeners() {
  for (size_t round = 0; round < 4 && !notify_.empty(); ++round) {
    for_each_once(notify_, notifying_, &StreamMarks::notify,
                  [](Stream& stream) { stream.notify(); });
  }
}

// Calls `f` for each stream of `list` (listed once: its `mark` flag says it
// is in the list), in the order they were marked, from `scratch`. The mark
// is cleared before `f` runs, so what `f` marks again goes into the emptied
// `list`, for later. Swapped, so both vectors keep their capacity.
template <typename F>
void ServiceProcess::for_each_once(std::vector<std::shared_ptr<Stream>>& list,
                                   std::vector<std::shared_ptr<Stream>>& scratch,
                                   bool StreamMarks::*mark, F f) {
  scratch.swap(list);
  for (auto& stream : scratch) {
    stream->queued.*mark = false;
    f(*stream);
  }
  scratch.clear();
}

void ServiceProcess::flush_rings() {
  for_each_once(dirty_, pumping_, &StreamMarks::dirty, [](Stream& stream) { stream.pump(); });
  publish_done();  // before the answers are flushed (and their peers woken)
  for (auto& channel : channels_) channel.flush();
  retired_.clear();
}

}  // namespace ringhttpd::worker
