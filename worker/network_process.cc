// The network process's loop, connections and ring traffic (see
// network_process.h for the shape of one iteration).
#include "worker/network_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <ctime>
#include <optional>

#include "proto/control.h"
#include "proto/http_response.h"
#include "proto/ring_codec.h"
#include "proto/takeover.h"
#include "worker/child.h"
#include "worker/dispatch.h"
#include "worker/log.h"
#include "worker/metrics.h"
#include "worker/static_files.h"
#include "worker/takeover.h"

namespace ringhttpd::worker {
namespace {

constexpr size_t kReadBufferBytes = 65536;
// A connection's stash holds at most one read's bytes: they are stashed only
// when reading pauses, and reading resumes only after the stash is parsed
// again. So a handoff can always carry the stash in one control message.
static_assert(kReadBufferBytes <= proto::kMaxControlPayload);
constexpr size_t kMaxQueuedResponses = 64;   // per connection, then reading pauses
constexpr size_t kMaxQueuedBytes = 4 << 20;  // likewise, bytes of queued responses
constexpr size_t kParseSlice = 4096;         // the budget is checked between slices
// The shortest request the parser accepts ("GET / HTTP/1.0\r\n\r\n"): a slice
// of k times this many bytes completes at most k requests (see parse()).
constexpr size_t kMinRequestBytes = 18;
constexpr int kMaxEvents = 256;
// Few accepts per wake-up: with EPOLLEXCLUSIVE the kernel wakes one process per
// arrival, so taking only what woke us spreads connections across processes
// (taking the whole backlog let one process collect most of a burst).
constexpr int kAcceptsPerWake = 2;
constexpr int kMaxIov = 64;
constexpr uint64_t kMaxReserve = 1 << 20;  // at most this is reserved on a peer's say-so
constexpr int64_t kLingerMs = 2000;        // lingering close: discard input at most this long
constexpr int64_t kTrimAfterMs = 200;      // idle this long: give back per-request memory
// Stopping: an idle keep-alive connection quiet this long is closed.
constexpr int64_t kStopIdleMs = 1000;
// Draining: a handoff the control socket cannot take now (its queue full,
// or ETOOMANYREFS) is tried again this much later.
constexpr int64_t kHandoffRetryMs = 5;
constexpr uint32_t kConnectionEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

std::atomic_ref<uint64_t> inflight_of(shm::ProcessSlot& slot) {
  return std::atomic_ref<uint64_t>(slot.inflight);
}

bool slot_ready(shm::ProcessSlot& slot) {
  return std::atomic_ref<shm::ProcessState>(slot.state).load(std::memory_order_acquire) ==
         shm::ProcessState::ready;
}

// The client's address as text, for the access log.
std::string peer_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  char text[INET6_ADDRSTRLEN] = {};
  const void* addr =
      ss.ss_family == AF_INET6
          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr)
          : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&ss)->sin_addr);
  return ::inet_ntop(ss.ss_family, addr, text, sizeof text) != nullptr ? text : "";
}

// Bytes the client sent that are not read yet.
bool input_waiting(const Connection& c) {
  char byte;
  return ::recv(c.fd.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

}  // namespace

NetworkProcess::NetworkProcess(WorkerEnv& env)
    : env_(env),
      router_(env.routes),
      options_allow_("Allow: " + Router::server_allow(env.routes) + "\r\n"),
      origin_{static_cast<uint32_t>(::getpid()), env.generation, env.index, {}} {
  limits_.max_header_bytes = env.network.max_header_bytes;
  limits_.max_target_bytes = env.network.max_target_bytes;
  limits_.max_body_bytes = env.network.max_body_bytes;
  read_buffer_.resize(kReadBufferBytes);
  const uint32_t n_service = env.segment->header().n_service;
  for (uint32_t s = 0; s < n_service; ++s) {
    channels_.emplace_back(env.segment->ring(env.index, s, shm::Direction::request),
                           env.segment->ring(env.index, s, shm::Direction::response),
                           env.wake_fds[env.segment->header().n_network + s]);
  }
  overdue_reported_.assign(n_service, 0);
  // Request ids: the service's incarnation (bits 40-63), this process's
  // incarnation (bits 28-39) and a counter, so no two network incarnations
  // of a slot ever use the same id with the same service incarnation.
  next_request_ = uint64_t{env.segment->slot(env.index).incarnation & 0xfff} << 28;
}

NetworkProcess::~NetworkProcess() = default;

// The descriptors the static routes' open-file caches may hold in all: what
// they ask for, within RLIMIT_NOFILE after max_connections clients (the
// soft limit is raised toward the hard one when that is short).
uint64_t NetworkProcess::static_cache_fds() {
  uint64_t wanted = 0;
  for (const RouteSettings& r : env_.routes) {
    if (r.kind == RouteSettings::Kind::static_files) wanted += r.static_files.cache_entries;
  }
  rlimit now{};
  if (wanted == 0 || ::getrlimit(RLIMIT_NOFILE, &now) != 0) return 0;
  const CacheFdPlan plan =
      plan_cache_fds(wanted, env_.network.max_connections, now.rlim_cur, now.rlim_max);
  if (plan.soft != now.rlim_cur) {
    const rlimit want{plan.soft, now.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &want) != 0) {
      log_warn(errno_message("setrlimit(RLIMIT_NOFILE) for static.cache_entries"));
      return 0;
    }
  }
  if (plan.entries < wanted) {
    log_warn("static.cache_entries: " + std::to_string(wanted) + " wanted, " +
             std::to_string(plan.entries) + " fit in RLIMIT_NOFILE " + std::to_string(plan.soft) +
             " beside network.max_connections");
  }
  return plan.entries;
}

bool NetworkProcess::start() {
  apply_scheduling(env_.network.scheduling, "network.scheduling");
  signal_fd_ = make_stop_signalfd();
  if (!watch_child_fds(loop_, signal_fd_.get(), env_)) return false;
  // Each static route's root, opened once (O_PATH): files are opened
  // beneath it, so the root cannot be swapped for a path outside it.
  static_roots_.resize(env_.routes.size());
  file_caches_.resize(env_.routes.size());
  uint64_t cache_fds = static_cache_fds();  // shared by the routes, in order
  for (size_t i = 0; i < env_.routes.size(); ++i) {
    const RouteSettings& r = env_.routes[i];
    if (r.kind != RouteSettings::Kind::static_files) continue;
    static_roots_[i] =
        proto::UniqueFd(::open(r.static_files.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!static_roots_[i]) {
      log_error("routes[" + std::to_string(i) +
                "].static.root: " + errno_message("open " + r.static_files.root));
      return false;
    }
    const uint64_t entries = std::min(r.static_files.cache_entries, cache_fds);
    cache_fds -= entries;
    file_caches_[i] =
        std::make_unique<FileCache>(entries, static_cast<int64_t>(r.static_files.cache_valid_ms));
  }
  if (!open_access_log(access_log_, env_.access_log, env_)) return false;
  // The listening sockets arrive on the control socket once the whole
  // generation is ready (or at once for a replacement in a serving one).
  update_date();
  return report_ready(env_);
}

int NetworkProcess::run() {
  if (!start()) return 1;
  epoll_event events[kMaxEvents];
  while (!stop_now_) {
    const int n = loop_.wait(events, kMaxEvents, sleep_timeout());
    for (auto& channel : channels_) channel.cancel_sleep();
    now_us_ = monotonic_us();
    now_ms_ = now_us_ / 1000;
    count(own_slot().heartbeat_ms, static_cast<uint64_t>(now_ms_), /*set=*/true);
    update_date();
    for (int i = 0; i < n; ++i) handle_event(events[i]);
    drain_responses();
    write_dirty();
    release_responses();
    if (now_ms_ >= next_sweep_ms_) sweep(now_ms_);
    update_accepting();
    flush_rings();  // last: anything above may have published requests
    if (draining_ && !handoff_waiting_.empty() && now_ms_ >= next_handoff_ms_) retry_handoffs();
    drop_finished();
    // A drain ends when every connection went; a stop when every connection
    // ended and none can still be handed to this process (adopts_done).
    const bool done =
        (stopping_ || draining_) &&
        may_end_loop(connections_.empty(), adopts_in_flight(), draining_, adopts_done_);
    if ((stopping_ || draining_) && (done || now_ms_ >= stop_deadline_ms_)) stop_now_ = true;
  }
  // The drain or stop deadline: what is still open is cut here, and
  // accounted for (a line each in the access log) before the last flush.
  for (auto& [id, c] : connections_) close_connection(*c, Closer::server);
  access_log_.flush(0, true);
  report_access_loss(monotonic_ms(), /*at_exit=*/true);
  return 0;
}

// Announces sleep on every response ring; any ring with data means no sleep.
int NetworkProcess::sleep_timeout() {
  bool can_sleep = true;
  for (auto& channel : channels_) can_sleep = channel.prepare_sleep() && can_sleep;
  if (!can_sleep || !dirty_.empty()) return 0;
  if (draining_ && !handoff_waiting_.empty()) {
    return static_cast<int>(std::clamp<int64_t>(next_handoff_ms_ - monotonic_ms(), 0, 250));
  }
  if (connections_.empty() && !stopping_) return 1000;
  return static_cast<int>(std::clamp<int64_t>(next_sweep_ms_ - monotonic_ms(), 0, 250));
}

void NetworkProcess::update_date() {
  const int64_t now = ::time(nullptr);
  if (now == date_second_) return;
  date_second_ = now;
  date_ = proto::http_date(now);
}

void NetworkProcess::handle_event(const epoll_event& ev) {
  const uint64_t id = token_id(ev.data.u64);
  switch (token_kind(ev.data.u64)) {
    case TokenKind::signal:
      return handle_signal();
    case TokenKind::control:
      return handle_control();
    case TokenKind::wake:
      return;  // the rings are read every iteration anyway
    case TokenKind::listener:
      if (id < listeners_.size() && !stopping_ && !draining_) accept_all(listeners_[id].fd.get());
      return;
    case TokenKind::connection: {
      auto it = connections_.find(id);
      if (it == connections_.end() || it->second->finished()) return;
      Connection& c = *it->second;
      // A reset is seen here too when the connection is not being read
      // (its input closed: Connection: close, a stop; or paused): nobody
      // is left to answer, and its requests are cancelled now.
      if ((ev.events & EPOLLERR) && c.state != ConnState::lingering && socket_failed(c)) {
        return close_connection(c, Closer::client);
      }
      if (ev.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c.readable = true;
      if (ev.events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c.end_reported = true;
      if (c.state == ConnState::lingering) return linger(c);
      if (c.readable && !c.read_paused) read_from(c);
      if (!c.finished()) write_to(c);
      return;
    }
    case TokenKind::handler:
      return;  // service processes only
  }
}

bool NetworkProcess::socket_failed(const Connection& c) {
  int err = 0;
  socklen_t len = sizeof err;
  return ::getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0;
}

// Only a stop signal that finds the supervisor gone gets here: stop now.
void NetworkProcess::handle_signal() {
  if (!read_stop_signal(signal_fd_.get(), env_)) return;
  supervisor_lost(env_);
  stop_now_ = true;
}

void NetworkProcess::handle_control() {
  for (;;) {
    proto::ControlMessage msg{};
    std::vector<proto::UniqueFd> fds;
    std::string err, payload;
    switch (proto::recv_control(env_.control_fd, msg, fds, err, &payload)) {
      case proto::RecvStatus::again:
        return;
      case proto::RecvStatus::closed:
        supervisor_lost(env_);
        stop_now_ = true;
        return;
      case proto::RecvStatus::error:
        log_error(err);
        return;
      case proto::RecvStatus::ok:
        handle_control_message(msg, fds, payload);
        break;
    }
    // Descriptors that came with any other message close here, unused.
  }
}

void NetworkProcess::handle_control_message(const proto::ControlMessage& msg,
                                            std::vector<proto::UniqueFd>& fds,
                                            std::string& payload) {
  switch (msg.type) {
    case proto::ControlType::listeners:
      return add_listeners(fds);
    case proto::ControlType::stop:
      if (msg.arg == 0) stop_now_ = true;
      return begin_stop();
    case proto::ControlType::peer_gone:
      return on_service_gone(msg.arg, msg.arg2);
    case proto::ControlType::drain:
      return begin_drain();
    case proto::ControlType::reopen_logs:
      if (std::string e = access_log_.reopen(); !e.empty()) log_error(e);
      return;
    case proto::ControlType::adopt:
      if (fds.size() == 1) return adopt(std::move(fds.front()), std::move(payload), msg.arg2);
      log_error("adopt message without exactly one descriptor; ignored");
      return;
    case proto::ControlType::siblings_changed:
      if (!fds.empty() || !payload.empty()) {
        log_error("siblings_changed message with descriptors or a payload; ignored");
        return;
      }
      return on_siblings_changed();
    case proto::ControlType::take_refused:
      if (fds.size() != 1) log_error("take_refused message without exactly one descriptor");
      if (fds.empty()) return;
      return on_take_refused(std::move(fds.front()), payload, msg.arg2);  // others close unused
    case proto::ControlType::adopts_done:
      if (!fds.empty() || !payload.empty()) {
        log_error("adopts_done message with descriptors or a payload; ignored");
        return;
      }
      adopts_done_ = true;
      return;
    default:
      log_warn("unexpected control message " + std::to_string(static_cast<uint32_t>(msg.type)));
  }
}

void NetworkProcess::add_listeners(std::vector<proto::UniqueFd>& fds) {
  if (stopping_ || draining_) return;  // closed here, unused
  for (auto& fd : fds) {
    int reuseport = 0;
    socklen_t len = sizeof reuseport;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &reuseport, &len);
    listeners_.push_back(ListenSocket{std::move(fd), reuseport != 0, false});
  }
  update_accepting();
}

// Graceful stop: no new connections; every response not yet formatted says
// "Connection: close" and ends its connection; a connection whose answer
// was already formatted with keep-alive stays open for the client's next
// request, which is answered with close. Idle connections are closed once
// quiet (see sweep_connection), never under a request that is arriving.
void NetworkProcess::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  draining_ = false;  // a stop during a reload's drain: serve here, with close
  handoff_waiting_.clear();
  stop_deadline_ms_ = monotonic_ms() + env_.network.drain_timeout_ms;
  update_accepting();
  listeners_.clear();
  for (auto& [id, c] : connections_) {
    if (c->slots.empty() || c->state != ConnState::open) continue;
    ResponseSlot& last = c->slots.back();
    if (c->in && c->in->dispatched) {  // its body is still arriving: read it, then close
      last.keep_alive = false;
      continue;
    }
    const bool unsent = c->slots.size() > 1 || c->sent == 0;
    if (!last.ready || last.request_id != 0 || (unsent && say_close(last))) {
      last.keep_alive = false;
      c->close_input();
    }
  }
}

// A response formatted before the stop, not written yet: its
// "Connection: keep-alive" (always the head's last line, see
// proto/http_response.cc) becomes "close". False when it has no such line
// (100 Continue, an error that already says close).
bool NetworkProcess::say_close(ResponseSlot& slot) {
  constexpr std::string_view kKeep = "Connection: keep-alive\r\n\r\n";
  constexpr std::string_view kClose = "Connection: close\r\n\r\n";
  const size_t end = slot.data.find("\r\n\r\n");
  if (end == std::string::npos || end + 4 < kKeep.size()) return false;
  const size_t at = end + 4 - kKeep.size();
  if (std::string_view(slot.data).substr(at, kKeep.size()) != kKeep) return false;
  slot.data.replace(at, kKeep.size(), kClose);
  return true;
}

// Reload: the next generation is serving. Stop accepting, and hand every
// connection over between two requests: at once when it is idle, otherwise
// when its last response is written (reading stops after the request being
// received, see parse()).
void NetworkProcess::begin_drain() {
  if (draining_ || stopping_) return;
  draining_ = true;
  stop_deadline_ms_ = monotonic_ms() + env_.network.drain_timeout_ms;
  update_accepting();
  listeners_.clear();
  for (auto& [id, c] : connections_) {
    if (at_boundary(*c)) hand_over(*c);  // dropped later: the map does not change here
  }
}

// Between two requests: nothing owed, nothing half parsed, still open both
// ways, and not promised to a service (takeover).
bool NetworkProcess::at_boundary(const Connection& c) const {
  return c.state == ConnState::open && c.activity() == Activity::idle && !c.peer_closed &&
         c.takeover.empty();
}

// Passes the socket and the bytes read but not parsed to the supervisor,
// which gives them to a network process of the next generation. The socket
// leaves this epoll set explicitly: the open socket lives on elsewhere, so
// closing this descriptor alone would not remove it.
//
// Never blocks: when the control socket cannot take it now (the
// supervisor's queue is full, or ETOOMANYREFS: Linux caps the descriptors a
// user has in flight at RLIMIT_NOFILE, which an unprivileged process
// handing over many connections reaches), the connection stays here, served
// as before, and is tried again kHandoffRetryMs later, until the drain's
// deadline.
void NetworkProcess::hand_over(Connection& c) {
  if (try_hand_over(c) != Handoff::later) return;
  handoff_waiting_.insert(c.id);
  if (next_handoff_ms_ <= now_ms_) next_handoff_ms_ = now_ms_ + kHandoffRetryMs;
}

NetworkProcess::Handoff NetworkProcess::try_hand_over(Connection& c) {
  if (c.stash.size() > proto::kMaxControlPayload) {  // not reached: see kReadBufferBytes
    log_error("handoff: " + std::to_string(c.stash.size()) + " bytes unparsed; closed");
    close_connection(c);
    return Handoff::failed;
  }
  const auto idle_ms = static_cast<uint64_t>(std::max<int64_t>(0, now_ms_ - c.last_active_ms));
  std::string err;
  const proto::SendStatus st = proto::try_send_control(
      env_.control_fd, {proto::ControlType::handoff, 0, idle_ms}, {c.fd.get()}, c.stash, err);
  if (st == proto::SendStatus::again) return Handoff::later;
  if (st == proto::SendStatus::error) {
    log_error("handoff: " + err);
    close_connection(c);
    return Handoff::failed;
  }
  loop_.remove(c.fd.get());
  c.state = ConnState::handed_over;
  finished_.push_back(c.id);
  return Handoff::sent;
}

// The waiting handoffs, oldest first, until one has to wait again (the
// rest would too). One that got busy meanwhile (its client sent a request)
// leaves the list: it goes at its next boundary (write_to).
void NetworkProcess::retry_handoffs() {
  for (auto it = handoff_waiting_.begin(); it != handoff_waiting_.end();) {
    auto c = connections_.find(*it);
    if (c == connections_.end() || c->second->finished() || !at_boundary(*c->second)) {
      it = handoff_waiting_.erase(it);
      continue;
    }
    if (try_hand_over(*c->second) == Handoff::later) {
      next_handoff_ms_ = now_ms_ + kHandoffRetryMs;
      return;
    }
    it = handoff_waiting_.erase(it);
  }
}

uint64_t NetworkProcess::adopts_in_flight() {
  const uint64_t sent =
      std::atomic_ref<uint64_t>(own_slot().passed_in).load(std::memory_order_acquire);
  return sent > adopted_ ? sent - adopted_ : 0;
}

// At max_connections, counting the connections on their way here: the
// supervisor placed those against the same limit, so accepting in their
// place would leave them without room (or without descriptors).
bool NetworkProcess::full() {
  return connections_.size() + adopts_in_flight() >= env_.network.max_connections;
}

// A connection handed over by a network process of the previous generation:
// continue it as if it had been accepted here, starting with the bytes the
// other process read and did not parse.
// While stopping, it is served here too (with Connection: close).
//
// It has been idle for `idle_ms` (as the other process and the supervisor
// counted): its keep-alive timeout goes on from there, not from zero, so
// frequent reloads do not keep idle connections forever. (The supervisor's
// word, bounded: at most the timeout, which closes it at the next sweep.)
//
// The supervisor sends one only where it fits (master/adopt_placement.h);
// one that does not (a supervisor that miscounted) is closed with a FIN
// rather than held past max_connections, whose descriptors RLIMIT_NOFILE
// was planned for.
void NetworkProcess::adopt(proto::UniqueFd fd, std::string bytes, uint64_t idle_ms) {
  Connection* c = nullptr;
  if (draining_ || connections_.size() < env_.network.max_connections) {
    c = add_connection(std::move(fd));
  } else {
    log_warn("adopt: already at network.max_connections (" +
             std::to_string(env_.network.max_connections) + "); closed");
    proto::close_unserved(std::move(fd));
  }
  // Taken, after its connection was published (the supervisor reads
  // `taken_in` first, so it can only overcount).
  std::atomic_ref<uint64_t>(own_slot().taken_in).store(++adopted_, std::memory_order_release);
  if (c == nullptr) return;
  const auto limit = static_cast<uint64_t>(env_.network.keepalive_timeout_ms);
  c->last_active_ms = now_ms_ - static_cast<int64_t>(std::min(idle_ms, limit));
  if (draining_) {  // this generation is being replaced too: pass it on
    c->stash = std::move(bytes);
    return hand_over(*c);
  }
  c->readable = true;
  if (!bytes.empty()) parse(*c, bytes);
  if (!c->finished() && c->readable && !c->read_paused) read_from(*c);
  if (!c->finished()) dirty_.push_back(c->id);
}

// An upgrade request for a route whose service takes connections over: its
// head is encoded now (the views point into the read buffer), and the
// connection goes once every earlier response is written (write_to). A head
// that could never travel in a control message is 431, as for a ring.
void NetworkProcess::begin_takeover(Connection& c, const proto::RequestHead& req,
                                    const RouteSettings& route) {
  origin_.client = c.peer;
  if (!head_parts_.build(req, origin_, 0) ||
      head_parts_.size() + proto::kTakeoverPrefix > proto::kMaxControlPayload) {
    ResponseSlot& slot = new_slot(c, req);
    answer_error(slot, 431, false);
    c.close_input();
    dirty_.push_back(c.id);
    return;
  }
  c.takeover.clear();
  head_parts_.append_to(c.takeover);
  c.takeover_service = route.service_index;
  c.takeover_start_us = now_us_;
  dirty_.push_back(c.id);  // write_to passes it on once nothing is owed before it
}

// Passes the socket, the upgrade's head and the bytes read after it to the
// supervisor, which gives them to a process of the service (or, when none
// can take it, back here with take_refused, or answers 503 itself). The socket leaves this epoll
// set explicitly, as in a handoff. Those bytes are at most one read's worth; with a large head they
// may not fit in one message: 503, and the connection closes.
void NetworkProcess::take_over(Connection& c) {
  const std::string payload = proto::encode_takeover(c.takeover, c.stash);
  c.takeover.clear();
  if (payload.empty()) {
    log_warn("takeover: head and early bytes exceed one control message; answered 503");
    answer_error(c.slots.emplace_back(), 503, false);
    c.close_input();
    dirty_.push_back(c.id);
    return;
  }
  loop_.remove(c.fd.get());
  const std::string err =
      proto::send_control(env_.control_fd,
                          {proto::ControlType::takeover, static_cast<uint32_t>(c.takeover_service),
                           static_cast<uint64_t>(c.takeover_start_us)},
                          {c.fd.get()}, payload);
  if (!err.empty()) {
    log_error("takeover: " + err);
    return close_connection(c);
  }
  c.state = ConnState::handed_over;
  finished_.push_back(c.id);
}

// A connection take_over passed on that no process of its service could
// take (control message `take_refused`): the client gets the 503 the
// supervisor would have written, and it is counted and logged here as any
// response is (its route found again from the request in the payload).
// The socket is non-blocking and its buffer empty: one send, or nothing if
// the client is gone. `asked_us` is this process's own clock, as sent,
// passed back by the supervisor; a value past now reads as no wait.
void NetworkProcess::on_take_refused(proto::UniqueFd fd, std::string_view payload,
                                     uint64_t asked_us) {
  const ssize_t n = ::send(fd.get(), proto::kTakeoverRefused.data(), proto::kTakeoverRefused.size(),
                           MSG_NOSIGNAL | MSG_DONTWAIT);
  proto::close_unserved(std::move(fd));  // a FIN, not a reset over bytes the client sent
  ResponseSlot slot;
  slot.data = proto::kTakeoverRefused;
  slot.written = n > 0 ? static_cast<uint64_t>(n) : 0;
  const bool whole = slot.written == slot.data.size();
  const Outcome o = whole ? written_outcome(slot) : cut_outcome(slot, Closer::client);
  const int64_t now = monotonic_us();
  const int64_t asked =
      asked_us > static_cast<uint64_t>(now) ? now : static_cast<int64_t>(asked_us);
  const auto us = static_cast<uint64_t>(now - asked);
  proto::HttpRequest req;
  proto::RequestOrigin origin;
  std::string_view early;
  if (!proto::decode_takeover(payload, req, origin, early)) {
    log_error("take_refused message with a malformed payload; answered 503, not logged");
    return count_response(slot, o, us, whole);  // counted, under no route
  }
  const RouteMatch match = router_.match(req, path_scratch_);
  if (match.route != nullptr) {
    slot.route = static_cast<int32_t>(match.route - env_.routes.data());
    slot.via_service = true;  // a service's route, answered for it
  }
  count_response(slot, o, us, whole);
  if (!access_log_.enabled()) return;
  AccessEntry e;
  e.remote = origin.client;
  e.method = req.method;
  e.target = req.target;
  e.version_major = req.version_major;
  e.version_minor = req.version_minor;
  e.referer = req.header("Referer");
  e.user_agent = req.header("User-Agent");
  e.status = o.status;
  e.body_bytes = o.body_bytes;
  e.duration_ms = static_cast<double>(us) / 1e3;
  access_log_.record(e, ::time(nullptr));
}

Connection* NetworkProcess::add_connection(proto::UniqueFd fd) {
  const int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const uint64_t id = next_connection_id_++;
  if (std::string e = loop_.add(fd.get(), kConnectionEvents, make_token(TokenKind::connection, id));
      !e.empty()) {
    log_error(e);
    return nullptr;
  }
  auto c = std::make_unique<Connection>(id, std::move(fd), limits_);
  c->slots.set_pool(&slot_pool_);
  c->last_active_ms = now_ms_;
  c->peer = peer_address(c->fd.get());  // access log, X-Forwarded-For
  Connection* raw = c.get();
  connections_.emplace(id, std::move(c));
  publish_connections();
  count(own_slot().accepted);
  return raw;
}

void NetworkProcess::accept_all(int listener) {
  for (int i = 0; i < kAcceptsPerWake && !stopping_ && !draining_; ++i) {
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) pause_accepting();
      return;  // EAGAIN (another process took it), or an error on that client
    }
    proto::UniqueFd owned(fd);
    if (full()) {
      refuse(fd);
      continue;  // closes it
    }
    add_connection(std::move(owned));
    if (full()) return update_accepting();
  }
}

// Out of descriptors: the level-triggered listener would wake us again at
// once, so stop watching it for a moment (as nginx does) instead of spinning.
void NetworkProcess::pause_accepting() {
  if (accept_resume_ms_ != 0) return;
  log_warn(errno_message("accept4") + "; not accepting for 100 ms");
  accept_resume_ms_ = now_ms_ + 100;
  update_accepting();
}

// Whether this process should be accepting now, and making it so. A
// process at max_connections leaves the shared listeners to its siblings
// (they get the EPOLLEXCLUSIVE wake-ups instead); only when every network
// process is full does it take connections again, to refuse them with 503.
// Its own reuseport sockets it keeps watching, full or not: no sibling can
// take what waits there, so a connection over the limit gets its 503 now
// rather than wait in the backlog.
void NetworkProcess::update_accepting() {
  if (accept_resume_ms_ != 0 && now_ms_ >= accept_resume_ms_) accept_resume_ms_ = 0;
  const bool at_limit = full();
  const bool can = !stopping_ && !draining_ && accept_resume_ms_ == 0;
  std::optional<bool> shared;  // computed once, when a shared listener asks
  for (size_t i = 0; i < listeners_.size(); ++i) {
    if (!listeners_[i].own && !shared) shared = can && (!at_limit || !sibling_has_room());
    watch_listener(i, listeners_[i].own ? can : *shared);
  }
}

void NetworkProcess::watch_listener(size_t i, bool want) {
  ListenSocket& l = listeners_[i];
  if (want == l.watched) return;
  l.watched = want;
  if (!want) {
    loop_.remove(l.fd.get());
    return;
  }
  const uint64_t token = make_token(TokenKind::listener, i);
  if (std::string e = loop_.add(l.fd.get(), EPOLLIN | EPOLLEXCLUSIVE, token); !e.empty()) {
    log_error(e);
    l.watched = false;
  }
}

// A sibling died or its replacement is ready (master/supervisor.cc,
// tell_network_siblings): decided now, not at the end of this turn. A full
// process says what it decided for its shared listeners (one line per such
// event: a death or a replacement, never per connection). Not said while
// draining, stopping or paused by EMFILE (it accepts nothing then), nor
// with only reuseport sockets of its own (no sibling can take those).
void NetworkProcess::on_siblings_changed() {
  update_accepting();
  if (!full() || draining_ || stopping_ || accept_resume_ms_ != 0) return;
  bool shared = false, refusing = false;
  for (const ListenSocket& l : listeners_) {
    shared = shared || !l.own;
    refusing = refusing || (!l.own && l.watched);
  }
  if (!shared) return;
  log_info("at network.max_connections (" + std::to_string(env_.network.max_connections) +
           "): new connections " +
           (refusing ? "are refused with 503, no ready sibling has room"
                     : "go to ready siblings with room"));
}

bool NetworkProcess::sibling_has_room() {
  const uint32_t n_network = env_.segment->header().n_network;
  for (uint32_t i = 0; i < n_network; ++i) {
    if (i == env_.index) continue;
    shm::ProcessSlot& slot = env_.segment->slot(i);
    const uint32_t open =
        std::atomic_ref<uint32_t>(slot.connections).load(std::memory_order_relaxed);
    if (slot_ready(slot) && open < env_.network.max_connections) return true;
  }
  return false;
}

void NetworkProcess::publish_connections() {
  std::atomic_ref<uint32_t>(env_.segment->slot(env_.index).connections)
      .store(static_cast<uint32_t>(connections_.size()), std::memory_order_relaxed);
}

// Over max_connections: a best-effort 503 on the fresh socket (its send
// buffer is empty, so the short answer goes out whole or not at all), then
// close. Connections already held are not disturbed.
void NetworkProcess::refuse(int fd) {
  const std::string answer =
      proto::make_simple_response(503, false, date_, "text/plain", {}, false, "Retry-After: 1\r\n");
  ssize_t unused = ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)unused;
  shm::ProcessSlot& me = own_slot();
  count(me.accepted);      // it was accepted, and answered:
  count(me.responses[4]);  // a 5xx like any other (no request, so no latency)
}

// Reading pauses while a connection owes too many responses or too many
// bytes of them (a client that pipelines and does not read could otherwise
// grow our memory without bound); it resumes below `1 / divisor` of that.
bool NetworkProcess::over_budget(Connection& c, size_t divisor) {
  if (c.slots.size() >= kMaxQueuedResponses / divisor) return true;
  size_t bytes = 0;
  for (size_t i = 0; i < c.slots.size(); ++i) bytes += c.slots[i].size();
  return bytes >= kMaxQueuedBytes / divisor;
}

void NetworkProcess::read_from(Connection& c) {
  while (c.readable && !c.read_paused && c.input_open()) {
    if (over_budget(c, 1)) {  // the client is not reading what it asked for
      c.read_paused = true;
      break;
    }
    const ssize_t n = ::read(c.fd.get(), read_buffer_.data(), read_buffer_.size());
    if (n > 0) {
      c.last_active_ms = now_ms_;
      count(own_slot().bytes_in, static_cast<uint64_t>(n));
      // A short read drained the socket: edge-triggered epoll reports the
      // next arrival, so the EAGAIN read that would confirm it is skipped.
      // Not when the end was reported with the data: nothing would report
      // it again, so the next read is the one that sees it.
      if (static_cast<size_t>(n) < read_buffer_.size() && !c.end_reported) c.readable = false;
      parse(c, std::string_view(read_buffer_.data(), static_cast<size_t>(n)));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      c.readable = false;
      break;
    }
    if (n < 0) {  // ECONNRESET and the like: nobody is left to answer
      close_connection(c, Closer::client);
      return;
    }
    c.peer_closed = true;  // EOF (a half-close): answer what was asked, then close
    c.readable = false;
    if (c.parser.mid_request()) {  // a request cut short can never end: 400 now, not a 408 later
      on_parse_error(c, 400);
      break;
    }
    c.close_input();
  }
  if (c.state == ConnState::input_closed && c.slots.empty()) end_connection(c);
}

// Feeds the parser in slices and stops at the connection's budget, keeping
// the rest of the bytes read: one read of tiny pipelined requests cannot
// queue thousands of requests at once (and fill a service's ring that every
// other connection shares). A body on its way to a service is fed only as
// far as its window allows; then reading waits for the service's credit.
//
// While draining for a reload, only the request already begun is parsed
// (up to its last byte); what follows it is kept, unparsed, for the process
// the connection is handed to.
//
// Body pieces are views into `data`: what the call parsed of the current
// request's body goes to the service before it returns (one record with
// its head when the request is whole). So are the heads' bytes: a head goes
// from `data` into its ring record, and only one still waiting for its
// request's end when the call returns copies them.
void NetworkProcess::parse(Connection& c, std::string_view data) {
  pieces_.clear();
  pieces_bytes_ = 0;
  while (!data.empty() && c.input_open() && c.takeover.empty()) {
    if (over_budget(c, 1) || (draining_ && !c.parser.mid_request())) {
      c.stash.append(data);
      c.read_paused = true;
      break;
    }
    size_t n = std::min(data.size(), kParseSlice);
    if (c.in && uploading(*c.in)) {
      const uint64_t room = upload_room(c);
      if (room == 0) {
        c.stash.append(data);
        c.read_paused = c.window_paused = true;
        break;
      }
      n = static_cast<size_t>(std::min<uint64_t>(n, room));
    }
    data.remove_prefix(parse_slice(c, data.substr(0, n), one_request(c, n)));
  }
  if (!c.takeover.empty()) {  // what follows the upgrade's head is the tunnel's
    c.stash.append(data);
    c.read_paused = true;
  }
  if (c.in && c.input_open() && uploading(*c.in)) {
    if (!c.in->dispatched) {
      start_upload(c);
    } else {
      continue_upload(c, false);
    }
  }
  // A request still arriving keeps its head past this read: the bytes its
  // views borrow from `data` are copied into it (once; most heads never are).
  if (c.in) c.in->head.own();
  pieces_.clear();
  pieces_bytes_ = 0;
}

// True when a slice of `n` bytes is to stop after the first request that
// ends in it: while draining, and when it could complete more requests than
// the connection's queue has room for (one read of tiny pipelined requests
// holds hundreds). So the queue never grows past kMaxQueuedResponses, and
// with it what a client that does not read can make this process hold.
// (A slice may also end the request begun before it: one slot of margin.)
bool NetworkProcess::one_request(const Connection& c, size_t n) const {
  const size_t owed = std::min(c.slots.size() + 1, kMaxQueuedResponses);
  return draining_ || (kMaxQueuedResponses - owed) * kMinRequestBytes < n;
}

// Returns the bytes used: all of them, or (`one`) up to the end of the
// first request that completed.
size_t NetworkProcess::parse_slice(Connection& c, std::string_view data, bool one) {
  const bool was_mid = c.parser.mid_request();
  events_.clear();
  size_t used = data.size();
  // Stops after an upgrade request too: the bytes after it are either HTTP
  // (parsed by the next slice) or the tunnel's (stashed, see parse()).
  const bool ok = c.parser.feed_events(data, events_, used, one);
  size_t next_head = 0;
  for (const proto::RequestEvent& e : events_.events) {
    switch (e.kind) {
      case proto::RequestEvent::Kind::head:
        on_request_head(c, std::move(events_.heads[next_head++]), e.length);
        break;
      case proto::RequestEvent::Kind::body:
        on_request_body(c, e.piece);
        break;
      case proto::RequestEvent::Kind::end:
        on_request_end(c);
        break;
    }
    if (!c.input_open()) return data.size();  // bytes after a "Connection: close" are ignored
  }
  if (!ok) {
    on_parse_error(c, c.parser.error_status());
    return data.size();
  }
  if (c.parser.mid_request() && (!was_mid || events_.completed > 0)) {
    c.request_start_ms = now_ms_;
  }
  maybe_send_continue(c);
  return used;
}

// The head is routed at once: a service route's body may go to the service
// before it has all arrived. A path without a normal form (a ".." above the
// root, a bad escape, "%00") is answered 400 at once and the connection
// ends, as for a malformed request (nginx closes after a 400 too).
void NetworkProcess::on_request_head(Connection& c, proto::RequestHead head, uint64_t length) {
  c.continue_sent = false;
  std::unique_ptr<Incoming> in = spare_in_ ? std::move(spare_in_) : std::make_unique<Incoming>();
  in->length = length;
  const RouteMatch match = head.target == "*" ? RouteMatch{} : router_.match(head, path_scratch_);
  const RouteSettings* route = match.route;
  in->route = route;
  in->to_service = route != nullptr && route->kind == RouteSettings::Kind::service;
  in->head = std::move(head);
  c.in = std::move(in);
  pieces_.clear();
  pieces_bytes_ = 0;
  if (match.status != 0) refuse_path(c, match.status);
}

// The request's path has no normal form: `status` (400), logged with its
// target, and nothing more is read from the connection.
void NetworkProcess::refuse_path(Connection& c, int status) {
  ResponseSlot& slot = new_slot(c, c.in->head);
  answer_error(slot, status, false);
  release_incoming(c);
  c.close_input();
  dirty_.push_back(c.id);
}

// The request is over here: its head's buffers go back to the connection's
// parser for its next request, and the record itself is kept for the next
// request of any connection.
void NetworkProcess::release_incoming(Connection& c) {
  if (!c.in) return;
  c.parser.recycle(std::move(c.in->head));
  *c.in = Incoming{};
  spare_in_ = std::move(c.in);
}

void NetworkProcess::on_request_body(Connection& c, std::string_view piece) {
  if (!c.in) return;
  c.in->received += piece.size();
  if (!uploading(*c.in)) return;  // discarded: not for a service, or no longer wanted
  if (!pieces_.empty() && pieces_.back().data() + pieces_.back().size() == piece.data()) {
    pieces_.back() = std::string_view(pieces_.back().data(), pieces_.back().size() + piece.size());
  } else {
    pieces_.push_back(piece);
  }
  pieces_bytes_ += piece.size();
}

void NetworkProcess::on_request_end(Connection& c) {
  if (!c.in) return;
  Incoming& in = *c.in;
  const bool keep_alive = in.head.keep_alive;
  const auto* route = static_cast<const RouteSettings*>(in.route);
  if (!in.dispatched && takes_over(in.head, route, env_.services, stopping_)) {
    begin_takeover(c, in.head, *route);
  } else if (!in.dispatched) {
    add_response(c, in.head, route);
  } else if (uploading(in)) {
    continue_upload(c, true);
  }
  release_incoming(c);
  c.window_paused = false;
  pieces_.clear();
  pieces_bytes_ = 0;
  if (!keep_alive || stopping_) c.close_input();
}

// The request cannot be read on (a parser error, or its body stalled): its
// answer is `status` and the connection ends. An upload in progress is
// cancelled; its response, if nothing of it was written yet, becomes the
// error.
void NetworkProcess::on_parse_error(Connection& c, int status) {
  ResponseSlot* target = nullptr;
  if (c.in && c.in->dispatched && c.in->slot != nullptr && !c.slots.empty()) {
    ResponseSlot* s = c.in->slot;  // still owed: not written, not freed
    const bool begun = s->streaming || (&c.slots.front() == s && c.sent > 0);
    // The service stops waiting for the rest of the body (and says so).
    if (s->request_id != 0) cancel(s->request_id);
    if (!begun) target = s;
    if (begun) abort_response(*s);
  }
  release_incoming(c);
  c.window_paused = false;
  if (target == nullptr) target = &add_slot(c);
  ResponseSlot& slot = *target;
  slot.request_id = 0;
  slot.upload_open = false;
  slot.status = 0;
  slot.head_request = slot.head_only = c.parser.head_request();  // 414 to HEAD: no body
  answer_error(slot, status, false);
  c.close_input();
  dirty_.push_back(c.id);
}

// Whether the current request's body goes to a service: a service route
// whose head was not answered otherwise (503, 504, early answer, death).
bool NetworkProcess::uploading(Incoming& in) {
  if (!in.to_service) return false;
  if (!in.dispatched) return true;
  if (in.id == 0) return false;
  auto it = pending_.find(in.id);
  if (it == pending_.end() || it->second.slot == nullptr) {
    in.id = 0;
    in.slot = nullptr;
    return false;
  }
  return true;
}

// Body bytes the current request may still parse before the service's
// credit: a window beyond what it consumed, less what waits to be sent.
uint64_t NetworkProcess::upload_room(const Connection& c) {
  const Incoming& in = *c.in;
  const uint64_t out = in.sent + pieces_bytes_ - std::min(in.credited, in.sent);
  return out >= proto::kBodyWindow ? 0 : proto::kBodyWindow - out;
}

// The head of a request whose body is still coming, with what arrived of
// it: the response slot and the dispatch happen now.
void NetworkProcess::start_upload(Connection& c) {
  Incoming& in = *c.in;
  in.dispatched = true;
  ResponseSlot& slot = new_slot(c, in.head);
  const RouteSettings& route = *static_cast<const RouteSettings*>(in.route);
  slot.route = static_cast<int32_t>(&route - env_.routes.data());
  slot.via_service = true;
  if (!dispatch(slot, c, in.head, route, pieces_, false)) return;  // 503 or 431: answered
  in.slot = &slot;
  in.id = slot.request_id;
  in.service = slot.service;
  in.sent = pieces_bytes_;
  slot.upload_open = true;
}

void NetworkProcess::continue_upload(Connection& c, bool end) {
  Incoming& in = *c.in;
  channels_[in.service].send_pieces(proto::kRequestBody, in.id, pieces_, end);
  in.sent += pieces_bytes_;
  ResponseSlot& slot = *in.slot;
  slot.deadline_ms = now_ms_ + env_.services[service_of(in.service)].timeout_ms;
  if (end) slot.upload_open = false;
}

// The service no longer wants the body (it answered, died or timed out):
// the rest is parsed and discarded, and reading no longer waits.
void NetworkProcess::stop_upload(Connection& c) {
  if (!c.in) return;
  c.in->id = 0;
  if (c.in->slot != nullptr) c.in->slot->upload_open = false;
  c.in->slot = nullptr;  // answered (or about to be): it may be written and freed
  if (c.window_paused) {
    c.window_paused = false;
    dirty_.push_back(c.id);
  }
}

// "100 Continue" goes into the ordered output like any response: after the
// answers to earlier pipelined requests, before this request's own.
void NetworkProcess::maybe_send_continue(Connection& c) {
  if (!c.parser.wants_continue() || c.continue_sent) return;
  c.continue_sent = true;
  ResponseSlot& slot = add_slot(c);
  slot.data = "HTTP/1.1 100 Continue\r\n\r\n";
  slot.interim = true;
  slot.ready = true;
  dirty_.push_back(c.id);
}

// Every response slot starts its latency clock here: a slot without it
// would count the machine's uptime into the histogram.
ResponseSlot& NetworkProcess::add_slot(Connection& c) {
  ResponseSlot& slot = c.slots.emplace_back();
  slot.start_us = now_us_;
  return slot;
}

ResponseSlot& NetworkProcess::new_slot(Connection& c, const proto::RequestHead& req) {
  ResponseSlot& slot = add_slot(c);
  if (access_log_.enabled()) {
    slot.access = std::make_unique<AccessInfo>(AccessInfo{
        std::string(req.method), std::string(req.target), std::string(req.header("Referer")),
        std::string(req.header("User-Agent")), req.version_major, req.version_minor});
  }
  slot.keep_alive = req.keep_alive && !stopping_;
  slot.head_request = req.method == "HEAD";
  slot.head_only = slot.head_request;
  slot.http10 = req.version_minor == 0;
  return slot;
}

// A request that arrived whole (its body is in pieces_).
void NetworkProcess::add_response(Connection& c, proto::RequestHead& req,
                                  const RouteSettings* route) {
  ResponseSlot& slot = new_slot(c, req);
  if (req.target == "*") {  // OPTIONS * (the parser allows "*" for nothing else)
    slot.data = proto::make_simple_response(200, slot.keep_alive, date_, "text/plain", {}, false,
                                            options_allow_);
    slot.ready = true;
    return;
  }
  if (route == nullptr) return answer_error(slot, 404, slot.keep_alive);
  slot.route = static_cast<int32_t>(route - env_.routes.data());
  slot.via_service = route->kind == RouteSettings::Kind::service;
  if (route->kind == RouteSettings::Kind::respond) return answer_fixed(slot, route->respond);
  if (route->kind == RouteSettings::Kind::metrics) return answer_metrics(slot);
  if (route->kind == RouteSettings::Kind::static_files) return answer_static(slot, req, *route);
  dispatch(slot, c, req, *route, pieces_, true);
}

void NetworkProcess::answer_fixed(ResponseSlot& slot, const RespondSettings& r) {
  slot.data = proto::make_simple_response(r.status, slot.keep_alive, date_, r.content_type, r.body,
                                          slot.head_only);
  slot.ready = true;
}

// A file under a static route's root (worker/static_files.h decides which,
// and what of it; worker/file_cache.h keeps it open): 200, 206 for one
// satisfiable range, 416, 304 when the client's validator matches; the body
// goes with sendfile (send_file_part), from the cached descriptor.
void NetworkProcess::answer_static(ResponseSlot& slot, const proto::RequestHead& req,
                                   const RouteSettings& route) {
  if (req.method != "GET" && req.method != "HEAD") {
    return answer_error(slot, 405, slot.keep_alive, "Allow: GET, HEAD\r\n");
  }
  const size_t r = static_cast<size_t>(slot.route);
  // The path as sent, not the normal form the route matched: the static
  // checks (no "." or "..", no encoded slash, decoded once) stay as strict
  // as they were, so a path that needed normalizing to reach here is 404.
  const std::optional<std::string> relative = static_relative_path(route.path, req.path());
  if (r >= static_roots_.size() || !static_roots_[r] || !relative) {
    return answer_error(slot, 404, slot.keep_alive);
  }
  FileLookup found = lookup_static_file(*file_caches_[r], static_roots_[r].get(), *relative,
                                        route.static_files, now_ms_);
  if (found.directory) {
    return answer_listing(slot, req, route, std::move(found.directory), static_roots_[r].get(),
                          *relative);
  }
  if (!found.file) return answer_error(slot, found.status, slot.keep_alive);
  const OpenFile& file = *found.file;
  const uint64_t size = file.size;
  const std::string& tag = file.etag;
  slot.data.reserve(256);  // the head, in one allocation
  // Conditional requests (RFC 9110 13.1, evaluated in the order of 13.2.2
  // by worker/static_files.h).
  const Conditions conditions = conditions_of(req);
  switch (evaluate_preconditions(conditions, tag, file.last_modified)) {
    case Precondition::failed:
      return answer_error(slot, 412, slot.keep_alive);
    case Precondition::not_modified:
      proto::append_response_head(slot.data, 304, file.validators, 0, slot.keep_alive, date_);
      slot.ready = true;
      return;
    case Precondition::proceed:
      break;
  }
  const std::vector<proto::Header>* headers = &file.headers;  // a 206 adds Content-Range
  std::vector<proto::Header> partial_headers;
  int status = 200;
  ByteRange range{0, size == 0 ? 0 : size - 1};
  if (req.method == "GET" && if_range_holds(conditions.if_range, tag, file.last_modified)) {
    switch (parse_range(req.header("Range"), size, range)) {
      case RangeAnswer::whole:
        range = {0, size == 0 ? 0 : size - 1};
        break;
      case RangeAnswer::partial:
        status = 206;
        partial_headers = file.headers;
        partial_headers.push_back({"Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                                        std::to_string(range.last) + "/" +
                                                        std::to_string(size)});
        headers = &partial_headers;
        break;
      case RangeAnswer::unsatisfiable:
        return answer_error(slot, 416, slot.keep_alive,
                            "Content-Range: bytes */" + std::to_string(size) + "\r\n");
    }
  }
  const uint64_t length = size == 0 ? 0 : range.last - range.first + 1;
  proto::append_response_head(slot.data, status, *headers, length, slot.keep_alive, date_);
  if (!slot.head_only && length > 0) {
    slot.cached_file = std::move(found.file);
    slot.file_offset = range.first;
    slot.file_left = length;
    slot.file_bytes = length;
  }
  slot.ready = true;
}

// A directory without an index file, on a route with static.listing: an
// HTML page of its entries (worker/static_files.h), made anew each time
// (not cached; no validators, so If-Match fails and If-None-Match: *
// matches), bounded in entries read and in bytes.
void NetworkProcess::answer_listing(ResponseSlot& slot, const proto::RequestHead& req,
                                    const RouteSettings& route, proto::UniqueFd directory,
                                    int root_fd, const std::string& relative) {
  switch (evaluate_preconditions(conditions_of(req), "", "")) {
    case Precondition::failed:
      return answer_error(slot, 412, slot.keep_alive);
    case Precondition::not_modified:
      proto::append_response_head(slot.data, 304, std::vector<proto::Header>{}, 0, slot.keep_alive,
                                  date_);
      slot.ready = true;
      return;
    case Precondition::proceed:
      break;
  }
  bool truncated = false;
  std::vector<ListedEntry> entries =
      read_listing(std::move(directory), root_fd, relative, truncated);
  const std::string page = directory_listing(listing_base(route.path, relative), std::move(entries),
                                             !relative.empty(), truncated);
  slot.data = proto::make_simple_response(200, slot.keep_alive, date_, "text/html; charset=utf-8",
                                          page, slot.head_only);
  slot.ready = true;
}

// The Prometheus exposition of this generation, read from the segment (the
// same text `ringhttpd ctl metrics` prints).
void NetworkProcess::answer_metrics(ResponseSlot& slot) {
  if (metrics_names_.routes.empty()) metrics_names_ = metrics_names(env_.services, env_.routes);
  const std::string body = format_metrics(*env_.segment, metrics_names_, now_ms_);
  slot.data = proto::make_simple_response(200, slot.keep_alive, date_, kMetricsContentType, body,
                                          slot.head_only);
  slot.ready = true;
}

void NetworkProcess::answer_error(ResponseSlot& slot, int status, bool keep_alive,
                                  std::string_view extra_headers) {
  slot.clear_bytes();  // what it held before, in the ring too
  slot.keep_alive = keep_alive;
  slot.data = proto::make_simple_response(status, keep_alive, date_, "text/plain", {},
                                          slot.head_only, extra_headers);
  slot.ready = true;
}

bool NetworkProcess::dispatch(ResponseSlot& slot, Connection& c, const proto::RequestHead& req,
                              const RouteSettings& route, std::span<const std::string_view> body,
                              bool end) {
  uint64_t body_bytes = 0;
  for (std::string_view p : body) body_bytes += p.size();
  const uint64_t length = end ? body_bytes : c.in->length;
  const ServicePool& pool = env_.pools[static_cast<size_t>(route.service_index)];
  const uint32_t n_network = env_.segment->header().n_network;
  // A head no ring of the pool could take even empty (the pool's processes
  // share ring_bytes) is refused for its size: 431, not a 503 whose retry
  // could never succeed. The config check (worker::min_ring_bytes) keeps
  // this from happening to a head the parser accepted; this is the answer
  // if it ever did. A head that cannot be represented at all is too large
  // as well (a count or length over 2^32 - 1).
  origin_.client = c.peer;
  if (!head_parts_.build(req, origin_, length) ||
      !head_ever_fits(head_parts_.size(), channels_[pool.first].capacity())) {
    answer_error(slot, 431, slot.keep_alive);
    return false;
  }
  available_scratch_.assign(pool.count, 1);
  for (uint32_t attempt = 0; attempt < pool.count; ++attempt) {
    const int chosen = pick_service(pool, -1);
    if (chosen < 0) break;
    const uint32_t s = static_cast<uint32_t>(chosen);
    const uint64_t id = next_id(s);
    // Counted before the push: the service may answer (and count down)
    // before this process runs again.
    shm::ProcessSlot& service_slot = env_.segment->slot(n_network + s);
    inflight_of(service_slot).fetch_add(1, std::memory_order_relaxed);
    if (send_request(s, id, body, end)) {
      // A whole request without a body may be sent twice (dispatch.h).
      if (end && is_retryable(req.method, body_bytes != 0)) {
        slot.retry_record.clear();
        head_parts_.append_to(slot.retry_record);
      }
      track(slot, c.id, s, id);
      return true;
    }
    inflight_of(service_slot).fetch_sub(1, std::memory_order_relaxed);
    available_scratch_[s - pool.first] = 0;
  }
  count(own_slot().ring_full);
  answer_error(slot, 503, slot.keep_alive, "Retry-After: 1\r\n");
  return false;
}

// "Awake" for dispatch also needs a loop that ran lately. A process stopped
// or stuck inside a handler never marks itself asleep again after its first
// wake-up; without this it would look awake and draw up to kAwakeMargin more
// requests than its siblings. Its heartbeat shares the cache line of the
// inflight count read beside it.
bool NetworkProcess::loop_ran_lately(shm::ProcessSlot& slot) const {
  const auto beat = static_cast<int64_t>(
      std::atomic_ref<uint64_t>(slot.heartbeat_ms).load(std::memory_order_relaxed));
  return now_ms_ - beat <= kAwakeHeartbeatMs;
}

// Passes over processes that are not ready (starting, or dead and not yet
// replaced) and those already found full (available_scratch_).
int NetworkProcess::pick_service(const ServicePool& pool, int exclude) {
  const uint32_t n_network = env_.segment->header().n_network;
  inflight_scratch_.assign(pool.count, 0);
  awake_scratch_.assign(pool.count, 0);
  if (available_scratch_.size() != pool.count) available_scratch_.assign(pool.count, 1);
  for (uint32_t k = 0; k < pool.count; ++k) {
    shm::ProcessSlot& slot = env_.segment->slot(n_network + pool.first + k);
    if (!slot_ready(slot) || static_cast<int>(pool.first + k) == exclude) {
      available_scratch_[k] = 0;
      continue;
    }
    inflight_scratch_[k] = inflight_of(slot).load(std::memory_order_relaxed);
    awake_scratch_[k] = channels_[pool.first + k].peer_awake() && loop_ran_lately(slot) ? 1 : 0;
  }
  const int k =
      choose_service(inflight_scratch_, available_scratch_, awake_scratch_, round_robin_++);
  return k < 0 ? -1 : static_cast<int>(pool.first) + k;
}

// Request ids carry the incarnation of the process they were sent to, so an
// answer can never be taken for one sent to an earlier process of the slot.
uint64_t NetworkProcess::next_id(uint32_t service) {
  const uint32_t n_network = env_.segment->header().n_network;
  const uint64_t incarnation = env_.segment->slot(n_network + service).incarnation;
  const uint64_t own = next_request_ & ~((uint64_t{1} << 28) - 1);
  const uint64_t counter = ++next_request_ & ((uint64_t{1} << 28) - 1);
  next_request_ = own | counter;
  return (incarnation << 40) | own | counter;
}

void NetworkProcess::track(ResponseSlot& slot, uint64_t connection, uint32_t service, uint64_t id) {
  const uint32_t n_network = env_.segment->header().n_network;
  const ServiceSettings& settings = env_.services[service_of(service)];
  slot.request_id = id;
  slot.service = service;
  slot.deadline_ms = now_ms_ + settings.timeout_ms;
  const uint32_t incarnation = env_.segment->slot(n_network + service).incarnation;
  pending_[id] = Pending{connection, &slot, service, incarnation, now_ms_ + settings.kill_after_ms};
}

size_t NetworkProcess::service_of(uint32_t service_proc) const {
  for (size_t i = 0; i < env_.pools.size(); ++i) {
    const ServicePool& p = env_.pools[i];
    if (service_proc >= p.first && service_proc < p.first + p.count) return i;
  }
  return 0;  // unreachable: every service process belongs to a pool
}

// ---- a service process died --------------------------------------------

// Service process at scoreboard `slot` died (the supervisor says so and
// waits for peer_released before starting its replacement). Its finished
// answers are taken first; then every request that was on it is settled
// (dispatch.h: recover), and both rings are emptied for the replacement.
void NetworkProcess::on_service_gone(uint32_t slot, uint64_t incarnation) {
  const uint32_t n_network = env_.segment->header().n_network;
  if (slot < n_network || slot - n_network >= channels_.size()) {
    log_error("peer_gone for slot " + std::to_string(slot) + ", not a service process; ignored");
    return;
  }
  // Stale (the slot was given to a new process since): its rings are in use.
  if (env_.segment->slot(slot).incarnation != incarnation) return;
  const uint32_t s = slot - n_network;
  drain_ring(s);
  finish_ring(s);
  const std::vector<HeldRecord> untaken = channels_[s].take_back_unread();
  std::vector<std::pair<uint64_t, Pending>> owed;
  for (const auto& [id, p] : pending_) {
    if (p.service == s) owed.emplace_back(id, p);
  }
  for (const auto& [id, p] : owed) pending_.erase(id);
  for (const auto& [id, p] : owed) recover_request(id, p, untaken);
  const std::string err =
      proto::send_control(env_.control_fd, {proto::ControlType::peer_released, slot});
  if (!err.empty()) log_error(err);
}

void NetworkProcess::recover_request(uint64_t id, Pending p,
                                     const std::vector<HeldRecord>& untaken) {
  if (p.slot == nullptr) return;  // answered 504 already, or its connection is gone
  ResponseSlot& slot = *p.slot;
  const bool upload_open = slot.upload_open;
  auto c = connections_.find(p.connection);
  if (c != connections_.end() && c->second->in && c->second->in->id == id) {
    stop_upload(*c->second);  // its body cannot be sent again: 502 below
  }
  if (slot.streaming) {  // part of the answer may be out
    abort_response(slot);
    dirty_.push_back(p.connection);
    return;
  }
  slot.upload_open = false;
  slot.status = 0;
  slot.clear_bytes();  // a response cut short by the death, and what it set
  slot.head_only = slot.head_request;
  slot.head_seen = false;
  slot.body_got = 0;
  slot.request_id = 0;
  // A body that was still arriving cannot move: what was sent of it is gone.
  const bool taken =
      upload_open || std::none_of(untaken.begin(), untaken.end(), [&](const HeldRecord& r) {
        return r.id == id && r.type == proto::kRequestHead;
      });
  const ServicePool& pool = env_.pools[service_of(p.service)];
  available_scratch_.assign(pool.count, 1);
  const int sibling = pick_service(pool, static_cast<int>(p.service));
  const Recovery what = recover(taken, !slot.retry_record.empty(), slot.retried, sibling >= 0);
  bool sent = false;
  if (what == Recovery::move) {
    sent = resend(slot, p.connection, static_cast<uint32_t>(sibling), untaken, id);
  } else if (what == Recovery::retry) {
    const std::vector<HeldRecord> again{
        HeldRecord{proto::kRequestHead, proto::kRecordEnd, id, slot.retry_record}};
    sent = resend(slot, p.connection, static_cast<uint32_t>(sibling), again, id);
    slot.retried = true;
  }
  if (!sent) {
    slot.retry_record.clear();
    if (what == Recovery::unavailable) {
      answer_error(slot, 503, slot.keep_alive, "Retry-After: 1\r\n");
    } else {
      answer_error(slot, 502, slot.keep_alive);
    }
  }
  dirty_.push_back(p.connection);
}

// Sends request `old_id`'s records to service process `to` under a new id.
// Queued when its ring is full: the request was accepted already, and the
// queue drains as the sibling reads.
bool NetworkProcess::resend(ResponseSlot& slot, uint64_t connection, uint32_t to,
                            const std::vector<HeldRecord>& records, uint64_t old_id) {
  const uint64_t id = next_id(to);
  bool any = false;
  for (const HeldRecord& r : records) {
    if (r.id != old_id) continue;
    channels_[to].send_record(r.type, r.flags, id, r.payload);
    any = true;
  }
  if (!any) return false;
  const uint32_t n_network = env_.segment->header().n_network;
  inflight_of(env_.segment->slot(n_network + to)).fetch_add(1, std::memory_order_relaxed);
  track(slot, connection, to, id);
  return true;
}

// The head in head_parts_ (built by dispatch), with `body`; false when it
// does not fit that process's ring now.
bool NetworkProcess::send_request(uint32_t service, uint64_t id,
                                  std::span<const std::string_view> body, bool end) {
  return channels_[service].try_send_parts(proto::kRequestHead, proto::kRequestBody, id,
                                           head_parts_.parts(), head_parts_.size(), body, end);
}

// Reads every response ring, holding the records: a complete response's
// body can then be written from the ring by write_dirty() (one copy fewer),
// and release_responses() gives the space back after it.
void NetworkProcess::drain_responses() {
  holding_bodies_ = true;
  ring_held_.assign(channels_.size(), 0);
  for (uint32_t s = 0; s < channels_.size(); ++s) {
    const size_t views = held_.size();
    channels_[s].hold_received();
    drain_ring(s);
    // A ring that gave no body to write from is released at once: its
    // producer may be waiting for the space.
    if (held_.size() == views) {
      finish_ring(s);
    } else {
      ring_held_[s] = 1;
    }
  }
}

// After the writes: a held body the socket did not take joins its slot's
// `data` (the byte offsets stay the same), then the rings are released.
void NetworkProcess::release_responses() {
  for (uint64_t id : held_) {
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    SlotQueue& slots = it->second->slots;
    for (size_t i = 0; i < slots.size(); ++i) {
      if (slots[i].held_body.empty()) continue;
      slots[i].data.append(slots[i].held_body);
      slots[i].held_body = {};
    }
  }
  held_.clear();
  holding_bodies_ = false;
  for (uint32_t s = 0; s < ring_held_.size(); ++s) {
    if (ring_held_[s]) finish_ring(s);
  }
  ring_held_.clear();
}

void NetworkProcess::drain_ring(uint32_t s) {
  RingChannel& channel = channels_[s];
  shm::RecordView rec;
  while (channel.next(rec)) {
    on_response_record(s, rec);
    channel.release();
  }
}

void NetworkProcess::finish_ring(uint32_t s) {
  if (channels_[s].finish_receiving()) {
    report_broken_peer(env_, env_.segment->header().n_network + s);
  }
}

// A response arrives as a head record, then body records; the last one
// carries kRecordEnd. What a service writes is checked, not trusted: a body
// before the head, a second head, an unknown record type, or body bytes that
// do not add up to the head's length end that request with 502 (or, once
// part of it was written to the client, with the connection), so a handler
// can never break the framing toward the client.
//
// A response whose head arrives without its end is streamed: its bytes are
// written as they come (chunked when the service gave no length), and the
// service is credited as the client takes them (credit_response).
void NetworkProcess::on_response_record(uint32_t service, const shm::RecordView& rec) {
  auto it = pending_.find(rec.id);
  // Unknown (its connection closed), or not this process's to answer.
  if (it == pending_.end() || it->second.service != service) return;
  if (it->second.slot == nullptr) {  // answered 504 already; the late answer is dropped
    if (rec.flags & proto::kRecordEnd) pending_.erase(it);
    return;
  }
  if (rec.type == proto::kCredit) return on_credit(it->second, rec);
  ResponseSlot& slot = *it->second.slot;
  const uint64_t connection = it->second.connection;
  const bool end = rec.flags & proto::kRecordEnd;
  std::string_view body = rec.payload;
  if (rec.type == proto::kResponseHead && !slot.head_seen) {
    int status = 0;
    std::vector<proto::HeaderView>& headers = response_headers_;  // views into the record
    uint64_t length = 0;
    const size_t used = proto::decode_response_head(rec.payload, status, headers, length);
    // An interim status is not a final answer a handler may give.
    if (used == 0 || status < 200) return fail_response(it, "malformed response head");
    // Checked, then formatted: read twice, so read out of the ring, where
    // the service could change them in between (proto::own_head_views).
    proto::own_head_views(rec.payload.substr(0, used), headers, response_head_copy_);
    for (const proto::HeaderView& h : headers) {
      if (!proto::valid_header_field(h.name, h.value)) {
        return fail_response(it, "header with a forbidden byte");
      }
    }
    if (!proto::response_has_body("GET", status)) slot.head_only = true;  // 204, 304
    slot.head_seen = true;
    slot.status = status;
    slot.body_expected = length;
    body.remove_prefix(used);
    uint64_t announce = length;
    if (length == proto::kUnknownBodyLength && end && !slot.head_request) {
      announce = body.size();  // whole after all: its length is known
      // (Not for HEAD: its empty "body" says nothing of the length a GET
      // would have; RFC 9110 9.3.2 / 8.6: then no Content-Length is sent.)
    } else if (!end && (length == proto::kUnknownBodyLength || body.size() < length)) {
      // Streamed from here. (A response whose announced bytes are all here
      // waits for its end record, so that one more byte is still a 502.)
      slot.streaming = true;
    }
    if (announce == proto::kUnknownBodyLength) {
      if (slot.http10) slot.keep_alive = false;  // the body ends with the connection
      slot.chunked = !slot.http10 && !slot.head_only;
    }
    // The reservation is bounded: the length is the peer's word.
    // (A body that ends here stays in the ring: see below.)
    const bool copied = !slot.head_only && !(end && holding_bodies_);
    slot.data.reserve(256 + (copied ? std::min<uint64_t>(body.size(), kMaxReserve) : 0));
    const size_t before = slot.data.size();
    proto::append_response_head(slot.data, status, headers, announce, slot.keep_alive, date_,
                                slot.http10);
    slot.head_len = slot.data.size() - before;
  } else if (rec.type != proto::kResponseBody || !slot.head_seen) {
    return fail_response(it, "response record out of order");
  }
  slot.body_got += body.size();
  if (slot.body_expected != proto::kUnknownBodyLength && slot.body_got > slot.body_expected) {
    return fail_response(it, "more body than its length");
  }
  if (!slot.head_only && !body.empty()) {
    if (slot.chunked) {
      char size[20];
      const int n = std::snprintf(size, sizeof size, "%zx\r\n", body.size());
      slot.data.append(size, static_cast<size_t>(n)).append(body).append("\r\n");
    } else if (end && holding_bodies_ && !slot.streaming && slot.held_body.empty()) {
      slot.held_body = body;  // written from the ring (release_responses)
      held_.push_back(connection);
    } else {
      slot.data.append(body);
    }
  }
  slot.body_bytes += body.size();
  dirty_.push_back(connection);
  if (!end) {
    slot.credit_owed += body.size();
    slot.deadline_ms = now_ms_ + env_.services[service_of(service)].timeout_ms;
    auto c = connections_.find(connection);
    if (c != connections_.end()) credit_response(*c->second, slot);
    return;
  }
  if (rec.flags & proto::kRecordAbort) return fail_response(it, "the service gave up on it");
  // (A response to HEAD announces a length and carries no body.)
  if (slot.body_expected != proto::kUnknownBodyLength && slot.body_got != slot.body_expected &&
      !slot.head_request) {
    return fail_response(it, "less body than its length");
  }
  if (slot.chunked) slot.data.append("0\r\n\r\n");
  slot.ready = true;
  slot.streaming = false;
  slot.request_id = 0;
  slot.retry_record.clear();
  auto c = connections_.find(connection);
  if (c != connections_.end() && c->second->in && c->second->in->id == rec.id) {
    stop_upload(*c->second);  // answered before its body ended: the rest is discarded
  }
  pending_.erase(it);
}

// The service consumed part of an upload: the connection may read on.
void NetworkProcess::on_credit(const Pending& p, const shm::RecordView& rec) {
  uint64_t bytes = 0;
  auto it = connections_.find(p.connection);
  if (!proto::decode_credit(rec.payload, bytes) || it == connections_.end()) return;
  Connection& c = *it->second;
  if (!c.in || c.in->id != rec.id) return;
  Incoming& in = *c.in;
  in.credited += std::min(bytes, in.sent - std::min(in.credited, in.sent));
  if (in.slot != nullptr) {
    in.slot->deadline_ms = now_ms_ + env_.services[service_of(in.service)].timeout_ms;
  }
  if (c.window_paused) {
    c.window_paused = false;
    dirty_.push_back(c.id);  // write_to() resumes reading
  }
}

// Returns credit for the body bytes of a streamed response once the client
// has taken most of what is buffered here: what this process holds for one
// response stays within about 1.5 windows, however slowly the client reads.
//
// A response starts with a window of kFirstWindow; only the one being
// written (the connection's first) has the whole window opened (kWindow).
// So the responses queued behind it hold kFirstWindow each at most: a
// client that pipelines requests for large responses and does not read
// makes this process hold about 1.5 windows plus kMaxQueuedResponses x
// kFirstWindow (4 MiB) for the connection, not a window per response.
void NetworkProcess::credit_response(Connection& c, ResponseSlot& slot) {
  if (!slot.streaming) return;
  const bool front = !c.slots.empty() && &c.slots.front() == &slot;
  if (front && !slot.window_opened) {
    channels_[slot.service].send_control(proto::kWindow, slot.request_id, {});
    slot.window_opened = true;
  }
  if (slot.credit_owed < proto::kCreditEvery) return;
  const size_t written = front ? c.sent : 0;
  if (slot.data.size() - written >= proto::kBodyWindow / 2) return;
  channels_[slot.service].send_control(proto::kCredit, slot.request_id,
                                       proto::encode_credit(slot.credit_owed));
  slot.credit_owed = 0;
  slot.deadline_ms = now_ms_ + env_.services[service_of(slot.service)].timeout_ms;
}

// A response that cannot be completed after part of it may have gone out:
// what is buffered is written, then the connection closes (the client sees
// a body shorter than announced, or no final chunk).
void NetworkProcess::abort_response(ResponseSlot& slot) {
  slot.streaming = false;
  slot.chunked = false;
  slot.upload_open = false;
  slot.ready = true;
  slot.keep_alive = false;
  slot.request_id = 0;
  slot.retry_record.clear();
}

// The service broke the response: 502 in its place, and whatever else it
// sends for this request is dropped (the id is no longer pending). If part
// of it may have reached the client, the connection is cut instead.
void NetworkProcess::fail_response(PendingMap::iterator it, const char* why) {
  log_error(std::string("service process sent a bad response (") + why + "); answering 502");
  ResponseSlot& slot = *it->second.slot;
  const uint64_t connection = it->second.connection;
  const uint64_t id = it->first;
  pending_.erase(it);
  auto c = connections_.find(connection);
  if (c != connections_.end() && c->second->in && c->second->in->id == id) {
    stop_upload(*c->second);
  }
  dirty_.push_back(connection);
  if (slot.streaming) return abort_response(slot);
  slot.status = 0;
  slot.head_only = slot.head_request;
  answer_error(slot, 502, slot.keep_alive);
  slot.request_id = 0;
  slot.retry_record.clear();
  slot.upload_open = false;
}

void NetworkProcess::flush_rings() {
  for (auto& channel : channels_) channel.flush();
}

// Writing may read and queue more (resumed connections), which marks
// connections dirty again: those wait for the next iteration (which then
// does not sleep), so the list being walked never changes under the walk.
void NetworkProcess::write_dirty() {
  writing_.swap(dirty_);
  for (uint64_t id : writing_) {
    auto it = connections_.find(id);
    if (it != connections_.end() && !it->second->finished()) write_to(*it->second);
  }
  writing_.clear();
}

// Writes every ready response in order; when that frees the connection's
// budget, reads on (stashed bytes first) and writes what that produced.
void NetworkProcess::write_to(Connection& c) {
  if (c.state == ConnState::lingering || c.finished()) return;
  do {
    if (!write_ready(c)) return;  // would block, or the connection ended
  } while (resume_reading(c) && (c.state == ConnState::open || c.state == ConnState::input_closed));
  if (!c.slots.empty()) return;
  if (!c.takeover.empty() && c.state == ConnState::open) {
    take_over(c);
  } else if (c.state == ConnState::input_closed) {
    end_connection(c);
  } else if (draining_ && at_boundary(c)) {
    hand_over(c);
  }
}

namespace {

// A slot's unwritten bytes from `skip` on, as at most two iovecs (its
// `data`, then its held body); returns how many it filled.
int slot_iov(const ResponseSlot& slot, size_t skip, iovec* iov) {
  int n = 0;
  if (skip < slot.data.size()) {
    iov[n++] = iovec{const_cast<char*>(slot.data.data()) + skip, slot.data.size() - skip};
    skip = 0;
  } else {
    skip -= slot.data.size();
  }
  if (skip < slot.held_body.size()) {
    iov[n++] = iovec{const_cast<char*>(slot.held_body.data()) + skip, slot.held_body.size() - skip};
  }
  return n;
}

}  // namespace

// True when every ready response is written and the connection lives on.
bool NetworkProcess::write_ready(Connection& c) {
  const auto writable = [&c] {
    const ResponseSlot& f = c.slots.front();
    return f.ready || (f.streaming && c.sent < f.size());
  };
  while (!c.slots.empty() && writable()) {
    ResponseSlot& first = c.slots.front();
    if (c.sent == first.size() && first.file_left > 0) {  // its head is out: the file
      if (!send_file_part(c, first)) return false;
      if (first.file_left > 0) continue;
      if (!finish_front(c, monotonic_us())) return false;
      continue;
    }
    if (c.sent == first.size() && first.ready) {  // nothing left to write (a streamed end)
      if (!finish_front(c, monotonic_us())) return false;
      continue;
    }
    iovec iov[kMaxIov];
    int n = 0;
    int more = 0;  // MSG_MORE: a file part follows this write (one segment for head and body)
    for (size_t i = 0; i < c.slots.size() && n + 2 <= kMaxIov; ++i) {
      ResponseSlot& slot = c.slots[i];
      if (!slot.ready && !(slot.streaming && i == 0)) break;
      n += slot_iov(slot, i == 0 ? c.sent : 0, iov + n);
      more = slot.file_left > 0 ? MSG_MORE : 0;
      // A file part follows this slot's bytes, or the rest of a streamed
      // response: nothing after it in this write.
      if (!slot.keep_alive || slot.file_left > 0 || slot.streaming) break;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    const ssize_t w = ::sendmsg(c.fd.get(), &msg, MSG_NOSIGNAL | more);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;  // EPOLLOUT resumes
    if (w < 0) {  // EPIPE, ECONNRESET: the client is gone
      close_connection(c, Closer::client);
      return false;
    }
    c.last_active_ms = now_ms_;
    count(own_slot().bytes_out, static_cast<uint64_t>(w));
    size_t left = static_cast<size_t>(w);
    int64_t written_us = 0;  // read once for all the responses this write ended
    while (left > 0) {
      ResponseSlot& front = c.slots.front();
      const size_t rest = front.size() - c.sent;
      if (left < rest) {
        c.sent += left;
        front.written += left;
        break;
      }
      left -= rest;
      front.written += rest;
      c.sent = front.size();
      if (front.file_left > 0) break;  // the file part goes next (sendfile)
      if (front.streaming) break;      // the rest of it is still coming
      if (written_us == 0) written_us = monotonic_us();
      if (!finish_front(c, written_us)) return false;
    }
    if (c.slots.empty()) break;
    ResponseSlot& front = c.slots.front();
    if (front.streaming) {  // what was written is dropped; the service may send more
      if (c.sent == front.data.size() || c.sent >= kReadBufferBytes) {
        front.data.erase(0, c.sent);
        c.sent = 0;
      }
      credit_response(c, front);
    }
  }
  return true;
}

// The oldest response is entirely written (at `written_us`): count it, log
// it, drop it; false when it ended the connection.
bool NetworkProcess::finish_front(Connection& c, int64_t written_us) {
  ResponseSlot& front = c.slots.front();
  c.sent = 0;
  // A fresh clock (read once per write, not now_us_) for the latency and the
  // access log: a fast-path answer is often written in the iteration that
  // read its request, where now_us_ has not moved.
  const auto us = static_cast<uint64_t>(std::max<int64_t>(0, written_us - front.start_us));
  const Outcome o = written_outcome(front);
  count_response(front, o, us, /*timed=*/true);
  if (access_log_.enabled()) log_access(c, front, o, us);
  const bool keep = front.keep_alive;
  c.slots.pop_front();
  if (!keep) {
    end_connection(c);
    return false;
  }
  return true;
}

// A static file's bytes, from the page cache to the socket (sendfile: never
// read into this process). False when the socket is full (EPOLLOUT resumes)
// or the connection ended; a file that shrank under us ends the connection,
// since its length was already promised.
bool NetworkProcess::send_file_part(Connection& c, ResponseSlot& slot) {
  constexpr uint64_t kChunk = 1 << 20;
  // The descriptor: the slot's own, or a cached one it shares (answer_static).
  const int file_fd = slot.file          ? slot.file.get()
                      : slot.cached_file ? slot.cached_file->fd.get()
                                         : -1;
  off_t offset = static_cast<off_t>(slot.file_offset);
  const ssize_t w = ::sendfile(c.fd.get(), file_fd, &offset, std::min(slot.file_left, kChunk));
  if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    return errno == EINTR;
  }
  if (w <= 0) {
    if (w == 0) log_warn("a static file shrank while being sent; connection closed");
    close_connection(c, w == 0 ? Closer::server : Closer::client);
    return false;
  }
  c.last_active_ms = now_ms_;
  count(own_slot().bytes_out, static_cast<uint64_t>(w));
  slot.written += static_cast<uint64_t>(w);
  slot.file_offset += static_cast<uint64_t>(w);
  slot.file_left -= static_cast<uint64_t>(w);
  if (slot.file_left == 0) slot.cached_file.reset();  // the cache may close it now
  return true;
}

// A paused connection whose queue has drained to half reads again. True
// when that happened (the caller writes again; the connection may be gone).
bool NetworkProcess::resume_reading(Connection& c) {
  // Draining: the stash is for the next process, but the request begun is
  // still read here to its end.
  if (!c.read_paused || c.window_paused || over_budget(c, 2) || !c.takeover.empty() ||
      (draining_ && !c.parser.mid_request())) {
    return false;
  }
  c.read_paused = false;
  if (!c.stash.empty()) {
    const std::string stash = std::move(c.stash);
    c.stash.clear();
    parse(c, stash);
  }
  if (c.readable && !c.read_paused) {
    read_from(c);
  } else if (c.state == ConnState::input_closed && c.slots.empty()) {
    end_connection(c);
  }
  return true;
}

// Ends a connection after its last response. A peer that may still be
// sending gets a lingering close (RFC 9112 9.6): half-close, then discard its
// input until EOF or kLingerMs, so the kernel does not answer unread bytes
// with a reset that could destroy the response still in flight.
void NetworkProcess::end_connection(Connection& c) {
  if (c.peer_closed) return close_connection(c);
  ::shutdown(c.fd.get(), SHUT_WR);
  c.state = ConnState::lingering;
  c.linger_until_ms = now_ms_ + kLingerMs;
  if (stopping_) c.linger_until_ms = std::min(c.linger_until_ms, stop_deadline_ms_);
  c.readable = true;
  linger(c);
}

void NetworkProcess::linger(Connection& c) {
  while (c.readable) {
    const ssize_t n = ::read(c.fd.get(), read_buffer_.data(), read_buffer_.size());
    if (n > 0) continue;  // discarded
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      c.readable = false;
      return;
    }
    return close_connection(c);  // EOF: the peer has everything
  }
}

// The scoreboard counters of a response (one writer: this process; readers
// load them relaxed).
void NetworkProcess::count_response(const ResponseSlot& slot, const Outcome& o, uint64_t us,
                                    bool timed) {
  if (o.status < 200 || o.status > 599) return;  // 100 Continue is not a response
  const auto cls = static_cast<size_t>(o.status / 100 - 1);
  shm::ProcessSlot& me = own_slot();
  count(me.requests);
  count(me.responses[cls]);
  if (slot.route >= 0 && static_cast<uint32_t>(slot.route) < env_.segment->header().n_routes) {
    count(env_.segment->route_counters(env_.index, static_cast<uint32_t>(slot.route))[cls]);
  }
  if (!timed) return;  // cut short: its time says nothing of the server's latency
  const size_t path = slot.via_service ? 1 : 0;
  size_t bucket = 0;
  while (bucket < std::size(shm::kLatencyBoundsUs) && us > shm::kLatencyBoundsUs[bucket]) ++bucket;
  count(me.latency_buckets[path][bucket]);
  count(me.latency_sum_us[path], us);
  count(me.latency_count[path]);
}

// One access log line per response: written whole, or cut (cut_outcome).
void NetworkProcess::log_access(const Connection& c, const ResponseSlot& slot, const Outcome& o,
                                uint64_t us) {
  if (o.status < 200) return;
  AccessEntry e;
  e.remote = c.peer;
  e.status = o.status;
  e.body_bytes = o.body_bytes;
  if (slot.access) {
    e.method = slot.access->method;
    e.target = slot.access->target;
    e.version_major = slot.access->version_major;
    e.version_minor = slot.access->version_minor;
    e.referer = slot.access->referer;
    e.user_agent = slot.access->user_agent;
    e.duration_ms = static_cast<double>(us) / 1e3;
  }
  access_log_.record(e, ::time(nullptr));
}

// The responses a connection owed when it ended: each is counted and
// logged once, as what reached the client (cut_outcome), so the access log
// has a line for every request answered or not.
void NetworkProcess::account_unwritten(Connection& c, Closer by) {
  const int64_t now = monotonic_us();
  for (size_t i = 0; i < c.slots.size(); ++i) {
    const ResponseSlot& slot = c.slots[i];
    const Outcome o = cut_outcome(slot, by);
    const auto us = static_cast<uint64_t>(std::max<int64_t>(0, now - slot.start_us));
    count_response(slot, o, us, /*timed=*/false);
    if (access_log_.enabled()) log_access(c, slot, o, us);
  }
}

// A request still arriving when its connection ends (its head cut short,
// or its body still coming for a route that answers at its end) was owed
// an answer too: it gets a slot, so account_unwritten logs and counts it
// (499 or 444, nothing sent; a head cut short has no request line, "-").
// Not when an answer already ended the input (a 408, a 413: that answer is
// its line), nor once its head went to a service (its slot is queued).
void NetworkProcess::owe_unfinished(Connection& c) {
  if (!c.input_open() || !c.parser.mid_request()) return;
  if (c.in && c.in->dispatched) return;
  ResponseSlot& slot = c.in ? new_slot(c, c.in->head) : add_slot(c);
  slot.start_us = c.request_start_ms * 1000;
  if (c.in && c.in->route != nullptr) {
    const auto* route = static_cast<const RouteSettings*>(c.in->route);
    slot.route = static_cast<int32_t>(route - env_.routes.data());
  }
  if (!c.in && access_log_.enabled()) slot.access = std::make_unique<AccessInfo>();
}

// Ends a connection now; its memory goes at the end of the loop iteration.
// What it still owed is accounted for as cut, by `by`.
void NetworkProcess::close_connection(Connection& c, Closer by) {
  if (c.finished()) return;
  owe_unfinished(c);
  account_unwritten(c, by);
  for (size_t i = 0; i < c.slots.size(); ++i) {
    if (c.slots[i].request_id != 0) cancel(c.slots[i].request_id);
  }
  release_incoming(c);
  loop_.remove(c.fd.get());
  c.state = ConnState::closed;
  finished_.push_back(c.id);
}

// Closed and handed-over connections leave here, at the end of the loop
// iteration (the socket closes with its owner).
void NetworkProcess::drop_finished() {
  if (finished_.empty()) return;
  for (uint64_t id : finished_) connections_.erase(id);
  finished_.clear();
  publish_connections();
}

// The client is gone, or the request got 504: the service stops working on
// it and answers the cancel with an (aborted) end record, which clears the
// entry. Until then the entry stays, without a slot, so that kill_after_ms
// is still watched.
void NetworkProcess::cancel(uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end() || it->second.slot == nullptr) return;
  channels_[it->second.service].send_control(proto::kCancel, id, {});
  it->second.slot = nullptr;
}

// A request held past kill_after_ms: the supervisor replaces that process
// (once per process incarnation; the rest of its entries go with it).
void NetworkProcess::watch_overdue(int64_t now) {
  const uint32_t n_network = env_.segment->header().n_network;
  for (auto it = pending_.begin(); it != pending_.end();) {
    const Pending& p = it->second;
    if (p.slot != nullptr || now < p.kill_at_ms) {
      ++it;
      continue;
    }
    const uint32_t incarnation = env_.segment->slot(n_network + p.service).incarnation;
    if (incarnation == p.incarnation && overdue_reported_[p.service] != incarnation) {
      overdue_reported_[p.service] = incarnation;
      proto::send_control(env_.control_fd,
                          {proto::ControlType::overdue, n_network + p.service, p.incarnation});
    }
    it = pending_.erase(it);
  }
}

// A full disk loses log lines, never requests; the operator learns of it
// from the error log (at most every 10 s) and from the metrics.
// The slot's counter is added to, like every _total: it outlives a
// replaced process.
void NetworkProcess::report_access_loss(int64_t now, bool at_exit) {
  if (const uint64_t n = access_log_.take_new_losses()) count(own_slot().access_lines_lost, n);
  if (std::string m = access_log_.loss_report(now, at_exit); !m.empty()) log_warn(m);
}

void NetworkProcess::sweep(int64_t now) {
  next_sweep_ms_ = now + 250;
  access_log_.flush(now);
  report_access_loss(now);
  watch_overdue(now);
  for (auto& [id, c] : connections_) {
    if (c->finished()) continue;
    expire_service_requests(*c, now);
    if (!sweep_connection(*c, now)) close_connection(*c);  // dropped later
  }
}

// Requests a service process did not answer in time get 504.
void NetworkProcess::expire_service_requests(Connection& c, int64_t now) {
  for (size_t i = 0; i < c.slots.size(); ++i) {
    ResponseSlot& slot = c.slots[i];
    if (slot.request_id == 0) continue;
    // Waiting for the client, not the service: its upload, or its reading
    // of response bytes already here (a slow reader holds the service at
    // its window; send_timeout_ms catches a client that stopped for good).
    const size_t written = i == 0 ? c.sent : 0;
    const bool unread = slot.head_seen && slot.data.size() > written;
    if ((slot.upload_open && !c.window_paused) || unread) {
      slot.deadline_ms = now + env_.services[service_of(slot.service)].timeout_ms;
      continue;
    }
    if (now < slot.deadline_ms) continue;
    if (slot.head_seen) {  // part of the answer may be out: no 504 can follow it
      log_warn("a streamed response stalled past the service timeout; connection closed");
      close_connection(c);
      return;
    }
    // The service is told (kCancel), so a handler that can let go does
    // (the proxy closes its upstream connection); it answers with an end
    // record. One that cannot (stuck, or a whole-request handler that never
    // answers) is still caught by kill_after_ms.
    if (c.in && c.in->id == slot.request_id) stop_upload(c);  // its body stopped half-way
    cancel(slot.request_id);
    slot.request_id = 0;
    slot.retry_record.clear();
    answer_error(slot, 504, slot.keep_alive);
    dirty_.push_back(c.id);
  }
}

// The connection's timeouts; false when it must be closed now.
bool NetworkProcess::sweep_connection(Connection& c, int64_t now) {
  if (c.state == ConnState::lingering) return now < c.linger_until_ms;
  const int64_t quiet = now - c.last_active_ms;
  switch (c.activity()) {
    case Activity::writing:
      // A client that does not take its response (a slow reader) is closed,
      // whatever else it has sent.
      return quiet < env_.network.send_timeout_ms;
    case Activity::waiting:
      // A body on its way to a service that the client stopped sending.
      if (c.in && c.in->dispatched && !c.window_paused &&
          now - c.last_active_ms >= env_.network.request_timeout_ms) {
        on_parse_error(c, 408);
        return true;
      }
      return true;  // the service's timeout applies (504, expire_service_requests)
    case Activity::receiving:
      if (now - c.request_start_ms < env_.network.request_timeout_ms) return true;
      // Answered before its body ended, and the rest of the body is late:
      // its one response went out, so no 408 follows it (a second answer
      // to one request, which a pipelining client would take for its next
      // request's). The connection ends with a lingering close, so a
      // client still sending does not lose that answer to a reset.
      if (c.in && c.in->dispatched) {
        c.close_input();
        end_connection(c);
        return true;
      }
      answer_error(add_slot(c), 408, false);  // slow or stalled request
      c.close_input();
      dirty_.push_back(c.id);
      return true;
    case Activity::idle:
      if (quiet >= env_.network.keepalive_timeout_ms) return false;
      // Stopping: an idle client is closed once it has been quiet a while and
      // nothing it sent waits unread, so the close does not cross a request.
      if (stopping_ && quiet >= kStopIdleMs && !input_waiting(c)) return false;
      if (quiet >= kTrimAfterMs) {
        c.parser.release_if_idle();  // an idle connection keeps no parser
        c.slots.trim();              // and no response queue
      }
      return true;
  }
  return true;
}

}  // namespace ringhttpd::worker
