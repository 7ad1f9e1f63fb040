// One request inside a service process, from its head record to the end of
// its response: the request body as it arrives (bounded by the window the
// network process respects), the response as the handler writes it, and the
// flow control both ways (proto/ring_codec.h: kCredit, kBodyWindow).
//
//   request body:  records -> in_ (at most a window unconsumed) -> handler
//                  consume() -> credit back once kCreditEvery bytes are freed
//   response:      start/write/finish -> out_ (the handler's bytes) ->
//                  pump(): head record, then body records while the window
//                  (kBodyWindow - sent + credited) allows -> end record
//
// What the network process sent is checked here: more body than announced,
// less at the end, or past max_body_bytes refuses the request (500).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "worker/handler.h"

namespace ringhttpd::worker {

class ServiceProcess;

// A stream is in the service process's list of streams to pump (dirty) or
// to notify: so it is listed once however often it is marked.
struct StreamMarks {
  bool dirty = false;
  bool notify = false;
};

class Stream : public Exchange, public std::enable_shared_from_this<Stream> {
 public:
  Stream(ServiceProcess& owner, uint32_t network, uint64_t id, ServiceRequest head,
         uint64_t body_length, bool whole);

  // ---- Exchange ----
  const ServiceRequest& request() const override { return head_; }
  uint64_t body_length() const override { return body_length_; }
  std::string_view body() const override;
  void consume(size_t n) override;
  bool body_complete() const override { return in_done_; }
  void start(int status, std::vector<proto::Header> headers, uint64_t length) override;
  bool head_fits(const std::vector<proto::Header>& headers) const override;
  bool write(std::string_view piece) override;
  bool writable() const override;
  void finish() override;
  void abort() override;
  bool cancelled() const override { return cancelled_; }
  bool responding() const override { return !cancelled_ && out_state_ == Out::started; }
  void set_listener(std::function<void()> listener) override { listener_ = std::move(listener); }

  // ---- the service process's side ----
  uint32_t network() const { return network_; }
  uint64_t id() const { return id_; }
  // Body bytes from a record; false when they break the request's framing
  // (the stream was refused: 500 sent, retired).
  bool take_body(std::string_view bytes, bool end);
  // A credit record from the network process.
  void credit(uint64_t bytes);
  // A window record: the response may use the whole kBodyWindow.
  void open_window();
  // The client left (kCancel: `ack`, an end record goes back), or its
  // network process died (no ack: its rings are being reset): nothing more
  // is sent; the handler's listener learns it.
  void cancel(bool ack);
  // The request of a whole-request stream, body included, moved out for
  // handle() (request() is empty afterwards).
  ServiceRequest take_whole_request();
  // The whole response at once (Responder): no copy of the body; sent now
  // (pump), as far as the window allows.
  void respond(proto::HttpResponse response);
  // Sends what the window allows; called by the loop for dirty streams,
  // and by respond().
  void pump();
  void notify();

  // The service process's bookkeeping (StreamMarks).
  StreamMarks queued;

 private:
  void refuse(const char* why);
  void send_owed_ack();
  void retire(bool answered);
  void fail(const char* why, int status = 500);
  void send_head_record();
  uint64_t window_left() const;
  uint64_t out_left() const { return out_.size() - out_at_; }
  static void compact(std::string& buffer, size_t& at);

  ServiceProcess& owner_;
  const uint32_t network_;
  const uint64_t id_;
  const uint64_t epoch_;
  ServiceRequest head_;
  const uint64_t body_length_;
  const bool whole_;                     // collected for Handler::handle (credited on arrival)
  bool whole_request_was_head_ = false;  // head_ was moved out for handle()
  bool handed_ = false;                  // ... and the handler holds its Responder
  bool ack_owed_ = false;                // cancelled while handed_: the end record waits

  // request body
  std::string in_;
  size_t in_at_ = 0;         // bytes of in_ consumed
  uint64_t received_ = 0;    // body bytes received so far
  uint64_t uncredited_ = 0;  // consumed, not yet credited back
  bool in_done_ = false;

  // response
  enum class Out : uint8_t { none, started, finished, aborted };
  Out out_state_ = Out::none;
  std::string head_record_;  // encoded head, until sent
  bool head_sent_ = false;
  bool end_sent_ = false;
  uint64_t out_length_ = 0;   // announced, or kUnknownBodyLength
  uint64_t out_given_ = 0;    // body bytes the handler gave
  uint64_t out_sent_ = 0;     // body bytes put into the ring
  uint64_t out_credit_ = 0;   // body bytes the network process credited back
  std::string out_;           // given, not yet sent
  size_t out_at_ = 0;         // bytes of out_ sent
  bool blocked_ = false;      // write() said false; tell the listener when writable
  bool window_open_ = false;  // kBodyWindow (after kWindow), else kFirstWindow
  bool cancelled_ = false;
  bool retired_ = false;
  std::function<void()> listener_;
};

}  // namespace ringhttpd::worker
