// The supervisor: the process the operator starts. It binds the listeners,
// and runs generations: a generation is one config, one shared-memory
// segment, and the network and service processes forked for it. It passes
// each network process the listening sockets over its control socketpair
// (SCM_RIGHTS), waits until every child reports ready, logs one "ready"
// line, and then watches, in one poll loop: signals (through a signalfd; no
// code runs in signal context), children's exits (SIGCHLD on the same
// descriptor), and the children's control messages.
//
// - A child that dies is replaced in its generation; its peers first settle
//   what it owed and reset the rings they shared with it (peer_gone, then
//   peer_released), so the replacement starts on clean rings.
// - SIGHUP reloads: the config is read again, generation g+1 is started
//   beside g (same listening sockets where the address is unchanged), and
//   only when all of it is ready does g drain: its network processes hand
//   every connection over (through the supervisor, with SCM_RIGHTS) to the
//   network processes of g+1. A reload that fails leaves g untouched.
// - SIGTERM stops gracefully, SIGINT and SIGQUIT fast; either way the
//   network processes stop first (they finish or fail what is in flight),
//   then the service processes, then the segments are removed.
//
// What to do and when (commit, roll back, when a replacement starts, the
// back-off, the drain's deadlines) is decided by each generation's
// GenerationMachine (master/lifecycle.h), which is tested without
// processes; this class feeds it events (fork, ready message, reaped child,
// the clock) and carries out its decisions: fork, kill, waitpid, control
// messages, descriptors, logging.
#pragma once

#include <sys/types.h>

#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "master/config.h"
#include "master/lifecycle.h"
#include "master/listeners.h"
#include "master/systemd.h"
#include "proto/unique_fd.h"
#include "shm/segment.h"
#include "worker/worker_env.h"

namespace ringhttpd::master {

class AdminServer;

// Whether a segment named for instance `pid` belongs to a dead instance:
// the pid is not running, or runs something other than ringhttpd (`comm` is
// /proc/PID/comm, empty if unreadable). Pure, for testing.
bool is_stale_instance(bool pid_running, std::string_view comm);

// Removes /dev/shm segments of ringhttpd instances that are gone. Returns
// the names removed.
std::vector<std::string> remove_stale_segments();

class Supervisor {
 public:
  // `config_path` is re-read on reload; empty means the embedded default.
  Supervisor(Config config, std::string config_path);
  ~Supervisor();
  // Runs until stopped; returns the process exit status.
  int run();

 private:
  // One scoreboard slot of a generation and the process that holds it. Its
  // life (state, back-off, peers awaited) is the machine's (SlotLife,
  // master/lifecycle.h); this adds the process.
  struct Child : SlotLife {
    pid_t pid = -1;  // -1: no process holds the slot now
    uint32_t slot = 0;
    uint32_t index = 0;         // within its role (network) or its pool (service)
    int service = -1;           // service processes: index into services
    uint32_t service_proc = 0;  // service processes: index among all service processes
    std::string title;
    proto::UniqueFd control;     // supervisor's end; valid while pid != -1
    pid_t watchdog_killed = -1;  // the process the network watchdog killed (once)
    pid_t sigkilled = -1;        // the process the supervisor killed (kill_child)
    std::string failure;         // why it could not start, in its words (ControlType::failed)
    // Connections passed to this process (adopts to a network process,
    // takes to a service process; 0 at each spawn; mirrored in its slot's
    // passed_in), and whether a network process was told that no more
    // adopts will come (adopts_done, during a stop).
    uint64_t passed_in = 0;
    bool adopts_done_sent = false;
  };
  // A generation: its decisions are the machine's (GenerationMachine:
  // phase, deadlines); this adds its config, segment, listeners and processes.
  struct Generation : GenerationMachine {
    Generation(int64_t now_ms, int64_t drain_timeout_ms)
        : GenerationMachine(now_ms, drain_timeout_ms) {}
    uint32_t slot_count() const override { return static_cast<uint32_t>(children.size()); }
    SlotLife& slot_life(uint32_t slot) override { return children[slot]; }
    const SlotLife& slot_life(uint32_t slot) const override { return children[slot]; }

    uint32_t number = 0;
    Config config;
    uint32_t n_network = 0;
    std::vector<Listener> listeners;  // this generation's copies
    std::optional<shm::Segment> segment;
    std::vector<proto::UniqueFd> wake_fds;
    worker::WorkerEnv env_template;
    std::vector<Child> children;  // indexed by slot; sized once, when made
  };
  enum class Outcome { running, stop_graceful, stop_fast, failed };

  // ---- generations ----
  std::unique_ptr<Generation> make_generation(Config config, std::string& error);
  // Each returns "" or why a process could not be started (its title, the
  // failing call and errno: "network g2 #0: fork: Resource temporarily
  // unavailable").
  std::string spawn_all(Generation& g);
  void start_or_roll_back(Generation& g);  // spawn_all, or roll back saying why
  std::string spawn(Generation& g, Child& c);
  void reset_rings_of(Generation& g, const Child& c);
  void close_in_child(const Generation& g, int keep_control);
  bool send_listeners(const Generation& g, Child& c);
  void on_generation_ready(Generation& g);
  void roll_back(Generation& g, const std::string& why);
  void finish_reload();
  void publish_counters();
  void update_rate(int64_t now);
  void start_reload();

  // ---- the loop ----
  Outcome loop();
  Outcome handle_signals();
  void reap();
  void on_death(Generation& g, Child& c, int status);
  void log_replacement(const std::string& what, const DeathDecision& d);
  void settle_with_peers(Generation& g, Child& dead, int64_t now);
  void tell_network_siblings(Generation& g, const Child& changed);
  // Reads up to `budget` messages from the child; `paced`: stops early
  // while handed-over connections pile up (reads_paused).
  enum class Reading { paced, everything };
  void handle_control(Generation& g, Child& c, int budget, Reading reading = Reading::paced);
  // Whether the child's messages are left unread for now: it is a draining
  // network process (its messages are handoffs) and kMaxQueuedAdopts
  // connections already wait in adopts_.
  bool reads_paused(const Generation& g, const Child& c) const;
  void relay_handoff(proto::UniqueFd fd, std::string bytes, uint64_t idle_ms);
  void flush_adopts();
  void relay_takeover(const std::string& service, proto::UniqueFd fd, const std::string& payload,
                      Child* answerer, uint64_t asked_us);
  // A handed-over connection no network process of the serving generation
  // has room for: closed with a FIN and counted (report_surplus).
  void close_surplus(proto::UniqueFd fd);
  // Logs, once per reload, how many handed-over connections were closed
  // for want of room.
  void report_surplus();
  // During a stop: tells each stopping network process, once, when no
  // more connections can be handed to it (adopts_done_due).
  void announce_adopts_done();
  void run_timers(int64_t now);
  void check_network_loops(int64_t now);
  void run_generation_timers(Generation& g, int64_t now);
  void apply(Generation& g, const Action& a, int64_t now);
  int poll_timeout(int64_t now) const;
  bool signal_pending() const;

  // ---- stop ----
  // `role` none: every process, whatever its role.
  static bool of_role(const Child& c, shm::ProcessRole role) {
    return role == shm::ProcessRole::none || c.role == role;
  }
  bool stop_role(shm::ProcessRole role, bool graceful, int timeout_ms);
  bool tunnels_open() const;
  enum class Wait { exited, timed_out, hurry };
  Wait wait_exit(shm::ProcessRole role, int timeout_ms, bool can_hurry);
  void send_stop(Child& c, bool graceful);
  void kill_child(Child& c);

  std::string ready_line(const Generation& g) const;

  // ---- systemd (master/systemd.h) ----
  // The STATUS= line: serving generation, its processes, last reload result.
  std::string status_summary() const;
  // The watchdog rule: a generation serves and no slot of it has been in a
  // crash loop for longer than the watchdog interval (a slot whose process
  // has run RestartPolicy::kHealthyMs is out of it, as the policy says).
  bool healthy(int64_t now) const;

  // ---- admin socket (master/admin.h; defined in master/supervisor_admin.cc) ----
  // Opens admin.socket unless it is ""; false with `error` when it cannot.
  bool open_admin(std::string& error);
  // A stop began: waiting admin clients are answered, the socket removed.
  void close_admin(std::string_view reason);
  nlohmann::json admin_status() const;
  // One reload request, from SIGHUP or the admin socket (current_ is set):
  // returns the sequence number of the reload that will cover it.
  uint64_t request_reload();
  // Called as every reload ends (finish_reload): records it, answers admin clients.
  void note_reload_finished();
  struct LastReload {
    bool ok = false;
    std::string error;
    int64_t at_unix_ms = 0;  // wall clock, for display
    int64_t took_ms = 0;
    uint32_t generation = 0;  // serving after it
  };

  Config config_;  // the config of the first generation
  std::string config_path_;
  proto::UniqueFd signal_fd_;
  std::vector<std::unique_ptr<Generation>> generations_;  // oldest first
  Generation* current_ = nullptr;                         // the serving generation
  uint32_t last_generation_ = 0;
  ReloadMachine reload_;
  // Requests/s for STATUS= (update_rate).
  uint64_t rate_ = 0;
  uint64_t rate_total_ = 0;
  uint32_t rate_generation_ = 0;
  int64_t rate_since_ms_ = 0;
  int64_t next_rate_ms_ = 0;
  // Reloads committed and failed, handed-over connections closed, takeovers
  // refused, since the start (published into the segments: publish_counters).
  shm::SupervisorCounters counters_;
  int64_t reload_began_ms_ = 0;
  std::string last_reload_error_;
  uint32_t relay_next_ = 0;
  std::map<std::string, uint32_t> take_next_;  // per service name: the next process in turn
  // Handed-over connections not yet taken by a network process of the
  // serving generation (its control queue was full).
  struct PendingAdopt {
    proto::UniqueFd fd;
    std::string bytes;
    uint64_t idle_ms;   // idle for this long when handed over...
    int64_t handed_ms;  // ...at this time (the wait counts as idle too)
  };
  std::deque<PendingAdopt> adopts_;
  // At most this many wait in adopts_: past it the draining network
  // processes' handoffs are left in their sockets (they retry), so the
  // supervisor, whose RLIMIT_NOFILE is planned like a network process's,
  // never holds thousands of client descriptors itself.
  static constexpr size_t kMaxQueuedAdopts = 32;
  // Handed-over connections closed for want of room since the last report
  // (report_surplus), and the serving generation they were meant for.
  uint64_t surplus_closed_ = 0;
  uint32_t surplus_generation_ = 0;
  SystemdNotifier notifier_;
  // Sockets passed by systemd (socket activation), matched to the first
  // config's listeners and kept for the supervisor's life (bind_listeners).
  std::vector<Listener> activated_;
  std::string last_reload_result_ = "none";  // for STATUS=: "none", "ok", "failed: ..."
  std::unique_ptr<AdminServer> admin_;       // null: admin.socket is ""
  int64_t started_ms_ = 0;                   // the supervisor's start (monotonic), for uptime
  uint64_t reloads_started_ = 0;             // numbers the reloads, for admin reload answers
  std::optional<LastReload> last_reload_;    // the last finished reload, if any
  bool reload_due_ = false;                  // a (coalesced) reload starts at the top of the loop
  bool stopping_ = false;
  bool start_failed_ = false;
};

}  // namespace ringhttpd::master
