// Misbehaving handlers for the lifecycle tests (see test_handlers.h).
#include "tests/support/test_handlers.h"

#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "worker/handler.h"

namespace ringhttpd::testing {
namespace {

using worker::Handler;
using worker::Responder;
using worker::ServiceIdentity;
using worker::ServiceRequest;
using worker::ServiceSettings;

proto::HttpResponse text(int status, std::string body) {
  proto::HttpResponse r;
  r.status = status;
  r.headers.push_back({"Content-Type", "text/plain"});
  r.body = std::move(body);
  return r;
}

class HangHandler : public Handler {
 public:
  explicit HangHandler(const ServiceIdentity& id) : pid_(id.pid) {}
  void handle(ServiceRequest request, std::unique_ptr<Responder> responder) override {
    if (request.http.path().starts_with("/fast")) {
      return responder->respond(text(200, "pid " + std::to_string(pid_) + "\n"));
    }
    held_.push_back(std::move(responder));  // never answered
  }

 private:
  uint32_t pid_;
  std::vector<std::unique_ptr<Responder>> held_;
};

class CrashHandler : public Handler {
 public:
  explicit CrashHandler(const ServiceIdentity& id) : pid_(id.pid) {}
  void handle(ServiceRequest request, std::unique_ptr<Responder> responder) override {
    if (request.http.path().starts_with("/crash")) std::abort();
    proto::HttpResponse r = text(200, "pid " + std::to_string(pid_) + "\n");
    // Headers no network process may write as given (response splitting).
    if (request.http.path() == "/inject") r.headers.push_back({"X-Test", "a\r\nX-Injected: 1"});
    if (request.http.path() == "/badname") r.headers.push_back({"Bad Name", "v"});
    responder->respond(std::move(r));
  }

 private:
  uint32_t pid_;
};

}  // namespace

void add_test_handlers() {
  add_stream_handler();
  add_lifecycle_handler();
  worker::add_handler_type("hang", [](const ServiceSettings&, const ServiceIdentity& id) {
    return std::unique_ptr<Handler>(std::make_unique<HangHandler>(id));
  });
  worker::add_handler_type("crash", [](const ServiceSettings&, const ServiceIdentity& id) {
    return std::unique_ptr<Handler>(std::make_unique<CrashHandler>(id));
  });
}

std::string query_value(std::string_view query, std::string_view key) {
  size_t at = 0;
  while (at < query.size()) {
    size_t end = query.find('&', at);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view pair = query.substr(at, end - at);
    if (pair.size() > key.size() && pair.starts_with(key) && pair[key.size()] == '=') {
      return std::string(pair.substr(key.size() + 1));
    }
    at = end + 1;
  }
  return {};
}

}  // namespace ringhttpd::testing
