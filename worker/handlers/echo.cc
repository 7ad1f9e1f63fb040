// The echo handler (see echo.h). Bytes that are not valid UTF-8 (in the body
// or headers) are replaced by U+FFFD in the JSON; body_length is exact.
#include "worker/handlers/echo.h"

#include <nlohmann/json.hpp>

namespace ringhttpd::worker {

void EchoHandler::handle(ServiceRequest request, std::unique_ptr<Responder> responder) {
  const proto::HttpRequest& req = request.http;
  nlohmann::json headers = nlohmann::json::object();
  for (const proto::Header& h : req.headers) {
    auto it = headers.find(h.name);
    if (it == headers.end()) {
      headers[h.name] = h.value;
    } else {
      *it = it->get<std::string>() + ", " + h.value;
    }
  }
  const nlohmann::json doc = {
      {"method", req.method},
      {"path", std::string(req.path())},
      {"query", std::string(req.query())},
      {"version", std::to_string(req.version_major) + "." + std::to_string(req.version_minor)},
      {"headers", std::move(headers)},
      {"body_length", req.body.size()},
      {"body", req.body},
      {"network",
       {{"pid", request.origin.network_pid},
        {"generation", request.origin.generation},
        {"index", request.origin.network_index}}},
      {"service",
       {{"name", identity_.service},
        {"pid", identity_.pid},
        {"generation", identity_.generation},
        {"index", identity_.index}}},
  };
  proto::HttpResponse response;
  response.headers.push_back({"Content-Type", "application/json"});
  response.body = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  response.body += '\n';
  responder->respond(std::move(response));
}

}  // namespace ringhttpd::worker
