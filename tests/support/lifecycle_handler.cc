// The "lifecycle" handler type of the test build: requests that block the
// service process, are held until the test lets them go, or end the
// process, for the lifecycle tests (tests/integration/lifecycle_test.cc).
//
//   /block            never returns from handle(): sleeps in a loop, as a
//                     handler stuck in a system call would (the process
//                     reads neither its rings nor its control socket); logs
//                     "lifecycle: pid N blocks in handle()" first
//   /hold?until=PATH  held (the process serves others meanwhile) until the
//                     file PATH exists; logs "lifecycle: pid N holds PATH"
//   /exit             the process exits with status 3 inside handle()
//   anything else     answered at once
//
// Every answer is JSON naming who served it, shaped like echo's:
//   {"network":{"pid":P,"generation":G,"index":I},
//    "service":{"pid":P,"generation":G,"index":I},"path":"/x","body_bytes":N}
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/test_handlers.h"
#include "worker/handler.h"
#include "worker/log.h"

namespace ringhttpd::testing {
namespace {

using worker::Handler;
using worker::Responder;
using worker::ServiceIdentity;
using worker::ServiceRequest;
using worker::ServiceSettings;

// How often a held request looks for its file.
constexpr int64_t kHoldPollMs = 10;

void append_process(std::string& out, const char* name, uint32_t pid, uint32_t generation,
                    uint32_t index) {
  out.append("\"").append(name).append("\":{\"pid\":").append(std::to_string(pid));
  out.append(",\"generation\":").append(std::to_string(generation));
  out.append(",\"index\":").append(std::to_string(index)).append("}");
}

class LifecycleHandler : public Handler {
 public:
  explicit LifecycleHandler(const ServiceIdentity& id) : id_(id) {}

  void handle(ServiceRequest request, std::unique_ptr<Responder> responder) override {
    const std::string_view path = request.http.path();
    const std::string pid = std::to_string(id_.pid);
    if (path == "/block") {
      worker::log_warn("lifecycle: pid " + pid + " blocks in handle()");
      for (;;) ::usleep(100 * 1000);
    }
    if (path == "/exit") ::_exit(3);
    if (path == "/hold") {
      Held h{answer(request), query_value(request.http.query(), "until"), std::move(responder)};
      worker::log_warn("lifecycle: pid " + pid + " holds " + h.until);
      held_.push_back(std::move(h));
      return;
    }
    responder->respond(answer(request));
  }

  int64_t poll(int64_t now_ms) override {
    if (held_.empty()) return -1;
    if (now_ms < next_look_ms_) return next_look_ms_;
    next_look_ms_ = now_ms + kHoldPollMs;
    for (auto it = held_.begin(); it != held_.end();) {
      struct stat st;
      if (it->until.empty() || ::stat(it->until.c_str(), &st) != 0) {
        ++it;
        continue;
      }
      it->responder->respond(std::move(it->response));
      it = held_.erase(it);
    }
    return held_.empty() ? -1 : next_look_ms_;
  }

 private:
  struct Held {
    proto::HttpResponse response;
    std::string until;
    std::unique_ptr<Responder> responder;
  };

  proto::HttpResponse answer(const ServiceRequest& request) const {
    std::string body = "{";
    append_process(body, "network", request.origin.network_pid, request.origin.generation,
                   request.origin.network_index);
    body += ',';
    append_process(body, "service", id_.pid, id_.generation, id_.index);
    // Test paths only: no byte of them needs escaping in JSON.
    body.append(",\"path\":\"").append(request.http.path()).append("\"");
    body.append(",\"body_bytes\":").append(std::to_string(request.http.body.size()));
    body += "}\n";
    proto::HttpResponse r;
    r.status = 200;
    r.headers.push_back({"Content-Type", "application/json"});
    r.body = std::move(body);
    return r;
  }

  ServiceIdentity id_;
  std::vector<Held> held_;
  int64_t next_look_ms_ = 0;
};

}  // namespace

void add_lifecycle_handler() {
  worker::add_handler_type("lifecycle", [](const ServiceSettings&, const ServiceIdentity& id) {
    return std::unique_ptr<Handler>(std::make_unique<LifecycleHandler>(id));
  });
}

}  // namespace ringhttpd::testing
