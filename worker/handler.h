// The interface between a service process and application logic. The
// service process owns the rings; handlers never see them, so new handler
// types (static files, proxy, user modules) need no change in the network
// process or the ring protocol. Two ways to serve:
//
//   whole    handle(request, responder): the body arrives complete (bounded
//            by max_body_bytes); the answer is one HttpResponse, now or later.
//   streamed handle_stream(exchange): the head arrives first; the body is
//            read in pieces as the client sends it (body()/consume()), and
//            the response is written in pieces (start/write/finish). Flow
//            control is the service process's: body() never holds more than
//            proto::kBodyWindow bytes, and write() says when the client's
//            side has a window's worth unread (wait for the listener then).
//
// A handler with its own timers returns its next deadline from poll().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <memory_resource>
#include <span>
#include <string>
#include <string_view>

#include "proto/http_request.h"
#include "proto/http_response.h"
#include "proto/ring_codec.h"
#include "proto/unique_fd.h"
#include "worker/access_log.h"
#include "worker/settings.h"

namespace ringhttpd::worker {

// Who is serving: the service process's identity, for handlers that report it.
struct ServiceIdentity {
  std::string service;  // service name
  uint32_t pid = 0;
  uint32_t generation = 0;
  uint32_t index = 0;  // within the pool
};

struct ServiceRequest {
  proto::HttpRequest http;
  proto::RequestOrigin origin;  // the network process that received it
};

// Completes one request. respond() may be called once; a Responder destroyed
// without responding answers 500, so a request is never left hanging.
class Responder {
 public:
  virtual ~Responder() = default;
  virtual void respond(proto::HttpResponse response) = 0;
};

// One request and its response, streamed. Owned by the service process; a
// handler keeps the shared_ptr while it works on it.
class Exchange {
 public:
  virtual ~Exchange() = default;

  // ---- the request ----
  // The head (request().http.body stays empty) and where it came from.
  virtual const ServiceRequest& request() const = 0;
  // The body's announced length, or proto::kUnknownBodyLength (chunked).
  virtual uint64_t body_length() const = 0;
  // Body bytes received and not yet consumed (at most kBodyWindow). Once
  // the exchange has ended (its response sent whole, or cancelled), what
  // was left unconsumed is dropped: body() is empty.
  virtual std::string_view body() const = 0;
  // Frees the first `n` bytes of body(): the client may send that much more.
  virtual void consume(size_t n) = 0;
  // The whole body has arrived (body() may still hold its last bytes).
  virtual bool body_complete() const = 0;

  // ---- the response ----
  // Starts it: a final status (200..599), headers, and the body's length, or
  // kUnknownBodyLength (the client then gets it chunked, or close-delimited
  // for HTTP/1.0). Framing headers are the network process's.
  virtual void start(int status, std::vector<proto::Header> headers, uint64_t length) = 0;
  // Whether start() can carry these headers (the ring's largest record);
  // start() answers 500 itself when not, the handler's mistake. A handler
  // whose headers come from elsewhere (an upstream's) asks first, to give
  // the fault to whom it belongs (502).
  virtual bool head_fits(const std::vector<proto::Header>& /*headers*/) const { return true; }
  // Appends body bytes. False when a window's worth is still on its way to
  // the client: the bytes are kept, but write more only after the listener
  // runs with writable() true.
  virtual bool write(std::string_view piece) = 0;
  virtual bool writable() const = 0;
  // The response is complete (its length, if announced, must have been met).
  virtual void finish() = 0;
  // Fails it: 502 if nothing of the response has left this process yet;
  // otherwise the client's connection is closed before the response
  // completes, so it cannot pass as whole.
  virtual void abort() = 0;
  // The client left or the request timed out: nothing more is sent.
  virtual bool cancelled() const = 0;
  // The response was started and takes more body (not finished, aborted,
  // refused by start() or cancelled).
  virtual bool responding() const = 0;

  // Called (from the service loop, never from inside these calls) when body
  // bytes arrive or the body completes, when writable() turns true, and when
  // the exchange is cancelled.
  virtual void set_listener(std::function<void()> listener) = 0;
};

// The service process's event loop, for a handler with descriptors of its
// own (sockets to upstreams, timerfds): one epoll set, so a process holds
// many requests at once and never blocks on one. Callbacks run from the
// loop, never from inside these calls.
class HandlerLoop {
 public:
  virtual ~HandlerLoop() = default;
  // Watches `fd` for `events` (EPOLLIN, EPOLLOUT, EPOLLET, ...); `ready`
  // gets the events that occurred. False (with errno) if it cannot.
  virtual bool watch(int fd, uint32_t events, std::function<void(uint32_t)> ready) = 0;
  virtual bool modify(int fd, uint32_t events) = 0;
  // Stops watching; call before closing the descriptor.
  virtual void unwatch(int fd) = 0;
  // Where a handler's per-request objects may come from: the service
  // process's block cache (worker/block_cache.h), which outlives the
  // handler and everything the process holds (a std::function kept by an
  // Exchange included), so a block freed late still has its cache.
  virtual std::pmr::memory_resource& blocks() { return *std::pmr::new_delete_resource(); }
  // An answer the handler wrote to a client itself, on a connection it
  // took over (an upgrade): its access-log line and its count in
  // ringhttpd_responses_total, as a network process does for the others.
  virtual void account_response(const AccessEntry& /*entry*/) {}
};

class Handler {
 public:
  virtual ~Handler() = default;
  // Called once, before the first request, by the service process.
  virtual void attach(HandlerLoop& /*loop*/) {}
  virtual void handle(ServiceRequest request, std::unique_ptr<Responder> responder) = 0;
  // Streaming handlers return true and get handle_stream() instead.
  virtual bool streams() const { return false; }
  virtual void handle_stream(std::shared_ptr<Exchange> /*exchange*/) {}
  // Called every loop iteration; returns the next time (monotonic ms) it
  // wants to be called, or -1 for none.
  virtual int64_t poll(int64_t /*now_ms*/) { return -1; }

  // ---- connections taken over (upgrades; only for a handler that says so) ----
  // The client's connection is the handler's from now on (a non-blocking
  // socket), with the request that asked for it and the bytes the client
  // sent after its head. The handler serves it in the process's loop and
  // closes it when done. The default (a handler that takes no connections)
  // closes it at once.
  virtual void take_connection(proto::UniqueFd /*client*/, ServiceRequest /*request*/,
                               std::string /*early*/) {}
  // Whether it may take connections over (its process then opens the
  // access log, for their lines: HandlerLoop::account_response).
  virtual bool takes_connections() const { return false; }
  // Connections taken over and still open: a graceful stop waits for them
  // (until the supervisor says stop now).
  virtual size_t connections_held() const { return 0; }
};

// The one visible list of handler types (config "services[i].type"): the
// built-in ones in worker/handlers/registry.cc, plus any a program adds with
// add_handler_type() before it reads a config (the test build adds handlers
// that hang or crash on purpose; the shipped binary adds none).
using HandlerFactory = std::unique_ptr<Handler> (*)(const ServiceSettings&, const ServiceIdentity&);
void add_handler_type(std::string_view name, HandlerFactory factory);
// The names, in registration order (the config loader validates against it).
std::span<const std::string_view> handler_type_names();
// A handler of `settings.type`, or nullptr for an unknown type.
std::unique_ptr<Handler> make_handler(const ServiceSettings& settings,
                                      const ServiceIdentity& identity);

}  // namespace ringhttpd::worker
