// The interface between a service process and application logic. A handler
// gets each complete request with a Responder and answers through it, now or
// later (a handler with its own I/O keeps the Responder and completes it from
// its event loop). The service process owns the rings; handlers never see
// them, so new handler types (static files, proxy, user modules) need no
// change in the network process or the ring protocol.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "proto/http_request.h"
#include "proto/http_response.h"
#include "proto/ring_codec.h"
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

class Handler {
 public:
  virtual ~Handler() = default;
  virtual void handle(ServiceRequest request, std::unique_ptr<Responder> responder) = 0;
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
