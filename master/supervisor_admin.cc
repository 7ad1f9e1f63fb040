// The supervisor's side of the admin socket: opening it, the `status`,
// `config` and `metrics` answers built from the supervisor's own records and the
// scoreboard, and the reload hook. Kept out of supervisor.cc, which only
// calls these (open_admin, close_admin, request_reload, note_reload_finished)
// and polls the admin descriptors in its loop.
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <nlohmann/json.hpp>

#include "master/admin.h"
#include "master/config_json.h"
#include "master/fd_limit.h"
#include "master/supervisor.h"
#include "worker/event_loop.h"
#include "worker/log.h"
#include "worker/metrics.h"

namespace ringhttpd::master {
namespace {

using nlohmann::json;

int64_t unix_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

const char* phase_name(GenerationPhase phase) {
  switch (phase) {
    case GenerationPhase::starting:
      return "starting";
    case GenerationPhase::serving:
      return "serving";
    case GenerationPhase::draining:
      return "draining";
    case GenerationPhase::discarding:
      return "discarding";
  }
  return "unknown";
}

bool same_admin(const AdminConfig& a, const AdminConfig& b) {
  return a.socket == b.socket && a.mode == b.mode && a.group == b.group;
}

}  // namespace

bool Supervisor::open_admin(std::string& error) {
  started_ms_ = worker::monotonic_ms();  // run() calls this before the first fork
  if (config_.admin.socket.empty()) {
    worker::log_info("admin socket off (admin.socket is \"\")");
    return true;
  }
  AdminHooks hooks;
  hooks.status = [this] { return admin_status(); };
  hooks.config = [this] {
    const Generation* g = current_;
    // The admin.* keys in effect are the first generation's: a reload
    // does not move the socket (note_reload_finished says so).
    Config effective = g != nullptr ? g->config : config_;
    effective.admin = config_.admin;
    return json{{"ok", true},
                {"generation", g != nullptr ? g->number : 0},
                {"config", config_to_json(effective)}};
  };
  hooks.metrics = [this] {
    const Generation* g = current_;
    if (g == nullptr || !g->segment) {
      return admin_error("the server is still starting; no metrics before it serves");
    }
    return json{
        {"ok", true},
        {"generation", g->number},
        {"metrics", worker::format_metrics(
                        *g->segment, worker::metrics_names(g->config.services, g->config.routes),
                        worker::monotonic_ms())}};
  };
  hooks.reload = [this](std::string& why) -> std::optional<uint64_t> {
    if (current_ == nullptr) {
      why = "the server is still starting; no reload before it serves";
      return std::nullopt;
    }
    worker::log_info("reload requested on the admin socket");
    return request_reload();
  };
  hooks.room_for_client = [this] {
    // A respawn's socketpair and a config file's descriptor; and, while
    // one generation runs, a reload's new one the size of the serving one
    // (beside draining generations a reload is refused anyway, and says
    // why to a client that can still connect).
    constexpr uint64_t kRespawnAndConfig = 3;
    const uint64_t processes = current_ != nullptr ? current_->children.size() : 0;
    const uint64_t reload = generations_.size() <= 1 ? generation_fds(processes) : 0;
    return open_fd_count() + kRespawnAndConfig + reload <= fd_soft_limit();
  };
  admin_ = AdminServer::open(config_.admin, std::move(hooks), error);
  if (!admin_) return false;
  worker::log_info("admin socket " + escape_text(admin_->path()));
  return true;
}

void Supervisor::close_admin(std::string_view reason) {
  if (!admin_) return;
  admin_->shutdown(reason);
  admin_.reset();
}

// The next reload to start reads the config after this request, so it is
// the one that covers it: a reload already running read it before. If one
// is due (requested, not started), it is that one and nothing more is asked.
uint64_t Supervisor::request_reload() {
  if (!reload_due_ && reload_.request()) reload_due_ = true;
  return reloads_started_ + 1;
}

void Supervisor::note_reload_finished() {
  LastReload r;
  r.ok = last_reload_error_.empty();
  r.error = last_reload_error_;
  r.at_unix_ms = unix_ms();
  r.took_ms = worker::monotonic_ms() - reload_began_ms_;
  r.generation = current_ != nullptr ? current_->number : 0;
  if (r.ok && admin_ && current_ != nullptr && !same_admin(current_->config.admin, config_.admin)) {
    worker::log_warn("reload: the admin.* keys changed; they take effect at the next start");
  }
  if (admin_) {
    admin_->reload_finished(
        reloads_started_,
        r.ok ? json{{"ok", true}, {"generation", r.generation}, {"ms", r.took_ms}}
             : json{{"ok", false}, {"error", r.error}, {"generation", r.generation}});
  }
  last_reload_ = std::move(r);
}

json Supervisor::admin_status() const {
  const int64_t now = worker::monotonic_ms();
  json out = {{"ok", true},
              {"version", RINGHTTPD_VERSION},
              {"pid", ::getpid()},
              {"uptime_ms", now - started_ms_},
              {"generation", current_ != nullptr ? json(current_->number) : json(nullptr)},
              {"reload_in_progress", reload_.running()},
              {"reload_pending", reload_.pending()}};
  if (last_reload_) {
    out["last_reload"] = {{"ok", last_reload_->ok},
                          {"error", last_reload_->error},
                          {"at_ms", last_reload_->at_unix_ms},
                          {"ms", last_reload_->took_ms},
                          {"generation", last_reload_->generation}};
  } else {
    out["last_reload"] = nullptr;
  }
  json listeners = json::array();
  if (current_ != nullptr) {
    for (const Listener& l : current_->listeners) {
      if (l.member <= 0) listeners.push_back(l.address);  // a reuseport group once
    }
  }
  out["listeners"] = std::move(listeners);
  json generations = json::array();
  json processes = json::array();
  for (const auto& g : generations_) {
    generations.push_back({{"generation", g->number},
                           {"phase", phase_name(g->phase)},
                           {"age_ms", now - g->began_ms}});
    for (const Child& c : g->children) {
      // Counters are written by the process itself; read them as it writes them.
      shm::ProcessSlot& slot = g->segment->slot(c.slot);
      const uint64_t requests =
          std::atomic_ref<uint64_t>(slot.requests).load(std::memory_order_relaxed);
      const uint64_t inflight =
          std::atomic_ref<uint64_t>(slot.inflight).load(std::memory_order_relaxed);
      const uint32_t conns =
          std::atomic_ref<uint32_t>(slot.connections).load(std::memory_order_relaxed);
      const uint32_t incarnation =
          std::atomic_ref<uint32_t>(slot.incarnation).load(std::memory_order_relaxed);
      const uint64_t beat =
          std::atomic_ref<uint64_t>(slot.heartbeat_ms).load(std::memory_order_relaxed);
      const bool running = c.pid > 0;
      const bool network = c.role == shm::ProcessRole::network;
      const char* state = !running                                  ? "gone"
                          : g->phase == GenerationPhase::draining   ? "draining"
                          : g->phase == GenerationPhase::discarding ? "stopping"
                          : c.state == SlotState::ready             ? "ready"
                                                                    : "starting";
      json row = {
          {"role", network ? "network" : "service"},
          {"service",
           network ? json(nullptr) : json(g->config.services[static_cast<size_t>(c.service)].name)},
          {"generation", g->number},
          {"index", c.index},
          {"pid", running ? json(c.pid) : json(nullptr)},
          {"state", state},
          {"uptime_ms", running ? json(now - c.started_ms) : json(nullptr)},
          {"requests", requests},
          {"connections", network ? json(conns) : json(nullptr)},
          // A slot with no process has nothing in flight: what its last
          // one held was retried elsewhere or failed (its count is stale).
          {"inflight", network || !running ? json(nullptr) : json(inflight)},
          {"incarnation", incarnation},
          // Since the process's loop last ran: it runs at least once a
          // second, so a large age means a process stuck inside a handler.
          {"heartbeat_age_ms", running && beat != 0
                                   ? json(std::max<int64_t>(0, now - static_cast<int64_t>(beat)))
                                   : json(nullptr)},
          {"restarts", c.restart.restarts()},
          {"streak", c.restart.streak()},
          {"restart_in_ms", c.respawn && !running
                                ? json(std::max<int64_t>(0, c.restart_at_ms - now))
                                : json(nullptr)},
      };
      // Ring depths: bytes waiting in the service process's rings, summed
      // over the network processes (requests to it, responses from it).
      if (!network) {
        uint64_t queued[2] = {0, 0};
        for (uint32_t n = 0; n < g->n_network; ++n) {
          queued[0] += g->segment->ring_used(n, c.service_proc, shm::Direction::request);
          queued[1] += g->segment->ring_used(n, c.service_proc, shm::Direction::response);
        }
        row["ring_queued_bytes"] = {{"request", queued[0]}, {"response", queued[1]}};
      }
      processes.push_back(std::move(row));
    }
  }
  out["generations"] = std::move(generations);
  out["processes"] = std::move(processes);
  return out;
}

}  // namespace ringhttpd::master
