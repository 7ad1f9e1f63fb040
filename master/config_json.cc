// Config -> JSON (see config_json.h). The key names mirror master/config.cc's
// readers; a key added there and not here makes the round-trip test fail.
#include "master/config_json.h"

#include <cstdio>

namespace ringhttpd::master {
namespace {

using nlohmann::json;

std::string octal_mode(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 0777u);
  return buf;
}

json route_to_json(const worker::RouteSettings& r) {
  json out = {{"methods", r.methods}, {"host", r.host}, {"path", r.path}};
  if (r.kind == worker::RouteSettings::Kind::service) {
    out["service"] = r.service;
  } else if (r.kind == worker::RouteSettings::Kind::metrics) {
    out["metrics"] = true;
  } else if (r.kind == worker::RouteSettings::Kind::static_files) {
    out["static"] = {{"root", r.static_files.root},
                     {"index", r.static_files.index},
                     {"types", r.static_files.types},
                     {"cache_entries", r.static_files.cache_entries},
                     {"cache_valid_ms", r.static_files.cache_valid_ms},
                     {"listing", r.static_files.listing}};
  } else {
    out["respond"] = {{"status", r.respond.status},
                      {"body", r.respond.body},
                      {"content_type", r.respond.content_type}};
  }
  return out;
}

}  // namespace

json config_to_json(const Config& c) {
  json listeners = json::array();
  for (const ListenerConfig& l : c.listeners) {
    listeners.push_back({{"address", l.address}, {"port", l.port}, {"reuseport", l.reuseport}});
  }
  const worker::NetworkSettings& n = c.network;
  json network = {{"processes", n.processes},
                  {"max_connections", n.max_connections},
                  {"keepalive_timeout_ms", n.keepalive_timeout_ms},
                  {"request_timeout_ms", n.request_timeout_ms},
                  {"send_timeout_ms", n.send_timeout_ms},
                  {"drain_timeout_ms", n.drain_timeout_ms},
                  {"watchdog_ms", n.watchdog_ms},
                  {"max_header_bytes", n.max_header_bytes},
                  {"max_target_bytes", n.max_target_bytes},
                  {"max_body_bytes", n.max_body_bytes},
                  {"scheduling", n.scheduling}};
  json services = json::array();
  for (const worker::ServiceSettings& s : c.services) {
    services.push_back({{"name", s.name},
                        {"type", s.type},
                        {"processes", s.processes},
                        {"ring_bytes", s.ring_bytes},
                        {"timeout_ms", s.timeout_ms},
                        {"kill_after_ms", s.kill_after_ms},
                        {"start_timeout_ms", s.start_timeout_ms},
                        {"scheduling", s.scheduling}});
    json& out = services.back();
    if (s.type == "proxy") {
      out["upstreams"] = s.proxy.upstreams;
      out["balance"] = s.proxy.balance;
      out["connect_timeout_ms"] = s.proxy.connect_timeout_ms;
      out["response_timeout_ms"] = s.proxy.response_timeout_ms;
      out["idle_timeout_ms"] = s.proxy.idle_timeout_ms;
      out["keepalive"] = s.proxy.keepalive;
      out["fail_timeout_ms"] = s.proxy.fail_timeout_ms;
      out["pipeline"] = s.proxy.pipeline;
      out["pipeline_fast_ms"] = s.proxy.pipeline_fast_ms;
      out["upgrade"] = s.proxy.upgrade;
      out["tunnel_idle_timeout_ms"] = s.proxy.tunnel_idle_timeout_ms;
      out["host_header"] = s.proxy.host_header.value;
    }
    if (s.type == "module") {
      out["path"] = s.module.path;
      out["config"] = json::parse(s.module.config_json, nullptr, false);
    }
  }
  json routes = json::array();
  for (const worker::RouteSettings& r : c.routes) routes.push_back(route_to_json(r));
  json admin = {{"socket", c.admin.socket}, {"mode", octal_mode(c.admin.mode)}};
  if (!c.admin.group.empty()) admin["group"] = c.admin.group;
  return {{"listeners", std::move(listeners)},
          {"network", std::move(network)},
          {"services", std::move(services)},
          {"routes", std::move(routes)},
          {"admin", std::move(admin)},
          {"log", {{"access", c.log.access}, {"format", c.log.format}, {"level", c.log.level}}}};
}

}  // namespace ringhttpd::master
