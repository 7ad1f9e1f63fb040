// The list of handler types a service can run (config "services[i].type").
// Adding a built-in handler type means adding one line to kBuiltin; the
// config loader reads the same list, so the two cannot drift apart.
#include <vector>

#include "worker/handler.h"
#include "worker/handlers/echo.h"
#include "worker/handlers/module.h"
#include "worker/handlers/proxy.h"
#include "worker/log.h"

namespace ringhttpd::worker {
namespace {

struct Entry {
  std::string_view name;
  HandlerFactory make;
};

std::unique_ptr<Handler> make_echo(const ServiceSettings&, const ServiceIdentity& identity) {
  return std::make_unique<EchoHandler>(identity);
}

// A module that cannot be loaded says why in one line; nullptr fails the
// service process's start.
std::unique_ptr<Handler> make_module(const ServiceSettings& settings,
                                     const ServiceIdentity& identity) {
  std::string error;
  std::unique_ptr<Handler> handler = ModuleHandler::load(settings.module, identity, error);
  if (!handler) log_error(error);
  return handler;
}

struct Registry {
  std::vector<Entry> entries{
      {"echo", &make_echo}, {"module", &make_module}, {"proxy", &make_proxy_handler}};
  std::vector<std::string_view> names{"echo", "module", "proxy"};
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

void add_handler_type(std::string_view name, HandlerFactory factory) {
  registry().entries.push_back({name, factory});
  registry().names.push_back(name);
}

std::span<const std::string_view> handler_type_names() { return registry().names; }

std::unique_ptr<Handler> make_handler(const ServiceSettings& settings,
                                      const ServiceIdentity& identity) {
  for (const Entry& e : registry().entries) {
    if (e.name == settings.type) return e.make(settings, identity);
  }
  return nullptr;
}

}  // namespace ringhttpd::worker
