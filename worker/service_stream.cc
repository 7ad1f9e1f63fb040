// A request and its response inside a service process (see
// service_stream.h).
#include "worker/service_stream.h"

#include <algorithm>

#include "proto/http_response.h"
#include "proto/ring_codec.h"
#include "worker/log.h"
#include "worker/service_process.h"

namespace ringhttpd::worker {

using proto::kUnknownBodyLength;

Stream::Stream(ServiceProcess& owner, uint32_t network, uint64_t id, ServiceRequest head,
               uint64_t body_length, bool whole)
    : owner_(owner),
      network_(network),
      id_(id),
      epoch_(owner.epoch(network)),
      head_(std::move(head)),
      body_length_(body_length),
      whole_(whole) {
  // Reserved only up to max_body_bytes, whatever length the peer claims.
  if (whole_ && body_length_ != kUnknownBodyLength) {
    in_.reserve(std::min<uint64_t>(body_length_, owner_.max_body_bytes()));
  }
}

// ---- the request body ----

std::string_view Stream::body() const { return std::string_view(in_).substr(in_at_); }

void Stream::consume(size_t n) {
  n = std::min(n, in_.size() - in_at_);
  in_at_ += n;
  uncredited_ += n;
  compact(in_, in_at_);
  if (!in_done_ && uncredited_ >= proto::kCreditEvery) owner_.mark_dirty(*this);
}

// Drops the first `at` bytes of `buffer` once they are all of it, or at
// least 64 KiB and half of it: few moves, and a bounded dead prefix.
void Stream::compact(std::string& buffer, size_t& at) {
  if (at == buffer.size()) {
    buffer.clear();
    at = 0;
  } else if (at >= 65536 && at * 2 >= buffer.size()) {
    buffer.erase(0, at);
    at = 0;
  }
}

bool Stream::take_body(std::string_view bytes, bool end) {
  if (retired_) return true;
  received_ += bytes.size();
  const bool known = body_length_ != kUnknownBodyLength;
  if (known && received_ > body_length_) return refuse("more body than its length"), false;
  if (received_ > owner_.max_body_bytes()) return refuse("body past max_body_bytes"), false;
  if (end && known && received_ != body_length_) {
    return refuse("less body than its length"), false;
  }
  // The network process sends at most a window beyond what was consumed.
  if (!whole_ && in_.size() - in_at_ + bytes.size() > 2 * proto::kBodyWindow) {
    return refuse("body past the flow-control window"), false;
  }
  in_.append(bytes);
  in_done_ = end;
  if (whole_) {  // collected here: credited as it arrives
    uncredited_ += bytes.size();
    if (!end && uncredited_ >= proto::kCreditEvery) owner_.mark_dirty(*this);
  } else {
    owner_.mark_notify(*this);
  }
  return true;
}

ServiceRequest Stream::take_whole_request() {
  handed_ = true;
  whole_request_was_head_ = head_.http.method == "HEAD";
  ServiceRequest request = std::move(head_);
  request.http.body = std::move(in_);
  in_.clear();
  in_at_ = 0;
  return request;
}

// What the network process sent cannot be a request: 500 now (or, once the
// response has begun, an aborted response), and the stream ends.
void Stream::refuse(const char* why) {
  if (!head_sent_) {
    owner_.refuse_request(network_, id_, why);
  } else {
    log_error(std::string("bad request record from a network process (") + why +
              "); the response is cut off");
    owner_.channel(network_).send_body(proto::kResponseBody,
                                       proto::kRecordEnd | proto::kRecordAbort, id_, {});
  }
  end_sent_ = true;
  cancelled_ = true;  // the handler's later writes go nowhere
  if (!whole_) owner_.mark_notify(*this);
  retire(true);
}

// ---- the response ----

void Stream::start(int status, std::vector<proto::Header> headers, uint64_t length) {
  if (cancelled_ || out_state_ != Out::none) return;
  if (status < 200 || status > 599) {
    return fail(("handler answered with status " + std::to_string(status) + ", not a final status")
                    .c_str());
  }
  head_record_.clear();
  if (!head_fits(headers) || !proto::encode_response_head(status, headers, length, head_record_)) {
    return fail("response headers larger than the ring can carry");
  }
  out_state_ = Out::started;
  out_length_ = length;
  owner_.mark_dirty(*this);
}

bool Stream::head_fits(const std::vector<proto::Header>& headers) const {
  return proto::response_head_bytes(headers) < owner_.channel(network_).max_head();
}

bool Stream::write(std::string_view piece) {
  if (cancelled_ || out_state_ != Out::started) return false;
  if (out_length_ != kUnknownBodyLength && piece.size() > out_length_ - out_given_) {
    fail("handler wrote more body than the length it announced");
    return false;
  }
  out_.append(piece);
  out_given_ += piece.size();
  owner_.mark_dirty(*this);
  if (writable()) return true;
  blocked_ = true;
  return false;
}

bool Stream::writable() const {
  return !cancelled_ && out_state_ == Out::started && out_left() < window_left();
}

void Stream::finish() {
  if (cancelled_ || out_state_ != Out::started) return;
  // A response to HEAD announces the length of the body it does not carry.
  const bool head = head_.http.method == "HEAD" || whole_request_was_head_;
  if (out_length_ != kUnknownBodyLength && out_given_ != out_length_ && !head) {
    return fail("handler finished short of the length it announced");
  }
  out_state_ = Out::finished;
  owner_.mark_dirty(*this);
}

void Stream::abort() {
  if (cancelled_ || out_state_ == Out::finished || out_state_ == Out::aborted) return;
  // Nothing left this process yet: an error can still stand in for it.
  if (!head_sent_) return fail("handler gave up on its response", 502);
  out_state_ = Out::aborted;
  owner_.mark_dirty(*this);
}

void Stream::respond(proto::HttpResponse response) {
  if (cancelled_) return send_owed_ack();
  if (out_state_ != Out::none) return;
  const uint64_t size = response.body.size();
  start(response.status, std::move(response.headers), size);
  if (out_state_ != Out::started) return;
  out_ = std::move(response.body);  // nothing was written yet: no copy
  out_at_ = 0;
  out_given_ = size;
  finish();
  // Into the ring now (published as it is pushed; the peer is woken at the
  // end of the iteration), not in the end-of-iteration pump: the network
  // process, when awake, writes it meanwhile, and the head's buffer is
  // freed at once.
  pump();
}

// The handler broke its response. Before the head left: 500 in its place.
// After: the response is aborted (the client's connection is closed).
void Stream::fail(const char* why, int status) {
  if (head_sent_) {
    log_error(std::string(why) + "; the response is cut off");
    out_state_ = Out::aborted;
  } else {
    log_error(std::string(why) + "; answering " + std::to_string(status));
    // As the network process's own error answers: "<status> <reason>\n" in
    // text/plain (what went wrong is the log's, not the client's).
    const std::string body =
        std::to_string(status) + " " + std::string(proto::reason_phrase(status)) + "\n";
    head_record_.clear();
    proto::encode_response_head(status, {{"Content-Type", "text/plain"}}, body.size(),
                                head_record_);
    out_.assign(body);
    out_at_ = 0;
    out_given_ = out_length_ = body.size();
    out_state_ = Out::finished;
  }
  owner_.mark_dirty(*this);
}

uint64_t Stream::window_left() const {
  const uint64_t window = window_open_ ? proto::kBodyWindow : proto::kFirstWindow;
  const uint64_t in_flight = out_sent_ - out_credit_;
  return in_flight >= window ? 0 : window - in_flight;
}

void Stream::credit(uint64_t bytes) {
  // Never more than was sent: a peer's word beyond that is ignored.
  out_credit_ += std::min(bytes, out_sent_ - out_credit_);
  owner_.mark_dirty(*this);
}

void Stream::open_window() {
  if (window_open_) return;
  window_open_ = true;
  owner_.mark_dirty(*this);
}

void Stream::cancel(bool ack) {
  if (cancelled_ || retired_) return;
  cancelled_ = true;
  out_.clear();
  out_at_ = 0;
  // The network process keeps the request until an end record for it
  // arrives (else its watchdog would take this process for stuck). A
  // whole-request handler cannot hear of the cancel: the end record waits
  // for its answer (or its Responder's end), so one that never answers is
  // still caught by kill_after_ms. A streaming handler hears it (listener)
  // and is trusted to let go: answered at once.
  if (ack && !end_sent_) {
    if (whole_ && handed_) {
      ack_owed_ = true;
    } else {
      owner_.channel(network_).send_body(proto::kResponseBody,
                                         proto::kRecordEnd | proto::kRecordAbort, id_, {});
    }
    end_sent_ = true;
  }
  if (!whole_) owner_.mark_notify(*this);
  retire(false);
}

// The end record a cancel is owed, once the whole-request handler answered.
void Stream::send_owed_ack() {
  if (!ack_owed_) return;
  ack_owed_ = false;
  if (owner_.epoch(network_) != epoch_) return;  // its network process is gone
  owner_.channel(network_).send_body(proto::kResponseBody, proto::kRecordEnd | proto::kRecordAbort,
                                     id_, {});
}

void Stream::send_head_record() {
  RingChannel& ch = owner_.channel(network_);
  const uint64_t first = std::min(
      {uint64_t{out_left()}, window_left(), ch.max_piece(), ch.max_head() - head_record_.size()});
  const bool end = out_state_ == Out::finished && first == out_left();
  const std::string_view piece[] = {std::string_view(out_).substr(out_at_, first)};
  // Straight into the ring (head and body in one record, no copy here);
  // when the ring is full, joined and queued.
  ch.send_message(proto::kResponseHead, proto::kResponseBody, id_, head_record_, piece, end);
  std::string().swap(head_record_);  // not needed again
  head_sent_ = true;
  end_sent_ = end;
  out_at_ += first;
  out_sent_ += first;
}

// Sends the credit owed and as much of the response as the window allows;
// the stream retires once its end is sent.
void Stream::pump() {
  if (retired_ || cancelled_ || owner_.epoch(network_) != epoch_) return;
  RingChannel& ch = owner_.channel(network_);
  if (!in_done_ && uncredited_ >= proto::kCreditEvery) {
    ch.send_control(proto::kCredit, id_, proto::encode_credit(uncredited_));
    uncredited_ = 0;
  }
  if (out_state_ == Out::none) return;
  if (out_state_ == Out::aborted) {
    out_.clear();
    out_at_ = 0;
    if (!head_sent_) return;  // cannot happen: fail() answers 500 then
    ch.send_body(proto::kResponseBody, proto::kRecordEnd | proto::kRecordAbort, id_, {});
    end_sent_ = true;
  }
  if (!head_sent_) send_head_record();
  while (!end_sent_ && out_left() > 0 && window_left() > 0) {
    const uint64_t piece = std::min({uint64_t{out_left()}, window_left(), ch.max_piece()});
    const bool end = out_state_ == Out::finished && piece == out_left();
    ch.send_body(proto::kResponseBody, end ? proto::kRecordEnd : 0, id_,
                 std::string_view(out_).substr(out_at_, piece));
    end_sent_ = end;
    out_at_ += piece;
    out_sent_ += piece;
  }
  compact(out_, out_at_);
  if (!end_sent_ && out_state_ == Out::finished && out_left() == 0) {
    ch.send_body(proto::kResponseBody, proto::kRecordEnd, id_, {});
    end_sent_ = true;
  }
  if (end_sent_) {
    retire(true);
    return;
  }
  if (blocked_ && writable()) {
    blocked_ = false;
    owner_.mark_notify(*this);
  }
}

// The stream is done: the service process drops it at the end of the
// iteration. Its buffers go now, while the allocator still has their size
// at hand for the next request (under pipelining, a loop iteration ends
// hundreds of streams).
void Stream::retire(bool answered) {
  retired_ = true;
  std::string().swap(in_);
  std::string().swap(out_);
  std::string().swap(head_record_);
  in_at_ = out_at_ = 0;
  owner_.retire(*this, answered);
}

void Stream::notify() {
  if (listener_) listener_();
}

}  // namespace ringhttpd::worker
