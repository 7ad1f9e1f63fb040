// A connection taken over by the proxy (see tunnel.h): the upgrade request
// upstream, the upstream's head, then bytes both ways under flow control.
#include "worker/handlers/tunnel.h"

#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "proto/http_response.h"
#include "worker/event_loop.h"
#include "worker/handlers/proxy_headers.h"
#include "worker/log.h"

namespace ringhttpd::worker {
namespace {

// The upstream's head may be this long at most (then 502).
constexpr size_t kMaxHeadBytes = 64 * 1024;

void add_line(std::string& o, std::string_view name, std::string_view value) {
  o += name;
  o += ": ";
  o += value;
  o += "\r\n";
}

}  // namespace

// ---- the bytes ----

std::string upgrade_request_head(const ServiceRequest& r, std::string_view upstream_host,
                                 const HostHeader& host) {
  const proto::HttpRequest& req = r.http;
  std::string o;
  o.reserve(512);
  o += req.method;
  o += ' ';
  const std::string_view target = proto::origin_form(req.target);
  if (target.empty() || target.front() == '?') o += '/';
  o += target;
  o += " HTTP/1.1\r\n";
  const bool keep_host = host.keep() && !req.header("Host").empty();
  if (host.literal()) {
    add_line(o, "Host", host.value);
  } else if (!keep_host) {
    add_line(o, "Host", upstream_host);
  }
  for (const proto::Header& h : req.headers) {
    if (underscore_name(h.name) || hop_by_hop(h.name) ||
        listed_in_connection(req.headers, h.name) || forwarding_field(h.name) ||
        (!keep_host && proto::iequals(h.name, "Host"))) {
      continue;
    }
    add_line(o, h.name, h.value);
  }
  // The protocol switch is asked of the upstream, hop by hop (RFC 9110 7.8).
  add_line(o, "Connection", "upgrade");
  add_line(o, "Upgrade", req.header("Upgrade"));
  append_forwarding(o, req, r.origin.client);
  o += "\r\n";
  return o;
}

namespace {

// The status line, then Server and Date as on every answer of ours (the
// upstream's own are dropped, as on the proxy's other path).
std::string status_and_ours(int status) {
  std::string o = "HTTP/1.1 " + std::to_string(status) + " ";
  o += proto::reason_phrase(status);
  o += "\r\nServer: ringhttpd\r\nDate: ";
  o += proto::http_date(::time(nullptr));
  o += "\r\n";
  return o;
}

}  // namespace

std::string closing_response_head(int status, const std::vector<proto::Header>& headers) {
  std::string o = status_and_ours(status);
  for (const proto::Header& h : headers) {
    if (proto::iequals(h.name, "Date") || proto::iequals(h.name, "Server")) continue;
    const bool framing =
        proto::iequals(h.name, "Content-Length") || proto::iequals(h.name, "Transfer-Encoding");
    if (!framing && (hop_by_hop(h.name) || listed_in_connection(headers, h.name))) continue;
    add_line(o, h.name, h.value);
  }
  o += "Connection: close\r\n\r\n";
  return o;
}

std::string tunnel_error_response(int status, std::string_view why) {
  const std::string body = std::to_string(status) + " " +
                           std::string(proto::reason_phrase(status)) + " (" + std::string(why) +
                           ")\n";
  std::string o = status_and_ours(status);
  o += "Content-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
       "\r\nConnection: close\r\n\r\n";
  return o + body;
}

namespace {

// A CR not followed by LF, or an LF not after a CR, in the head read so
// far (a CR at its very end may yet get its LF). Either is invalid (RFC
// 9112 2.2) and a head ended by bare LFs would never be found complete:
// 502 at once, not 504 at the timeout.
bool bare_line_end(std::string_view head) {
  for (size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '\r' && i + 1 < head.size() && head[i + 1] != '\n') return true;
    if (head[i] == '\n' && (i == 0 || head[i - 1] != '\r')) return true;
  }
  return false;
}

}  // namespace

// ---- the upstream's answer, parsed ----

struct Tunnel::Answer {
  llhttp_t parser{};
  std::vector<proto::Header> headers;
  bool in_value = false;
  bool head_done = false;
  bool complete = false;
};

// llhttp's callbacks reach the Answer through `data`.
struct AnswerCallbacks {
  static int on_field(llhttp_t* p, const char* at, size_t n) {
    auto* a = static_cast<Tunnel::Answer*>(p->data);
    if (!a->head_done) gather_name(a->headers, a->in_value, {at, n});
    return 0;
  }
  static int on_value(llhttp_t* p, const char* at, size_t n) {
    auto* a = static_cast<Tunnel::Answer*>(p->data);
    if (!a->head_done) gather_value(a->headers, a->in_value, {at, n});
    return 0;
  }
  static int on_headers_complete(llhttp_t* p) {
    auto* a = static_cast<Tunnel::Answer*>(p->data);
    if (p->status_code < 100 || p->status_code > 599) return -1;
    if (p->status_code == 101) {
      a->head_done = true;
      return 0;
    }
    if (p->status_code < 200) {  // another interim answer: the final one follows
      a->headers.clear();
      a->in_value = false;
      return 0;
    }
    a->head_done = true;
    return 0;
  }
  static int on_message_complete(llhttp_t* p) {
    auto* a = static_cast<Tunnel::Answer*>(p->data);
    if (!a->head_done) return 0;  // an interim answer ended
    a->complete = true;
    return HPE_PAUSED;  // what follows is not this answer's
  }
  static const llhttp_settings_t& settings() {
    static const llhttp_settings_t s = [] {
      llhttp_settings_t t;
      llhttp_settings_init(&t);
      t.on_header_field = on_field;
      t.on_header_value = on_value;
      t.on_headers_complete = on_headers_complete;
      t.on_message_complete = on_message_complete;
      return t;
    }();
    return s;
  }
};

// ---- the tunnel ----

Tunnel::Tunnel(TunnelHost& host, proto::UniqueFd client, ServiceRequest request, std::string early)
    : host_(host),
      client_(std::move(client)),
      request_(std::move(request)),
      early_(std::move(early)),
      began_us_(monotonic_us()) {}

// A tunnel still open when its process ends (the stop's deadline) is
// cut by the server: 444 if no byte of an answer went out yet, as in the
// network processes' log.
Tunnel::~Tunnel() {
  account(kServerClosed);
  close_upstream();
  if (client_watched_) host_.loop().unwatch(client_.get());
}

void Tunnel::start() {
  // Watched from the start for its end only: reading the client waits for
  // the upstream's 101 (update_interest).
  client_watched_ =
      host_.loop().watch(client_.get(), EPOLLRDHUP, [this](uint32_t ev) { on_client(ev); });
  client_events_ = EPOLLRDHUP;
  if (!client_watched_) {
    log_error(errno_message("tunnel: epoll_ctl (client)"));
    return end();
  }
  attempt();
}

// Connects to the next upstream; one that refuses at once rests and the
// next is tried. None left: 502.
void Tunnel::attempt() {
  for (;;) {
    TunnelUpstream up;
    if (!host_.pick_upstream(tried_, up)) return fail(502, "no upstream could be reached");
    have_upstream_ = true;
    upstream_index_ = up.index;
    upstream_name_ = up.name;
    upstream_.reset(::socket(up.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!upstream_) return fail(502, errno_message("socket"));
    if (up.addr.ss_family != AF_UNIX) {
      const int one = 1;
      ::setsockopt(upstream_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    const int r = ::connect(upstream_.get(), reinterpret_cast<const sockaddr*>(&up.addr), up.len);
    if (r != 0 && errno != EINPROGRESS && errno != EAGAIN) {
      host_.upstream_failed(up.index, "connect failed: " + std::string(std::strerror(errno)));
      close_upstream();
      continue;
    }
    upstream_watched_ =
        host_.loop().watch(upstream_.get(), EPOLLOUT, [this](uint32_t ev) { on_upstream(ev); });
    if (!upstream_watched_) return fail(502, errno_message("epoll_ctl (upstream)"));
    upstream_events_ = EPOLLOUT;
    to_upstream_ = Flow{};
    // Only the head: the bytes the client sent after it go up once the
    // upstream said 101 (take_head). Before that they could be read as
    // a next request on this connection, one the network process never
    // saw (smuggled past its routes and checks).
    to_upstream_.buf = upgrade_request_head(request_, up.host, host_.settings().host_header);
    phase_ = Phase::connecting;
    set_deadline(host_.settings().connect_timeout_ms);
    return;
  }
}

void Tunnel::on_upstream(uint32_t ev) {
  if (phase_ == Phase::ended) return;
  if (phase_ == Phase::connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(upstream_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (ev & (EPOLLERR | EPOLLHUP))) {
      host_.upstream_failed(
          upstream_index_,
          "connect failed: " + std::string(std::strerror(err ? err : ECONNREFUSED)));
      close_upstream();
      return attempt();
    }
    if (!(ev & EPOLLOUT)) return;
    on_connected();
  }
  if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) read_upstream();
  if (phase_ == Phase::ended) return;
  if (ev & EPOLLERR) return phase_ == Phase::awaiting_head ? fail(502, "upstream reset") : end();
  // Closed both ways (level-triggered, it would be reported again and
  // again): its EOF was read above; a write to it now fails and ends the
  // tunnel.
  if ((ev & EPOLLHUP) && upstream_watched_) {
    host_.loop().unwatch(upstream_.get());
    upstream_watched_ = false;
  }
  pump();
}

void Tunnel::on_connected() {
  phase_ = Phase::awaiting_head;
  set_deadline(host_.settings().response_timeout_ms);
}

void Tunnel::on_client(uint32_t ev) {
  if (phase_ == Phase::ended) return;
  if (ev & EPOLLERR) return end(kClientLeft);
  // Gone (or half-closed, which an upgrade has no use for) before any
  // answer: the attempt ends here, 499, as nginx does with
  // proxy_ignore_client_abort off, instead of running to the upstream's
  // answer or timeout for nobody.
  if ((ev & (EPOLLRDHUP | EPOLLHUP)) && awaiting_answer()) return end(kClientLeft);
  if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) read_client();
  if (phase_ == Phase::ended) return;
  if (ev & EPOLLHUP) {
    // Gone both ways before the tunnel began: nobody to answer.
    if (phase_ != Phase::relaying) return end(kClientLeft);
    host_.loop().unwatch(client_.get());  // as for the upstream above
    client_watched_ = false;
  }
  pump();
}

// Reads the upstream as far as the phase and the buffer toward the client
// allow.
void Tunnel::read_upstream() {
  char buf[kFlowBytes];
  const auto wanted = [this] {
    if (!upstream_) return false;
    if (phase_ == Phase::awaiting_head) return true;
    return (phase_ == Phase::relaying || phase_ == Phase::answering) && flow_wants_read(to_client_);
  };
  while (wanted()) {
    const size_t room =
        phase_ == Phase::awaiting_head ? sizeof buf : kFlowBytes - to_client_.pending();
    const ssize_t n = ::recv(upstream_.get(), buf, room, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && phase_ == Phase::awaiting_head) return fail(502, "upstream reset");
    if (n < 0) return end();
    if (n == 0) {
      if (phase_ == Phase::awaiting_head) return fail(502, "closed without a response");
      if (phase_ == Phase::answering && !answer_->complete) llhttp_finish(&answer_->parser);
      to_client_.src_eof = true;
      return;
    }
    const std::string_view bytes(buf, static_cast<size_t>(n));
    if (phase_ == Phase::awaiting_head) {
      head_in_.append(bytes);
      take_head();
      continue;
    }
    touch();
    if (phase_ == Phase::answering) {
      feed_answer(bytes);
    } else {
      to_client_.buf.append(bytes);
    }
  }
}

// The upstream's head, once all of it is in head_in_: a 101 goes to the
// client as it came and the tunnel relays; any other answer goes with
// "Connection: close" and its body follows as it comes.
void Tunnel::take_head() {
  const size_t end_at = head_in_.find("\r\n\r\n");
  const std::string_view head = std::string_view(head_in_).substr(
      0, end_at == std::string::npos ? head_in_.size() : end_at + 4);
  if (bare_line_end(head)) return fail(502, "malformed response");
  if (end_at == std::string::npos) {
    if (head_in_.size() > kMaxHeadBytes) fail(502, "response head too large");
    return;
  }
  // Bounded however the reads fell: a head found whole in a read that
  // took it past the bound is too large all the same.
  if (end_at + 4 > kMaxHeadBytes) return fail(502, "response head too large");
  const size_t head_len = end_at + 4;
  answer_ = std::make_unique<Answer>();
  llhttp_init(&answer_->parser, HTTP_RESPONSE, &AnswerCallbacks::settings());
  answer_->parser.data = answer_.get();
  // Interim answers other than 101 (a stray 100) are skipped by the parser;
  // their bytes are not passed on.
  const llhttp_errno_t e = llhttp_execute(&answer_->parser, head_in_.data(), head_len);
  if ((e != HPE_OK && e != HPE_PAUSED && e != HPE_PAUSED_UPGRADE) || !answer_->head_done) {
    if (e == HPE_OK && !answer_->head_done) {  // an interim answer only: wait for the next
      head_in_.erase(0, head_len);
      answer_.reset();
      return take_head();
    }
    return fail(502, "malformed response");
  }
  const int status = answer_->parser.status_code;
  const std::string rest = head_in_.substr(head_len);
  set_deadline(host_.settings().tunnel_idle_timeout_ms);
  if (status == 101) {
    to_client_.buf = std::move(head_in_);  // the head as it came, then what followed
    head_bytes_ = head_len;
    status_ = 101;
    head_in_.clear();
    answer_.reset();
    to_upstream_.buf += early_;  // now in the new protocol
    early_.clear();
    phase_ = Phase::relaying;
    return;
  }
  to_client_.buf = closing_response_head(status, answer_->headers);
  answer_with(status);
  head_in_.clear();
  phase_ = Phase::answering;
  // Nothing more goes up: the client is not read again, and the bytes it
  // sent after its head are dropped (they were never sent).
  early_.clear();
  to_upstream_.buf.clear();
  to_upstream_.at = 0;
  if (answer_->complete) {
    to_client_.src_eof = true;  // no body
    return;
  }
  llhttp_resume(&answer_->parser);
  feed_answer(rest);
}

// Body bytes of an answer other than 101, passed on as they came; the
// parser says where it ends.
void Tunnel::feed_answer(std::string_view bytes) {
  if (answer_->complete || bytes.empty()) return;
  const llhttp_errno_t e = llhttp_execute(&answer_->parser, bytes.data(), bytes.size());
  size_t used = bytes.size();
  if (e == HPE_PAUSED)
    used = static_cast<size_t>(llhttp_get_error_pos(&answer_->parser) - bytes.data());
  to_client_.buf.append(bytes.substr(0, used));
  if (answer_->complete || (e != HPE_OK && e != HPE_PAUSED)) to_client_.src_eof = true;
}

void Tunnel::read_client() {
  if (phase_ != Phase::relaying) return;  // the client is read only once the upstream said 101
  char buf[kFlowBytes];
  while (flow_wants_read(to_upstream_)) {
    const ssize_t n = ::recv(client_.get(), buf, kFlowBytes - to_upstream_.pending(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) return end(kClientLeft);
    if (n == 0) {
      to_upstream_.src_eof = true;
      return;
    }
    touch();
    to_upstream_.buf.append(buf, static_cast<size_t>(n));
  }
}

// Writes what `f` holds to `fd`; false when the destination failed.
bool Tunnel::write_flow(Flow& f, int fd) {
  while (f.pending() > 0) {
    const ssize_t n = ::send(fd, f.buf.data() + f.at, f.pending(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) return false;
    f.at += static_cast<size_t>(n);
    if (&f == &to_client_) client_bytes_ += static_cast<uint64_t>(n);
    touch();
  }
  if (f.at == f.buf.size()) {
    f.buf.clear();
    f.at = 0;
  } else if (f.at >= kFlowBytes / 2) {
    f.buf.erase(0, f.at);
    f.at = 0;
  }
  return true;
}

// Writes both ways, passes EOFs on, ends when both ways are done (or, for
// an answer other than 101, when it is written), and asks epoll for what
// the flows want next.
void Tunnel::pump() {
  if (phase_ == Phase::ended) return;
  if (phase_ != Phase::connecting && !write_flow(to_upstream_, upstream_.get())) {
    return phase_ == Phase::awaiting_head ? fail(502, "write failed") : end();
  }
  if (!write_flow(to_client_, client_.get())) return end(kClientLeft);
  if (phase_ == Phase::answering || (phase_ == Phase::awaiting_head && !upstream_)) {
    if (to_client_.src_eof && to_client_.pending() == 0) return end();
  }
  if (phase_ == Phase::relaying) {
    if (flow_should_shut(to_upstream_)) {
      ::shutdown(upstream_.get(), SHUT_WR);
      to_upstream_.dst_shut = true;
    }
    if (flow_should_shut(to_client_)) {
      ::shutdown(client_.get(), SHUT_WR);
      to_client_.dst_shut = true;
    }
    if (flow_done(to_upstream_) && flow_done(to_client_)) return end();
  }
  update_interest();
}

void Tunnel::update_interest() {
  uint32_t client = flow_wants_write(to_client_) ? uint32_t{EPOLLOUT} : 0u;
  if (phase_ == Phase::relaying && flow_wants_read(to_upstream_)) {
    client |= uint32_t{EPOLLIN} | uint32_t{EPOLLRDHUP};
  }
  if (awaiting_answer()) client |= uint32_t{EPOLLRDHUP};
  if (client != client_events_ && client_watched_) {
    host_.loop().modify(client_.get(), client);
    client_events_ = client;
  }
  if (!upstream_watched_) return;
  uint32_t up = 0;
  if (phase_ == Phase::connecting) {
    up = EPOLLOUT;
  } else {
    if (phase_ == Phase::awaiting_head || flow_wants_read(to_client_)) {
      up |= uint32_t{EPOLLIN} | uint32_t{EPOLLRDHUP};
    }
    if (flow_wants_write(to_upstream_)) up |= uint32_t{EPOLLOUT};
  }
  if (up != upstream_events_) {
    host_.loop().modify(upstream_.get(), up);
    upstream_events_ = up;
  }
}

// Before the upstream's head, the client gets `status` (nothing else was
// written to it yet) and the connection closes once it is written; after,
// both sides close.
void Tunnel::fail(int status, const std::string& why) {
  if (phase_ == Phase::ended) return;
  if (phase_ == Phase::relaying || phase_ == Phase::answering) return end();
  if (have_upstream_) log_warn("proxy upstream " + upstream_name_ + ": " + why + " (upgrade)");
  close_upstream();
  to_upstream_ = Flow{};
  to_client_ = Flow{};
  to_client_.buf = tunnel_error_response(status, why);
  answer_with(status);
  to_client_.src_eof = true;
  phase_ = Phase::awaiting_head;  // with no upstream: ends once written (pump)
  set_deadline(host_.settings().tunnel_idle_timeout_ms);
  pump();
}

void Tunnel::check(int64_t now) {
  if (phase_ == Phase::ended || now < deadline_) return;
  if (phase_ == Phase::connecting) {
    host_.upstream_failed(upstream_index_, "connect timed out");
    // Nothing was sent: the next upstream, as after a refused connect.
    if (!host_.may_try_another(tried_)) return fail(504, "upstream connect timed out");
    close_upstream();
    return attempt();
  }
  if (phase_ == Phase::awaiting_head && upstream_) return fail(504, "upstream timed out");
  end();  // idle (or an error answer the client never took)
}

void Tunnel::end(int no_answer_status) {
  if (phase_ == Phase::ended) return;
  phase_ = Phase::ended;
  account(no_answer_status);
  close_upstream();
  if (client_watched_) host_.loop().unwatch(client_.get());
  client_watched_ = false;
  client_.reset();
  host_.tunnel_ended(*this);
}

void Tunnel::close_upstream() {
  if (upstream_watched_) host_.loop().unwatch(upstream_.get());
  upstream_watched_ = false;
  upstream_events_ = 0;
  upstream_.reset();
  if (have_upstream_) host_.upstream_released(upstream_index_);
  have_upstream_ = false;
}

// Bytes moved: the timer that runs now starts again (the response timer
// while the upstream's head is awaited, as for requests: sending is
// progress; the idle timer after).
void Tunnel::touch() {
  if (phase_ == Phase::connecting || phase_ == Phase::ended) return;
  if (phase_ == Phase::awaiting_head) {
    if (upstream_) set_deadline(host_.settings().response_timeout_ms);
    return;
  }
  set_deadline(host_.settings().tunnel_idle_timeout_ms);
}

void Tunnel::set_deadline(uint32_t ms) {
  deadline_ = monotonic_ms() + ms;
  host_.wake_at(deadline_);
}

// An answer other than 101, whole in to_client_ from its first byte: its
// head ends at the first blank line.
void Tunnel::answer_with(int status) {
  status_ = status;
  const size_t blank = to_client_.buf.find("\r\n\r\n");
  head_bytes_ = blank == std::string::npos ? to_client_.buf.size() : blank + 4;
}

// Its one access-log line, when it ends: the request that asked for the
// upgrade, the status the client got (`no_answer_status` if no byte of an
// answer went out: 499 when the client left, 444 when we ended it), the
// bytes written to the client past that head (everything relayed, after a
// 101) and the time from the takeover to the end.
void Tunnel::account(int no_answer_status) {
  if (accounted_) return;
  accounted_ = true;
  const proto::HttpRequest& r = request_.http;
  AccessEntry e;
  e.remote = request_.origin.client;
  e.method = r.method;
  e.target = r.target;
  e.version_major = r.version_major;
  e.version_minor = r.version_minor;
  // An answer of which nothing went out was never given: as for requests
  // (worker/response_outcome.h), the line says who ended it.
  e.status = status_ != 0 && client_bytes_ > 0 ? status_ : no_answer_status;
  e.body_bytes = client_bytes_ > head_bytes_ ? client_bytes_ - head_bytes_ : 0;
  e.referer = r.header("Referer");
  e.user_agent = r.header("User-Agent");
  e.duration_ms = static_cast<double>(monotonic_us() - began_us_) / 1e3;
  host_.loop().account_response(e);
}

}  // namespace ringhttpd::worker
