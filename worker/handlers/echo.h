// The built-in "echo" handler: answers each request with a JSON description
// of it (method, path, query, headers, body) and of the processes that
// handled it. Used to test and measure the service path end to end.
#pragma once

#include <string>
#include <vector>

#include "worker/handler.h"

namespace ringhttpd::worker {

// Index arrays for grouping repeated header names, reused across requests.
struct EchoScratch {
  std::vector<size_t> order;
  std::vector<size_t> next_same;
  std::vector<uint8_t> repeated;
  std::string joined;
};

class EchoHandler : public Handler {
 public:
  explicit EchoHandler(ServiceIdentity identity);
  void handle(ServiceRequest request, std::unique_ptr<Responder> responder) override;

 private:
  ServiceIdentity identity_;
  std::string service_json_;  // ,"service":{...}}\n
  EchoScratch scratch_;
};

}  // namespace ringhttpd::worker
