// The reverse proxy (see proxy.h): upstream addresses, the connection pool,
// one Job per request from pick to finish, and the upstream response parser.
#include "worker/handlers/proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <llhttp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <vector>

#include "proto/chunked.h"
#include "proto/unique_fd.h"
#include "worker/block_cache.h"
#include "worker/event_loop.h"
#include "worker/handlers/answer_pace.h"
#include "worker/handlers/proxy_headers.h"
#include "worker/handlers/tunnel.h"
#include "worker/log.h"

namespace ringhttpd::worker {
namespace {

constexpr size_t kOutHigh = 256 * 1024;  // request bytes buffered for the upstream
constexpr size_t kReadBytes = 65536;
constexpr uint32_t kEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
// Times a pipelined request may be sent again (proxy's resend()).
constexpr size_t kMaxResends = 2;

// A response's Transfer-Encoding (all its lines, one list: RFC 9110 5.3)
// is absent or exactly "chunked": the only coding this proxy decodes. Any
// other (gzip, a parameter, chunked twice) would reach the client still
// encoded with nothing saying so (Transfer-Encoding is hop-by-hop), so it
// is a 502, as nginx's "upstream sent unknown Transfer-Encoding".
bool only_chunked(const std::vector<proto::Header>& headers) {
  int codings = 0;
  bool chunked_last = false;
  for (const proto::Header& h : headers) {
    if (!proto::iequals(h.name, "Transfer-Encoding")) continue;
    for_each_element(h.value, [&](std::string_view e) {
      ++codings;
      chunked_last = proto::iequals(e, "chunked");
      return true;
    });
  }
  return codings == 0 || (codings == 1 && chunked_last);
}

struct Upstream;
struct Job;
struct Pipe;

struct Conn {
  proto::UniqueFd fd;
  Upstream* up = nullptr;
  bool connected = false;
  bool reused = false;
  int64_t idle_since = 0;
  std::weak_ptr<Job> job;  // empty while idle
};

struct Upstream {
  std::string name;
  std::string host;  // the Host header for requests that came without one
  sockaddr_storage addr{};
  socklen_t len = 0;
  bool usable = false;
  uint32_t active = 0;
  int64_t down_until = 0;
  AnswerPace pace;  // how fast it answers: whether to pipeline (pipeline > 1)
  std::vector<std::unique_ptr<Conn>> idle;
  std::vector<std::unique_ptr<Pipe>> pipes;  // pipelined connections, busy or idle
};

// An upstream connection carrying several requests at once (pipeline > 1):
// GETs and HEADs without a body, written in order (those of one loop
// iteration in one send) and answered in the same order. The front job is
// the one being answered; only it has a deadline.
//
//   out:  [GET /a ...\r\n\r\n][GET /b ...][HEAD /c ...]   not yet written
//   jobs: front -> /a (response being read), /b, /c        answered in order
struct Pipe {
  proto::UniqueFd fd;
  Upstream* up = nullptr;
  bool connected = false;
  bool closed = false;        // given up: in the graveyard until the next poll
  bool write_queued = false;  // in the handler's list, written at the iteration's end
  bool last = false;       // takes no more requests; closed once the answers it still owes are in
  int64_t idle_since = 0;  // when its last job ended (jobs empty)
  uint64_t answered = 0;   // responses it carried whole
  std::deque<std::shared_ptr<Job>> jobs;
  std::string out;
  size_t out_at = 0;
  uint64_t queued = 0;  // request bytes ever put in `out` (out's end, in the stream)
};

struct Job {
  std::shared_ptr<Exchange> x;
  std::unique_ptr<Conn> conn;
  std::vector<Upstream*> tried;
  std::string out;  // request bytes for the upstream: head, then body
  size_t out_at = 0;
  bool chunked_up = false;  // the body goes upstream chunked (length unknown)
  bool body_all = false;    // the whole request is in `out`
  bool replayable = true;   // `out` still holds the request from its first byte
  bool retried = false;
  bool head = false;  // a HEAD request: the response has no body
  // The upstream's own name goes in `out` at host_at (host_len bytes), set
  // by name_host for each attempt: with host_header "$upstream", or when the
  // client sent no Host (HTTP/1.0) or an empty one.
  bool add_host = false;
  size_t host_at = 0;
  size_t host_len = 0;
  llhttp_t parser{};
  // A chunked response body is decoded by `chunks`, not llhttp (which is
  // lax there: proto/chunked.h); llhttp pauses after the head.
  bool chunked_down = false;
  proto::ChunkedDecoder chunks;
  uint64_t head_bytes = 0;  // bytes read before the final head ended (kMaxResponseHeadBytes)
  std::vector<proto::Header> headers;
  bool in_value = false;
  bool got_any = false;       // a response byte arrived
  const char* bad = nullptr;  // why the head was refused, if not "malformed response"
  bool started = false;       // the response began toward the client
  bool complete = false;
  bool paused = false;  // the client side is full: reading waits
  bool done = false;
  int64_t deadline = 0;
  // On a pipelined connection: when it came first in line there, connected
  // (the upstream's time for its answer is counted from then: AnswerPace).
  int64_t asked_ms = 0;
  Pipe* pipe = nullptr;          // the pipelined connection it is on (never with `conn`)
  uint64_t answered_before = 0;  // the pipe's `answered` when the job joined it
  size_t resends = 0;            // times sent again because a pipe would not answer it
  uint64_t out_start = 0;        // where its request begins in its pipe's byte stream
};

// A job and its shared_ptr control block are one block of the process's
// cache (HandlerLoop::blocks), which keeps blocks up to kMaxBlock bytes.
static_assert(sizeof(Job) + 64 <= BlockCache::kMaxBlock, "jobs would bypass the block cache");

Job* job_of(llhttp_t* p) { return static_cast<Job*>(p->data); }

// An upstream's response head is held whole before it goes on, so its
// size is bounded, as the tunnel's is (and nginx's proxy_buffer_size): past
// this many bytes read before the final head ends (interim heads count
// too), 502. Counted in raw bytes (read_in), so a head of many tiny fields
// costs no more than one long field.
constexpr uint64_t kMaxResponseHeadBytes = 64 * 1024;

int on_header_field(llhttp_t* p, const char* at, size_t n) {
  constexpr size_t kUsualHeaders = 16;  // room for a usual response's, at once
  Job* j = job_of(p);
  if (j->headers.capacity() == 0) j->headers.reserve(kUsualHeaders);
  gather_name(j->headers, j->in_value, {at, n});
  return 0;
}

int on_header_value(llhttp_t* p, const char* at, size_t n) {
  Job* j = job_of(p);
  return gather_value(j->headers, j->in_value, {at, n}) ? 0 : -1;
}

int on_headers_complete(llhttp_t* p) {
  Job* j = job_of(p);
  // A status outside 100..599 is no HTTP status (RFC 9110 15): malformed,
  // 502 like any other broken response (not a status the client could get).
  if (p->status_code < 100 || p->status_code > 599) return -1;
  // 101: this path asked for no protocol switch (Upgrade is not passed
  // on; upgrades go through the tunnel), so an upstream may not make one
  // (RFC 9110 15.2.2): malformed, 502 at once.
  if (p->status_code == 101) return -1;
  if (p->status_code < 200) {
    // 1xx: skipped, the final answer follows. An interim response has no
    // content (RFC 9110 15.2), so framing on one is malformed: its "body"
    // would be read as such and the exchange would wait for the real one.
    if (p->flags & (F_CONTENT_LENGTH | F_CHUNKED | F_TRANSFER_ENCODING)) return -1;
    return 0;
  }
  if (!only_chunked(j->headers)) {
    j->bad = "unknown transfer coding";
    return -1;
  }
  // An HTTP/1.0 message with Transfer-Encoding has faulty framing (RFC 9112
  // 6.1): the 1.0 recipient it was written for would read it otherwise.
  if (p->http_major == 1 && p->http_minor == 0 && (p->flags & F_TRANSFER_ENCODING)) {
    j->bad = "Transfer-Encoding in an HTTP/1.0 response";
    return -1;
  }
  // A length no file can have (RFC 9110 8.6 leaves the bound to us; nginx's
  // is 2^63 - 1, off_t's): refused whatever the client's framing would be.
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > uint64_t{INT64_MAX}) {
    j->bad = "Content-Length out of range";
    return -1;
  }
  std::vector<proto::Header> kept;
  kept.reserve(j->headers.size());
  for (proto::Header& h : j->headers) {
    if (hop_by_hop(h.name) || listed_in_connection(j->headers, h.name)) continue;
    kept.push_back(std::move(h));
  }
  // The head as the ring carries it may not fit where the upstream's text
  // did (many short fields cost more encoded): the upstream's fault, 502.
  if (!j->x->head_fits(kept)) {
    j->bad = "response head too large for the ring (services[i].ring_bytes)";
    return -1;
  }
  const bool length = (p->flags & F_CONTENT_LENGTH) != 0;
  const bool no_body = p->status_code == 204 || p->status_code == 304;
  j->x->start(p->status_code, std::move(kept),
              no_body  ? 0
              : length ? p->content_length
                       : proto::kUnknownBodyLength);
  j->started = true;
  if (j->head || no_body) return 1;  // no body follows (llhttp)
  if ((p->flags & F_CHUNKED) == 0) return 0;
  j->chunked_down = true;  // read_in decodes the rest
  return HPE_PAUSED;
}

int on_body(llhttp_t* p, const char* at, size_t n) {
  Job* j = job_of(p);
  if (!j->started) return -1;  // body bytes before a final head: malformed
  if (!j->x->write(std::string_view(at, n))) j->paused = true;
  return 0;
}

int on_message_complete(llhttp_t* p) {
  Job* j = job_of(p);
  if (p->status_code < 200) {
    j->headers.clear();
    j->in_value = false;
    return 0;
  }
  j->complete = true;
  return HPE_PAUSED;  // bytes after it are not ours to read
}

const llhttp_settings_t& response_settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t t;
    llhttp_settings_init(&t);
    t.on_header_field = on_header_field;
    t.on_header_value = on_header_value;
    t.on_headers_complete = on_headers_complete;
    t.on_body = on_body;
    t.on_message_complete = on_message_complete;
    return t;
  }();
  return s;
}

// What feeding response bytes to a job's parser came to.
struct Fed {
  size_t used = 0;            // leading bytes that belong to this response
  bool done = false;          // its last byte was among them
  const char* why = nullptr;  // set: the response is malformed
};

// Response bytes to the job's parser (llhttp for the head and a body of
// known length, proto::ChunkedDecoder for a chunked one); bytes after the
// response's end are left (`used`), as they belong to the next response
// on a pipelined connection, or to none.
Fed feed(Job& job, std::string_view bytes) {
  Fed r;
  if (!job.chunked_down) {
    const llhttp_errno_t e = llhttp_execute(&job.parser, bytes.data(), bytes.size());
    if (!job.complete && !(e == HPE_PAUSED && job.chunked_down)) {
      if (e != HPE_OK) r.why = job.bad != nullptr ? job.bad : "malformed response";
      r.used = bytes.size();
      return r;
    }
    r.used = static_cast<size_t>(llhttp_get_error_pos(&job.parser) - bytes.data());
    if (job.complete) {
      r.done = true;
      return r;
    }
  }
  const auto c = job.chunks.feed(bytes.substr(r.used), [&](std::string_view piece) {
    if (!job.x->write(piece)) job.paused = true;
  });
  r.used += c.used;
  if (c.error != nullptr) {
    r.why = "malformed chunked body";
  } else if (c.done) {
    job.complete = true;
    r.done = true;
  }
  return r;
}

// What nginx sends as $proxy_host: the upstream as configured, without the
// default port; "localhost" for a unix socket.
std::string host_of(const std::string& spec) {
  if (spec.starts_with("unix:")) return "localhost";
  if (spec.ends_with(":80")) return spec.substr(0, spec.size() - 3);
  return spec;
}

bool resolve(const std::string& spec, Upstream& up) {
  if (spec.starts_with("unix:")) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    const std::string path = spec.substr(5);
    if (path.size() >= sizeof un.sun_path) return false;
    std::memcpy(un.sun_path, path.data(), path.size());
    std::memcpy(&up.addr, &un, sizeof un);
    up.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return true;
  }
  const size_t colon = spec.rfind(':');
  std::string host = spec.substr(0, colon);
  const std::string port = spec.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
    return false;
  }
  std::memcpy(&up.addr, found->ai_addr, found->ai_addrlen);
  up.len = found->ai_addrlen;
  ::freeaddrinfo(found);
  return true;
}

class ProxyHandler : public Handler, public TunnelHost {
 public:
  explicit ProxyHandler(const ServiceSettings& settings) : settings_(settings.proxy) {
    for (const std::string& spec : settings_.upstreams) {
      auto up = std::make_unique<Upstream>();
      up->name = spec;
      up->host = host_of(spec);
      up->usable = resolve(spec, *up);
      if (!up->usable) log_error("proxy upstream " + spec + ": cannot resolve; passed over");
      upstreams_.push_back(std::move(up));
    }
  }

  // Tunnels first: closing one gives its upstream back (upstreams_).
  ~ProxyHandler() override {
    tunnels_.clear();
    ended_tunnels_.clear();
  }

  bool streams() const override { return true; }
  void handle(ServiceRequest, std::unique_ptr<Responder> responder) override {
    responder->respond(proto::HttpResponse{500, {}, "proxy takes streams only\n"});
  }
  void attach(HandlerLoop& loop) override { loop_ = &loop; }

  void handle_stream(std::shared_ptr<Exchange> x) override {
    now_ = monotonic_ms();
    // From the process's block cache: a batch of jobs ends together (freed
    // at the next poll), more than the allocator's per-thread cache keeps.
    auto job = std::allocate_shared<Job>(std::pmr::polymorphic_allocator<Job>(&loop_->blocks()));
    job->x = x;
    job->head = x->request().http.method == "HEAD";
    build_head(*job);
    std::weak_ptr<Job> weak = job;
    x->set_listener([this, weak] {
      if (auto j = weak.lock()) on_exchange(j);
    });
    jobs_.emplace(job.get(), job);
    pull_body(*job);
    if (pipelined(*job)) return submit(job);
    start_attempt(job);
  }

  int64_t poll(int64_t now) override {
    now_ = now;
    write_pipes();  // the requests of this iteration, several per send
    pipe_graveyard_.clear();
    graveyard_.clear();  // no callback of theirs is running here
    dead_.clear();
    ended_tunnels_.clear();
    if (now >= next_check_) {
      next_check_ = INT64_MAX;
      check_deadlines(now);
      write_pipes();  // requests it sent again
    }
    if (now >= tunnel_check_) check_tunnels(now);
    const int64_t next = std::min(next_check_, tunnel_check_);
    return next == INT64_MAX ? -1 : next;
  }

  // ---- connections taken over (worker/handlers/tunnel.h) ----

  void take_connection(proto::UniqueFd client, ServiceRequest request, std::string early) override {
    now_ = monotonic_ms();
    auto t =
        std::make_unique<Tunnel>(*this, std::move(client), std::move(request), std::move(early));
    Tunnel* raw = t.get();
    tunnels_.emplace(raw, std::move(t));
    raw->start();
  }
  bool takes_connections() const override { return settings_.upgrade; }
  size_t connections_held() const override { return tunnels_.size(); }

  HandlerLoop& loop() override { return *loop_; }
  const ProxySettings& settings() const override { return settings_; }

  bool pick_upstream(std::vector<size_t>& tried, TunnelUpstream& out) override {
    now_ = monotonic_ms();
    std::vector<Upstream*> passed;
    for (size_t i : tried) passed.push_back(upstreams_[i].get());
    Upstream* up = pick(passed);
    if (up == nullptr) return false;
    out.index = static_cast<size_t>(std::find_if(upstreams_.begin(), upstreams_.end(),
                                                 [up](auto& u) { return u.get() == up; }) -
                                    upstreams_.begin());
    tried.push_back(out.index);
    out.addr = up->addr;
    out.len = up->len;
    out.host = up->host;
    out.name = up->name;
    ++up->active;  // least_conn counts tunnels too
    return true;
  }
  bool may_try_another(const std::vector<size_t>& tried) const override {
    for (size_t i = 0; i < upstreams_.size(); ++i) {
      if (upstreams_[i]->usable && std::count(tried.begin(), tried.end(), i) == 0) return true;
    }
    return false;
  }
  void upstream_failed(size_t index, const std::string& why) override {
    now_ = monotonic_ms();
    mark_down(*upstreams_[index], why);
  }
  void upstream_released(size_t index) override {
    if (upstreams_[index]->active > 0) --upstreams_[index]->active;
  }
  void wake_at(int64_t ms) override { tunnel_check_ = std::min(tunnel_check_, ms); }
  void tunnel_ended(Tunnel& t) override {
    auto it = tunnels_.find(&t);
    if (it == tunnels_.end()) return;
    ended_tunnels_.push_back(std::move(it->second));  // freed at the next poll
    tunnels_.erase(it);
  }

 private:
  // ---- the request toward the upstream ----

  void build_head(Job& job) {
    const ServiceRequest& r = job.x->request();
    const proto::HttpRequest& req = r.http;
    std::string& o = job.out;
    o.reserve(512);
    o += req.method;
    o += ' ';
    // Origin-form to an origin server (RFC 9112 3.2.1), as nginx sends it:
    // an absolute-form target's authority is already the Host.
    const std::string_view target = proto::origin_form(req.target);
    if (target.empty() || target.front() == '?') o += '/';
    o += target;
    o += " HTTP/1.1\r\n";
    // Host (HostHeader): the client's; or the upstream's, whose line goes
    // here once the upstream is known (name_host), also when an HTTP/1.0
    // client sent none (HTTP/1.1 requires one, RFC 9112 3.2); or the
    // configured one.
    const HostHeader& host = settings_.host_header;
    // An empty Host is no name (an http URI's authority is never empty,
    // RFC 9112 3.2): the upstream's instead, as with none.
    const bool keep_host = host.keep() && !req.header("Host").empty();
    job.add_host = !keep_host && !host.literal();
    job.host_at = o.size();
    if (host.literal()) {
      o += "Host: ";
      o += host.value;
      o += "\r\n";
    }
    for (const proto::Header& h : req.headers) {
      if (hop_by_hop(h.name) || listed_in_connection(req.headers, h.name)) continue;
      if (underscore_name(h.name) || forwarding_field(h.name)) continue;
      if (!keep_host && proto::iequals(h.name, "Host")) continue;
      o += h.name;
      o += ": ";
      o += h.value;
      o += "\r\n";
    }
    append_forwarding(o, req, r.origin.client);
    const uint64_t length = job.x->body_length();
    if (length == proto::kUnknownBodyLength) {
      o += "Transfer-Encoding: chunked\r\n";
      job.chunked_up = true;
    } else if (length > 0 || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
      o += "Content-Length: ";
      o += std::to_string(length);
      o += "\r\n";
    }
    o += "\r\n";
  }

  // Body bytes the client sent, into `out` while it holds less than
  // kOutHigh unwritten; consuming them lets the client send more.
  void pull_body(Job& job) {
    while (!job.body_all && job.out.size() - job.out_at < kOutHigh) {
      const std::string_view b = job.x->body();
      if (!b.empty()) {
        const size_t n = std::min(b.size(), kOutHigh);
        if (job.chunked_up) {
          char size[20];
          const int k = std::snprintf(size, sizeof size, "%zx\r\n", n);
          job.out.append(size, static_cast<size_t>(k));
        }
        job.out.append(b.substr(0, n));
        if (job.chunked_up) job.out += "\r\n";
        job.x->consume(n);
        continue;
      }
      if (!job.x->body_complete()) return;
      if (job.chunked_up) job.out += "0\r\n\r\n";
      job.body_all = true;
    }
  }

  // ---- upstream choice and connections ----

  Upstream* pick(const std::vector<Upstream*>& tried) {
    Upstream* best = nullptr;
    const size_t n = upstreams_.size();
    for (int pass = 0; pass < 2 && best == nullptr; ++pass) {
      for (size_t k = 0; k < n; ++k) {
        Upstream* up = upstreams_[(next_ + k) % n].get();
        if (!up->usable || std::count(tried.begin(), tried.end(), up) != 0) continue;
        if (pass == 0 && up->down_until > now_) continue;  // resting; used if all rest
        if (best == nullptr || (settings_.balance == "least_conn" && up->active < best->active)) {
          best = up;
          if (settings_.balance != "least_conn") break;
        }
      }
    }
    ++next_;
    return best;
  }

  // pick() would find an upstream for `job`: one it has not tried.
  bool may_try_another(const Job& job) const {
    return std::any_of(upstreams_.begin(), upstreams_.end(), [&job](const auto& up) {
      return up->usable && std::count(job.tried.begin(), job.tried.end(), up.get()) == 0;
    });
  }

  // A kept-alive connection still fit to carry a request: not idle too
  // long, and nothing (no EOF, no stray bytes, no error) waiting on it. An
  // idle connection is watched, so an upstream's close is often seen (and
  // the connection dropped) before it is picked, but not always: an
  // upstream that closes right after its answer (no "Connection: close")
  // races the next request, which may be picked in the same loop
  // iteration the FIN arrives in. So every reuse asks first (a MSG_PEEK,
  // one syscall, as nginx does). A close that still slips through (after
  // the peek) is a failure before any response byte: retried once for a
  // request safe to repeat. (Skipping the peek for such requests, leaving
  // a close to the retry, was tried: 1.02x req/s, but stray bytes an
  // upstream left on the connection, such as its idle-timeout 408, would
  // be read as the request's answer, and those cannot be retried.)
  std::unique_ptr<Conn> idle_conn(Upstream& up) {
    while (!up.idle.empty()) {
      std::unique_ptr<Conn> c = std::move(up.idle.back());
      up.idle.pop_back();
      if (now_ - c->idle_since < settings_.idle_timeout_ms && quiet(c->fd)) return c;
      close_conn(std::move(c));
    }
    return nullptr;
  }

  static bool quiet(const proto::UniqueFd& fd) {
    char byte;
    return ::recv(fd.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
           (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  // Sent again on a new connection: a reused connection that failed before
  // any byte of the response, for a request that is safe to repeat (the
  // upstream may have acted on it before closing) and still whole here.
  bool may_retry(const Job& job) const {
    const std::string& m = job.x->request().http.method;
    const bool idempotent =
        m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "PUT" || m == "DELETE" || m == "TRACE";
    return job.conn && job.conn->reused && !job.got_any && !job.retried && job.replayable &&
           idempotent;
  }

  void retry(const std::shared_ptr<Job>& job) {
    job->retried = true;
    job->out_at = 0;
    release_active(*job);
    close_conn(std::move(job->conn));
    job->tried.pop_back();
    start_attempt(job);
  }

  // A non-blocking connect to `up`; `connected` if it was done at once.
  // Not valid when it failed at once (a unix socket nobody listens on).
  static proto::UniqueFd dial(const Upstream& up, bool& connected) {
    proto::UniqueFd fd(::socket(up.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return fd;
    if (up.addr.ss_family != AF_UNIX) {
      const int one = 1;
      ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    const int r = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&up.addr), up.len);
    connected = r == 0;
    if (r != 0 && errno != EINPROGRESS && errno != EAGAIN) {
      const int err = errno;  // for the caller's message: close() may change it
      fd.reset();
      errno = err;
    }
    return fd;
  }

  std::unique_ptr<Conn> connect_new(Upstream& up) {
    auto c = std::make_unique<Conn>();
    c->up = &up;
    c->fd = dial(up, c->connected);
    if (!c->fd) return nullptr;
    // One watch for the connection's whole life, busy or idle.
    Conn* raw = c.get();
    if (!loop_->watch(c->fd.get(), kEvents, [this, raw](uint32_t ev) { on_conn(raw, ev); })) {
      return nullptr;
    }
    return c;
  }

  void on_conn(Conn* raw, uint32_t ev) {
    now_ = monotonic_ms();
    if (auto j = raw->job.lock(); j && j->conn.get() == raw) return on_conn_event(j, ev);
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) drop_idle(raw);
  }

  void start_attempt(const std::shared_ptr<Job>& job) {
    for (;;) {
      Upstream* up = pick(job->tried);
      if (up == nullptr) return fail(job, 502, "no upstream could be reached");
      job->tried.push_back(up);
      std::unique_ptr<Conn> c = idle_conn(*up);
      if (c) {
        c->reused = true;
      } else {
        c = connect_new(*up);
        if (!c) {
          mark_down(*up, "connect failed: " + std::string(std::strerror(errno)));
          continue;
        }
      }
      begin(job, std::move(c));
      return;
    }
  }

  void begin(const std::shared_ptr<Job>& job, std::unique_ptr<Conn> c) {
    name_host(*job, *c->up);
    c->job = job;
    ++c->up->active;
    job->conn = std::move(c);
    expect_response(*job);
    set_deadline(
        *job, job->conn->connected ? settings_.response_timeout_ms : settings_.connect_timeout_ms);
    if (job->conn->connected) write_out(job);
  }

  // Nothing of `out` was sent yet (a first attempt, or a retry from its
  // first byte): the Host line can still name this attempt's upstream.
  static void name_host(Job& job, const Upstream& up) {
    if (!job.add_host || job.out_at != 0) return;
    const std::string line = "Host: " + up.host + "\r\n";
    job.out.replace(job.host_at, job.host_len, line);
    job.host_len = line.size();
  }

  static void expect_response(Job& job) {
    job.got_any = false;
    llhttp_init(&job.parser, HTTP_RESPONSE, &response_settings());
    job.parser.data = &job;
    job.headers.clear();
    job.in_value = false;
    job.head_bytes = 0;
  }

  void mark_down(Upstream& up, const std::string& why) {
    if (up.down_until <= now_) {
      log_warn("proxy upstream " + up.name + ": " + why + "; passed over for " +
               std::to_string(settings_.fail_timeout_ms) + " ms");
    }
    up.down_until = now_ + settings_.fail_timeout_ms;
  }

  // ---- events ----

  void on_conn_event(const std::shared_ptr<Job>& job, uint32_t ev) {
    Conn& c = *job->conn;
    if (!c.connected) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0 || (ev & (EPOLLERR | EPOLLHUP))) {
        mark_down(*c.up, "connect failed: " + std::string(std::strerror(err ? err : ECONNREFUSED)));
        return retry_elsewhere(job);
      }
      if (!(ev & EPOLLOUT)) return;
      c.connected = true;
      set_deadline(*job, settings_.response_timeout_ms);
    }
    if (ev & EPOLLOUT) write_out(job);
    if (!job->done && job->conn && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
      read_in(job);
    }
  }

  // ---- pipelined connections (pipeline > 1) ----

  // A request that may wait behind others on a connection and be sent
  // again if the connection ends before its answer (RFC 9112 9.3.2): a GET
  // or HEAD with no body, whole in `out`.
  bool pipelined(const Job& job) const {
    const std::string& m = job.x->request().http.method;
    return settings_.pipeline > 1 && job.body_all && job.x->body_length() == 0 && !job.chunked_up &&
           (m == "GET" || m == "HEAD");
  }

  // `first_in_line`: not behind another request (a request sent again).
  void submit(const std::shared_ptr<Job>& job, bool first_in_line = false) {
    for (;;) {
      Upstream* up = pick(job->tried);
      if (up == nullptr) return fail(job, 502, "no upstream could be reached");
      job->tried.push_back(up);
      if (Pipe* p = pipe_for(*up, /*join_busy=*/!first_in_line)) return enqueue(job, *p);
      mark_down(*up, "connect failed: " + std::string(std::strerror(errno)));
    }
  }

  // A busy connection with room first (`join_busy`), while the upstream
  // answers fast and this connection's front request has not waited long
  // (AnswerPace): that is where requests share a write; not one whose
  // front answer waits for its client to read. Then an idle one still fit
  // (the same check as idle_conn), then a new one; null if a new connect
  // failed at once.
  Pipe* pipe_for(Upstream& up, bool join_busy) {
    for (auto& p : up.pipes) {
      if (join_busy && !p->last && !p->jobs.empty() && !p->jobs.front()->paused &&
          p->jobs.size() < settings_.pipeline &&
          up.pace.may_join(settings_.pipeline_fast_ms, now_ - p->jobs.front()->asked_ms)) {
        return p.get();
      }
    }
    for (size_t i = up.pipes.size(); i-- > 0;) {
      Pipe& p = *up.pipes[i];
      if (!p.jobs.empty()) continue;
      if (now_ - p.idle_since < settings_.idle_timeout_ms && quiet(p.fd)) return &p;
      close_pipe(p, false);
    }
    auto p = std::make_unique<Pipe>();
    p->up = &up;
    p->fd = dial(up, p->connected);
    Pipe* raw = p.get();
    if (!p->fd ||
        !loop_->watch(p->fd.get(), kEvents, [this, raw](uint32_t ev) { on_pipe(raw, ev); })) {
      return nullptr;
    }
    up.pipes.push_back(std::move(p));
    return raw;
  }

  void enqueue(const std::shared_ptr<Job>& job, Pipe& p) {
    name_host(*job, *p.up);
    expect_response(*job);
    job->pipe = &p;
    job->answered_before = p.answered;
    ++p.up->active;
    p.jobs.push_back(job);
    job->out_start = p.queued;
    p.out += job->out;
    p.queued += job->out.size();
    job->deadline = 0;  // waits behind the front without a clock of its own
    if (p.jobs.size() == 1) front_clock(p);
    if (!p.write_queued) {
      p.write_queued = true;
      to_write_.push_back(&p);
    }
  }

  // The front job's clock: connect, then the response; and the start of
  // the time its answer takes (AnswerPace), reset once connected, so
  // neither the answers before it nor the connect count.
  void front_clock(Pipe& p) {
    if (p.jobs.empty()) return;
    Job& front = *p.jobs.front();
    set_deadline(front, p.connected ? settings_.response_timeout_ms : settings_.connect_timeout_ms);
    front.asked_ms = now_;  // fresh: set_deadline reads the clock
  }

  // Giving up a pipe may send its jobs again, onto other pipes: until none
  // is left to write.
  void write_pipes() {
    while (!to_write_.empty()) {
      std::vector<Pipe*> now = std::move(to_write_);
      to_write_.clear();
      for (Pipe* p : now) {
        p->write_queued = false;
        if (!p->closed && p->connected) pipe_write(*p);
      }
    }
  }

  void pipe_write(Pipe& p) {
    while (p.out_at < p.out.size()) {
      const ssize_t n =
          ::send(p.fd.get(), p.out.data() + p.out_at, p.out.size() - p.out_at, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) return pipe_lost(p);
      p.out_at += static_cast<size_t>(n);
    }
    p.out.clear();
    p.out_at = 0;
  }

  void on_pipe(Pipe* p, uint32_t ev) {
    now_ = monotonic_ms();
    if (p->closed) return;
    if (!p->connected) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(p->fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0 || (ev & (EPOLLERR | EPOLLHUP))) {
        mark_down(*p->up,
                  "connect failed: " + std::string(std::strerror(err ? err : ECONNREFUSED)));
        return close_pipe(*p, true);  // its jobs go to the other upstreams
      }
      if (!(ev & EPOLLOUT)) return;
      p->connected = true;
      front_clock(*p);
    }
    if (ev & EPOLLOUT) pipe_write(*p);
    if (p->closed || !(ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
    if (p->jobs.empty()) return close_pipe(*p, false);  // idle: closed, or stray bytes
    pipe_read(*p);
  }

  // Responses, each to the front job in turn; reading waits while the
  // front's client side is full (and so do the jobs behind it).
  void pipe_read(Pipe& p) {
    char buf[kReadBytes];
    while (!p.closed && !p.jobs.empty() && !p.jobs.front()->paused) {
      const ssize_t n = ::recv(p.fd.get(), buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) return pipe_eof(p, /*clean=*/n == 0);
      std::string_view bytes(buf, static_cast<size_t>(n));
      while (!bytes.empty() && !p.closed) {
        // Bytes past the last answer: nobody's. The connection goes.
        if (p.jobs.empty()) return close_pipe(p, false);
        std::shared_ptr<Job> job = p.jobs.front();
        set_deadline(*job, settings_.response_timeout_ms);  // now_ is the read's time
        if (!job->got_any) p.up->pace.note(now_ - job->asked_ms);
        job->got_any = true;
        Fed r = feed(*job, bytes);
        // The head's bound, checked per read here (a read may hold several
        // answers): at most one read past kMaxResponseHeadBytes.
        if (!job->started && r.why == nullptr) {
          job->head_bytes += r.used;
          if (job->head_bytes >= kMaxResponseHeadBytes) r.why = "response head too large";
        }
        if (r.why != nullptr) return pipe_broke(p, r.why);
        bytes.remove_prefix(r.used);
        if (r.done) {
          pipe_complete(p);
        } else if (job->started && !job->x->responding()) {
          return end(job, false);
        } else if (job->paused && p.jobs.size() > 1) {
          // Its client reads slowly: the others do not wait for that.
          cut_behind(p, 1);
        }
      }
    }
  }

  void pipe_complete(Pipe& p) {
    std::shared_ptr<Job> job = std::move(p.jobs.front());
    p.jobs.pop_front();
    const bool keep_alive = llhttp_should_keep_alive(&job->parser) != 0;
    detach(*job);
    ++p.answered;
    job->done = true;
    job->x->finish();
    retire(job);
    // "Connection: close" (or HTTP/1.0): the requests behind it will not
    // be answered here; they go again on another connection.
    if (!keep_alive) return close_pipe(p, false);
    if (!p.jobs.empty()) return front_clock(p);
    if (p.last) return close_pipe(p, false);  // the answers owed before a cut are in
    p.idle_since = now_;
    if (idle_conns(*p.up) > settings_.keepalive) return close_pipe(p, false);
    next_check_ = std::min<int64_t>(next_check_, now_ + settings_.idle_timeout_ms);
  }

  // The upstream closed the connection (`clean`: an orderly close, not a
  // reset or another read error). A body that ends with the connection
  // completes only at a clean close (RFC 9112 6.3, rule 8); after an error
  // it is cut. The front job, with no byte of its answer, goes again with the jobs
  // behind it: without counting as its retry if the connection answered
  // others after the job joined it (the upstream ended it after some
  // requests, as HTTP lets it), else once (the upstream may have closed a
  // connection it thought idle; twice is a 502, so an upstream that crashes
  // on the request is not fed it again and again). Every re-send counts
  // against kMaxResends (resend).
  void pipe_eof(Pipe& p, bool clean) {
    const std::shared_ptr<Job> front = p.jobs.front();
    if (clean && front->got_any && !front->complete && !front->chunked_down) {
      const llhttp_errno_t e = llhttp_finish(&front->parser);
      if ((e == HPE_OK || e == HPE_PAUSED) && front->complete) return pipe_complete(p);
    }
    if (!front->got_any) {
      const bool after_answers = p.answered > front->answered_before;
      if (after_answers || !front->retried) {
        if (!after_answers) front->retried = true;
        return close_pipe(p, false);
      }
    }
    pipe_broke(p, !front->got_any ? "closed without a response"
                  : clean         ? "truncated response"
                                  : "connection reset during the response");
  }

  // The front job's answer is broken: 502 (or its response aborted); the
  // connection goes and the jobs behind it are sent again.
  void pipe_broke(Pipe& p, const char* why) {
    log_warn("proxy upstream " + p.up->name + ": " + why);
    const std::shared_ptr<Job> front = std::move(p.jobs.front());
    p.jobs.pop_front();
    detach(*front);
    close_pipe(p, false);
    fail(front, 502, why);
  }

  void pipe_lost(Pipe& p) {
    log_warn("proxy upstream " + p.up->name + ": write failed");
    close_pipe(p, false);
  }

  // Gives the connection up; its jobs are sent again from their first byte
  // (they are safe to repeat). `failed_connect`: the upstream is passed
  // over for them, otherwise it may take them again.
  void close_pipe(Pipe& p, bool failed_connect) {
    if (p.closed) return;
    p.closed = true;
    loop_->unwatch(p.fd.get());
    auto& pipes = p.up->pipes;
    auto it = std::find_if(pipes.begin(), pipes.end(), [&p](auto& q) { return q.get() == &p; });
    if (it != pipes.end()) {
      pipe_graveyard_.push_back(std::move(*it));  // freed at the next poll, off any call chain
      pipes.erase(it);
    }
    std::deque<std::shared_ptr<Job>> jobs = std::move(p.jobs);
    p.jobs.clear();
    for (const std::shared_ptr<Job>& job : jobs) {
      if (job->got_any) {  // part of its answer came: it cannot go again
        detach(*job);
        fail(job, 502, "upstream connection lost");
      } else if (failed_connect) {
        detach(*job);
        submit(job, /*first_in_line=*/job->resends > 0);
      } else {
        resend(job);
      }
    }
  }

  static void detach(Job& job) {
    if (job.pipe == nullptr) return;
    if (job.pipe->up->active > 0) --job.pipe->up->active;
    job.pipe = nullptr;
  }

  // A job that ends while on a pipe (its client gone, its timer run out):
  // its answer would still come on the connection, so the connection is
  // not used past it. The front job: the connection goes now, and the jobs
  // behind it are sent again. One behind the front: the answers to the
  // jobs before it (the front's perhaps under way) are read to their end,
  // then the connection goes; the jobs behind the one leaving are sent
  // again now, and its request and theirs, if not gone out yet, never go.
  void leave_pipe(Job& job) {
    Pipe& p = *job.pipe;
    detach(job);
    auto it =
        std::find_if(p.jobs.begin(), p.jobs.end(), [&job](auto& j) { return j.get() == &job; });
    if (it == p.jobs.begin() || it == p.jobs.end()) {
      if (it != p.jobs.end()) p.jobs.erase(it);
      return close_pipe(p, false);
    }
    const size_t at = static_cast<size_t>(it - p.jobs.begin());
    take_back(p, job.out_start);
    p.jobs.erase(it);
    cut_behind(p, at);
  }

  // The connection takes no more requests, and is closed once the answers
  // to the jobs before `from` are in; the jobs from `from` on go again
  // elsewhere now.
  void cut_behind(Pipe& p, size_t from) {
    p.last = true;
    if (from < p.jobs.size()) take_back(p, p.jobs[from]->out_start);
    const auto first = p.jobs.begin() + static_cast<long>(from);
    std::vector<std::shared_ptr<Job>> behind(first, p.jobs.end());
    p.jobs.erase(first, p.jobs.end());
    for (const std::shared_ptr<Job>& job : behind) resend(job);
  }

  // The request bytes from stream offset `from` on, as far as they have not
  // gone out yet: never sent (the connection is closed before it would
  // read them; a request left half sent is never answered).
  static void take_back(Pipe& p, uint64_t from) {
    const uint64_t base = p.queued - p.out.size();  // out[0]'s offset
    const uint64_t at = std::max<uint64_t>(from, base + p.out_at);
    if (at >= p.queued) return;
    p.out.resize(static_cast<size_t>(at - base));
    p.queued = at;
  }

  // A job whose request went on a connection that will not answer it: sent
  // again (it is safe to repeat) first in line on an idle or new
  // connection, so it is next to be answered there and never moved on
  // again for others' sake. So a request reaches the upstream at most
  // three times: once, once more when the connection it waited on ended
  // before its turn, and once more when, first in line, its connection
  // closed without a byte of its answer (pipe_eof). kMaxResends guards
  // that bound.
  void resend(const std::shared_ptr<Job>& job) {
    detach(*job);
    if (job->resends >= kMaxResends) {
      log_warn("proxy: a request sent " + std::to_string(job->resends + 1) +
               " times got no answer; 502");
      return fail(job, 502, "upstream kept closing the connection before answering");
    }
    ++job->resends;
    job->tried.pop_back();
    submit(job, /*first_in_line=*/true);
  }

  // Every job on the connection gets `status`; the connection goes.
  void fail_pipe(Pipe& p, int status, const char* why) {
    std::deque<std::shared_ptr<Job>> jobs = std::move(p.jobs);
    p.jobs.clear();
    for (const std::shared_ptr<Job>& job : jobs) detach(*job);
    close_pipe(p, false);
    for (const std::shared_ptr<Job>& job : jobs) fail(job, status, why);
  }

  // ---- the exchange ----

  void on_exchange(const std::shared_ptr<Job>& job) {
    if (job->done) return;
    if (job->x->cancelled()) return end(job, false);
    pull_body(*job);
    if (job->conn && job->conn->connected) write_out(job);
    if (!job->done && job->started && !job->x->responding()) return end(job, false);
    if (!job->done && job->paused && job->x->writable()) {
      job->paused = false;
      set_deadline(*job, settings_.response_timeout_ms);
      if (job->conn) read_in(job);
      if (job->pipe) pipe_read(*job->pipe);
    }
  }

  void write_out(const std::shared_ptr<Job>& job) {
    while (!job->done && job->conn) {
      while (job->out_at < job->out.size()) {
        const ssize_t n = ::send(job->conn->fd.get(), job->out.data() + job->out_at,
                                 job->out.size() - job->out_at, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) return may_retry(*job) ? retry(job) : upstream_broke(job, "write failed");
        job->out_at += static_cast<size_t>(n);
        // Sending is progress: the response timer runs from the last byte out.
        set_deadline(*job, settings_.response_timeout_ms);
      }
      // Sent: keep it for a resend only while no response has begun and it
      // is small; otherwise let it go.
      if (job->out_at > (1u << 20)) {
        job->out.erase(0, job->out_at);
        job->out_at = 0;
        job->replayable = false;
      }
      const size_t before = job->out.size();
      pull_body(*job);
      if (job->out.size() == before) return;
    }
  }

  void read_in(const std::shared_ptr<Job>& job) {
    char buf[kReadBytes];
    while (!job->done && job->conn && !job->paused) {
      // A head is read no further than its bound: past it with no end, 502.
      size_t want = sizeof buf;
      if (!job->started) {
        if (job->head_bytes >= kMaxResponseHeadBytes) {
          return upstream_broke(job, "response head too large");
        }
        want = std::min<size_t>(want, kMaxResponseHeadBytes - job->head_bytes);
      }
      const ssize_t n = ::recv(job->conn->fd.get(), buf, want, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) return on_eof(job, /*clean=*/n == 0);
      job->got_any = true;
      set_deadline(*job, settings_.response_timeout_ms);
      if (!job->started) job->head_bytes += static_cast<uint64_t>(n);
      const Fed r = feed(*job, std::string_view(buf, static_cast<size_t>(n)));
      if (r.why != nullptr) return upstream_broke(job, r.why);
      // Bytes after the response: not ours; the connection is not reused.
      if (r.done) return complete(job, r.used == static_cast<size_t>(n));
      // The exchange refused the head (a status or headers it cannot
      // carry: it answered the client itself) or gave up: nothing more.
      if (job->started && !job->x->responding()) return end(job, false);
    }
  }

  // `clean`: the upstream closed the connection in order (recv gave 0), not
  // a reset or another read error.
  void on_eof(const std::shared_ptr<Job>& job, bool clean) {
    if (may_retry(*job)) return retry(job);  // closed by the upstream while idle
    // A body that ends with the connection (RFC 9112 6.3, rule 8): the
    // parser completes it now, at an orderly close only; a reset cuts it.
    // Its on_message_complete answers HPE_PAUSED, which llhttp_finish
    // passes on: that is success here, not an error.
    if (clean && job->got_any && !job->complete && !job->chunked_down) {
      const llhttp_errno_t e = llhttp_finish(&job->parser);
      if ((e == HPE_OK || e == HPE_PAUSED) && job->complete) return complete(job, false);
    }
    upstream_broke(job, !job->got_any ? "closed without a response"
                        : clean       ? "truncated response"
                                      : "connection reset during the response");
  }

  void retry_elsewhere(const std::shared_ptr<Job>& job) {
    release_active(*job);
    close_conn(std::move(job->conn));
    start_attempt(job);
  }

  void upstream_broke(const std::shared_ptr<Job>& job, const char* why) {
    const std::string name = job->conn ? job->conn->up->name : "?";
    log_warn("proxy upstream " + name + ": " + why);
    fail(job, 502, why);
  }

  // ---- endings ----

  void complete(const std::shared_ptr<Job>& job, bool clean_end) {
    job->x->finish();
    const bool reusable = clean_end && job->body_all && job->out_at == job->out.size() &&
                          llhttp_should_keep_alive(&job->parser) != 0;
    job->done = true;
    release_active(*job);
    if (reusable && job->conn) {
      keep(std::move(job->conn));
    } else if (job->conn) {
      close_conn(std::move(job->conn));
    }
    retire(job);
  }

  void fail(const std::shared_ptr<Job>& job, int status, const char* why) {
    if (job->done) return;
    if (job->started) {
      job->x->abort();
    } else {
      const std::string body = std::to_string(status) + " " +
                               (status == 504 ? "Gateway Timeout" : "Bad Gateway") + " (" + why +
                               ")\n";
      job->x->start(status, {{"Content-Type", "text/plain"}}, body.size());
      job->x->write(body);
      job->x->finish();
    }
    end(job, false);
  }

  // Ends the job; its connection is closed unless `keep_conn`.
  void end(const std::shared_ptr<Job>& job, bool keep_conn) {
    job->done = true;
    if (job->pipe) leave_pipe(*job);
    release_active(*job);
    if (job->conn) {
      if (keep_conn) {
        keep(std::move(job->conn));
      } else {
        close_conn(std::move(job->conn));
      }
    }
    retire(job);
  }

  void retire(const std::shared_ptr<Job>& job) {
    auto it = jobs_.find(job.get());
    if (it != jobs_.end()) {
      dead_.push_back(std::move(it->second));
      jobs_.erase(it);
    }
  }

  void release_active(Job& job) {
    if (job.conn && job.conn->up->active > 0 && !job.conn->job.expired()) {
      --job.conn->up->active;
      job.conn->job.reset();
    }
  }

  // Back to the pool (still watched, so an upstream that closes it is
  // noticed: on_conn).
  void keep(std::unique_ptr<Conn> c) {
    Upstream& up = *c->up;
    if (idle_conns(up) >= settings_.keepalive) return close_conn(std::move(c));
    c->idle_since = now_;
    c->reused = false;
    c->job.reset();
    up.idle.push_back(std::move(c));
    next_check_ = std::min<int64_t>(next_check_, now_ + settings_.idle_timeout_ms);
  }

  // Idle connections to `up`, pipelined or not: `keepalive` bounds them all.
  static size_t idle_conns(const Upstream& up) {
    return up.idle.size() + static_cast<size_t>(std::count_if(
                                up.pipes.begin(), up.pipes.end(),
                                [](const std::unique_ptr<Pipe>& p) { return p->jobs.empty(); }));
  }

  // An idle connection that became readable: closed or misbehaving.
  void drop_idle(Conn* raw) {
    auto& idle = raw->up->idle;
    auto it = std::find_if(idle.begin(), idle.end(), [raw](auto& c) { return c.get() == raw; });
    if (it == idle.end()) return;
    std::unique_ptr<Conn> c = std::move(*it);
    idle.erase(it);
    close_conn(std::move(c));
  }

  void close_conn(std::unique_ptr<Conn> c) {
    if (!c) return;
    loop_->unwatch(c->fd.get());
    graveyard_.push_back(std::move(c));  // closed at the next poll, off any call chain
  }

  // ---- time ----

  void set_deadline(Job& job, uint32_t ms) {
    now_ = monotonic_ms();  // callbacks run long after the iteration's poll()
    job.deadline = now_ + ms;
    next_check_ = std::min(next_check_, job.deadline);
  }

  // Everything the client sent so far is with the upstream, and more of
  // its body is to come: the wait is the client's (the network process
  // answers a stalled upload 408 at request_timeout_ms), not the
  // upstream's, whose clock starts again with the next byte sent.
  static bool awaits_client(const Job& job) {
    return !job.body_all && job.conn && job.conn->connected && job.out_at == job.out.size();
  }

  void check_deadlines(int64_t now) {
    int64_t next = INT64_MAX;
    std::vector<std::shared_ptr<Job>> late;
    for (auto& [raw, job] : jobs_) {
      if (job->done || job->paused || job->deadline == 0) continue;
      if (awaits_client(*job)) {  // resting: the clock starts afresh when it ends
        job->deadline = now + settings_.response_timeout_ms;
        next = std::min(next, job->deadline);
        continue;
      }
      if (now >= job->deadline) {
        late.push_back(job);
      } else {
        next = std::min(next, job->deadline);
      }
    }
    for (auto& job : late) {
      // Handled already: sent elsewhere by a pipe given up above.
      if (job->done || job->deadline == 0 || now < job->deadline) continue;
      Upstream* up = job->conn ? job->conn->up : job->pipe ? job->pipe->up : nullptr;
      const bool connecting =
          (job->conn && !job->conn->connected) || (job->pipe && !job->pipe->connected);
      if (connecting) mark_down(*up, "connect timed out");
      if (up != nullptr) log_warn("proxy upstream " + up->name + ": timed out");
      // A connect that timed out sent nothing: the request goes to an
      // upstream not yet tried, as after a refused connect (nginx's
      // proxy_next_upstream timeout); with none left, 504.
      if (connecting && may_try_another(*job)) {
        if (job->pipe) {
          close_pipe(*job->pipe, /*failed_connect=*/true);
        } else {
          retry_elsewhere(job);
        }
        continue;
      }
      // Every request waiting on a connect that timed out fails with it, as
      // each would on a connection of its own.
      if (connecting && job->pipe) {
        fail_pipe(*job->pipe, 504, "upstream connect timed out");
        continue;
      }
      // An answer that never came took at least this long.
      if (job->pipe && !job->got_any) job->pipe->up->pace.note(now - job->asked_ms);
      fail(job, 504, connecting ? "upstream connect timed out" : "upstream timed out");
    }
    for (auto& up : upstreams_) {
      auto& idle = up->idle;
      for (size_t i = 0; i < idle.size();) {
        if (now - idle[i]->idle_since >= settings_.idle_timeout_ms) {
          std::unique_ptr<Conn> c = std::move(idle[i]);
          idle.erase(idle.begin() + static_cast<long>(i));
          close_conn(std::move(c));
        } else {
          next = std::min<int64_t>(next, idle[i]->idle_since + settings_.idle_timeout_ms);
          ++i;
        }
      }
      std::vector<Pipe*> stale;
      for (auto& p : up->pipes) {
        if (!p->jobs.empty()) continue;
        if (now - p->idle_since >= settings_.idle_timeout_ms) {
          stale.push_back(p.get());
        } else {
          next = std::min<int64_t>(next, p->idle_since + settings_.idle_timeout_ms);
        }
      }
      for (Pipe* p : stale) close_pipe(*p, false);
    }
    // Timers armed while this ran (a request sent again) stand.
    next_check_ = std::min(next_check_, next);
  }

  // Tunnels past their deadline are checked (each moves its own deadline on
  // with every byte; this only finds the next one to look at).
  void check_tunnels(int64_t now) {
    std::vector<Tunnel*> late;
    int64_t next = INT64_MAX;
    for (auto& [raw, t] : tunnels_) {
      if (now >= t->deadline()) {
        late.push_back(raw);
      } else {
        next = std::min(next, t->deadline());
      }
    }
    tunnel_check_ = next;
    for (Tunnel* t : late) t->check(now);  // may end it, or set a later deadline (wake_at)
  }

  ProxySettings settings_;
  HandlerLoop* loop_ = nullptr;
  std::unordered_map<Tunnel*, std::unique_ptr<Tunnel>> tunnels_;
  std::vector<std::unique_ptr<Tunnel>> ended_tunnels_;  // freed at the next poll
  int64_t tunnel_check_ = INT64_MAX;
  std::vector<std::unique_ptr<Upstream>> upstreams_;
  std::unordered_map<Job*, std::shared_ptr<Job>> jobs_;
  std::vector<std::shared_ptr<Job>> dead_;        // ended: freed at the next poll
  std::vector<std::unique_ptr<Conn>> graveyard_;  // closed: freed at the next poll
  std::vector<std::unique_ptr<Pipe>> pipe_graveyard_;
  std::vector<Pipe*> to_write_;  // pipes with requests to write at the iteration's end
  size_t next_ = 0;
  int64_t now_ = monotonic_ms();
  int64_t next_check_ = INT64_MAX;
};

}  // namespace

std::unique_ptr<Handler> make_proxy_handler(const ServiceSettings& settings,
                                            const ServiceIdentity&) {
  return std::make_unique<ProxyHandler>(settings);
}

}  // namespace ringhttpd::worker
