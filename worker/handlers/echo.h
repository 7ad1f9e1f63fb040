// The built-in "echo" handler: answers each request with a JSON description
// of it (method, path, query, headers, body) and of the processes that
// handled it. Used to test and measure the service path end to end.
#pragma once

#include "worker/handler.h"

namespace ringhttpd::worker {

class EchoHandler : public Handler {
 public:
  explicit EchoHandler(ServiceIdentity identity) : identity_(std::move(identity)) {}
  void handle(ServiceRequest request, std::unique_ptr<Responder> responder) override;

 private:
  ServiceIdentity identity_;
};

}  // namespace ringhttpd::worker
