// The list of handler types a service can run (config "services[i].type").
// Adding a handler type means adding a line here and the name to the
// config loader's list; nothing registers itself behind the reader's back.
#include "worker/handler.h"
#include "worker/handlers/echo.h"

namespace ringhttpd::worker {

std::unique_ptr<Handler> make_handler(const ServiceSettings& settings,
                                      const ServiceIdentity& identity) {
  if (settings.type == "echo") return std::make_unique<EchoHandler>(identity);
  return nullptr;
}

}  // namespace ringhttpd::worker
