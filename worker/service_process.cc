// The service process's loop, request reassembly and response encoding (see
// service_process.h).
#include "worker/service_process.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <optional>

#include "proto/control.h"
#include "proto/ring_codec.h"
#include "worker/child.h"
#include "worker/log.h"

namespace ringhttpd::worker {
namespace {

constexpr int kMaxEvents = 16;

// Answers through the ring the request came from; 500 if dropped unanswered.
class RingResponder : public Responder {
 public:
  RingResponder(ServiceProcess& owner, uint32_t network, uint64_t epoch, uint64_t id)
      : owner_(owner), network_(network), epoch_(epoch), id_(id) {}
  ~RingResponder() override {
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
    owner_.send_response(network_, epoch_, id_, std::move(response));
  }

 private:
  ServiceProcess& owner_;
  uint32_t network_;
  uint64_t epoch_;
  uint64_t id_;
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
  partial_.resize(n_network);
  epochs_.assign(n_network, 0);
}

ServiceProcess::~ServiceProcess() = default;

bool ServiceProcess::start() {
  const ServiceSettings& settings = env_.services[static_cast<size_t>(env_.service)];
  handler_ =
      make_handler(settings, ServiceIdentity{settings.name, static_cast<uint32_t>(::getpid()),
                                             env_.generation, env_.index});
  if (!handler_) {
    log_error("unknown handler type \"" + settings.type + "\"");
    return false;
  }
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
    std::atomic_ref<uint64_t>(env_.segment->slot(env_.slot()).heartbeat_ms)
        .store(static_cast<uint64_t>(monotonic_ms()), std::memory_order_relaxed);
    for (int i = 0; i < n; ++i) handle_event(events[i]);
    drain_requests();
    flush_rings();
  }
  return 0;
}

int ServiceProcess::sleep_timeout() {
  bool can_sleep = true;
  for (auto& channel : channels_) can_sleep = channel.prepare_sleep() && can_sleep;
  return can_sleep ? 1000 : 0;
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
    default:
      return;
  }
}

void ServiceProcess::handle_control() {
  for (;;) {
    proto::ControlMessage msg{};
    std::vector<proto::UniqueFd> fds;
    std::string err;
    const proto::RecvStatus st = proto::recv_control(env_.control_fd, msg, fds, err);
    if (st == proto::RecvStatus::again) return;
    if (st == proto::RecvStatus::closed) {
      supervisor_lost(env_);
      stop_ = true;
      return;
    }
    if (st == proto::RecvStatus::error) return log_error(err);
    if (msg.type == proto::ControlType::stop) stop_ = true;
    if (msg.type == proto::ControlType::peer_gone) on_network_gone(msg.arg, msg.arg2);
  }
}

// Network process `slot` died. What it had sent and this process had not
// finished will never be answered to anyone: drop it (and its share of the
// in-flight count), empty both rings, and tell the supervisor, which then
// starts the replacement on clean rings. Handlers still holding one of its
// requests answer into the void (the epoch changed).
void ServiceProcess::on_network_gone(uint32_t slot, uint64_t incarnation) {
  if (slot >= channels_.size()) {
    log_error("peer_gone for slot " + std::to_string(slot) + ", not a network process; ignored");
    return;
  }
  // Stale (the slot was given to a new process since): its rings are in use.
  if (env_.segment->slot(slot).incarnation != incarnation) return;
  ++epochs_[slot];
  uint64_t dropped = partial_[slot].size();
  partial_[slot].clear();
  // Also when broken: the replacement starts on clean rings.
  channels_[slot].discard_incoming([&](const shm::RecordView& rec) {
    if (rec.type == proto::kRequestHead) ++dropped;
  });
  count_done(dropped, 0);
  const std::string err =
      proto::send_control(env_.control_fd, {proto::ControlType::peer_released, slot});
  if (!err.empty()) log_error(err);
}

// In-flight requests finished (answered or dropped), on the scoreboard. A
// count that would go below zero stops at zero: the counter is shared memory
// other processes write, not something to trust blindly.
void ServiceProcess::count_done(uint64_t inflight_delta, uint64_t answered) {
  shm::ProcessSlot& slot = env_.segment->slot(env_.slot());
  std::atomic_ref<uint64_t> inflight(slot.inflight);
  uint64_t now = inflight.load(std::memory_order_relaxed);
  while (!inflight.compare_exchange_weak(now, now - std::min(now, inflight_delta),
                                         std::memory_order_relaxed)) {
  }
  if (answered != 0) {
    std::atomic_ref<uint64_t>(slot.requests).fetch_add(answered, std::memory_order_relaxed);
  }
}

bool ServiceProcess::drain_requests() {
  bool any = false;
  for (uint32_t n = 0; n < channels_.size(); ++n) {
    RingChannel& channel = channels_[n];
    shm::RecordView rec;
    while (channel.next(rec)) {
      // The record is copied out and released before the handler runs: a
      // request this process took is off the ring, so if the handler kills
      // the process, the network process knows it was taken (see
      // NetworkProcess::on_service_gone) and never sends it a second time
      // unless that is safe.
      std::optional<Assembly> done = on_request_record(n, rec);
      const uint64_t id = rec.id;
      channel.release();
      if (done) complete(n, id, std::move(*done));
      any = true;
    }
    if (channel.finish_receiving()) report_broken_peer(env_, n);
  }
  return any;
}

// A request arrives as a head record, then body records; the last one
// carries kRecordEnd. The network process is a peer like any other: a head
// that does not decode, or body bytes that do not add up to the head's
// length, end that request with 500 (never the process), and the body is
// reserved only up to max_body_bytes whatever length the head claims.
std::optional<ServiceProcess::Assembly> ServiceProcess::on_request_record(
    uint32_t network, const shm::RecordView& rec) {
  auto& partial = partial_[network];
  if (rec.type == proto::kRequestHead) {
    Assembly a;
    const size_t used =
        proto::decode_request_head(rec.payload, a.request.http, a.request.origin, a.body_length);
    if (used == 0) return reject(network, rec.id, "malformed request head");
    a.request.http.body.reserve(std::min<uint64_t>(a.body_length, env_.network.max_body_bytes));
    a.request.http.body.append(rec.payload.substr(used));
    return take_body(network, rec, std::move(a));
  }
  auto it = partial.find(rec.id);
  if (rec.type != proto::kRequestBody || it == partial.end()) return std::nullopt;
  Assembly a = std::move(it->second);
  partial.erase(it);
  a.request.http.body.append(rec.payload);
  return take_body(network, rec, std::move(a));
}

// Checks the body so far against the head's length: complete (returned),
// still coming (kept), or impossible (500).
std::optional<ServiceProcess::Assembly> ServiceProcess::take_body(uint32_t network,
                                                                  const shm::RecordView& rec,
                                                                  Assembly a) {
  const uint64_t got = a.request.http.body.size();
  if (got > a.body_length) return reject(network, rec.id, "more body than its length");
  if (!(rec.flags & proto::kRecordEnd)) {
    partial_[network][rec.id] = std::move(a);
    return std::nullopt;
  }
  if (got != a.body_length) return reject(network, rec.id, "less body than its length");
  return a;
}

std::optional<ServiceProcess::Assembly> ServiceProcess::reject(uint32_t network, uint64_t id,
                                                               const char* why) {
  log_error(std::string("bad request record from a network process (") + why + "); answering 500");
  send_response(network, epochs_[network], id,
                proto::HttpResponse{500, {}, "malformed request record\n"});
  return std::nullopt;
}

void ServiceProcess::complete(uint32_t network, uint64_t id, Assembly assembly) {
  handler_->handle(std::move(assembly.request),
                   std::make_unique<RingResponder>(*this, network, epochs_[network], id));
}

void ServiceProcess::send_response(uint32_t network, uint64_t epoch, uint64_t id,
                                   proto::HttpResponse response) {
  if (epoch != epochs_[network]) return count_done(1, 0);  // its network process died
  RingChannel& channel = channels_[network];
  encode_scratch_.clear();
  if (response.status < 200 || response.status > 599) {
    log_error("handler answered with status " + std::to_string(response.status) +
              ", not a final status; answering 500");
    response = proto::HttpResponse{500, {}, "handler gave no valid status\n"};
  }
  const bool encoded = proto::encode_response_head(response.status, response.headers,
                                                   response.body.size(), encode_scratch_);
  if (!encoded || !channel.send(proto::kResponseHead, proto::kResponseBody, id, encode_scratch_,
                                response.body)) {
    log_error("response headers larger than the ring can carry; answering 500");
    const std::string_view body = "response headers too large\n";
    encode_scratch_.clear();
    proto::encode_response_head(500, {}, body.size(), encode_scratch_);
    channel.send(proto::kResponseHead, proto::kResponseBody, id, encode_scratch_, body);
  }
  count_done(1, 1);
}

void ServiceProcess::flush_rings() {
  for (auto& channel : channels_) channel.flush();
}

}  // namespace ringhttpd::worker
