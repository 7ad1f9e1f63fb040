// What ringhttpd does for systemd, and only that: the sd_notify messages
// (readiness, reload, stop, status, watchdog) and socket activation (taking
// listening sockets passed by systemd instead of binding them). Everything
// here goes through libsystemd and is a no-op outside systemd: without
// NOTIFY_SOCKET no message is sent; without LISTEN_FDS no socket is taken.
//
// The decisions (which passed socket is which configured listener, whether
// the supervisor is healthy enough to feed the watchdog) are plain functions
// without syscalls, tested directly (tests/unit/systemd_test.cc).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "master/config.h"
#include "master/listeners.h"

namespace ringhttpd::master {

// ---- sd_notify -------------------------------------------------------------

// The supervisor's messages to the service manager. Each sends one datagram
// (sd_notify) whose STATUS= line is the summary given; all are no-ops when
// NOTIFY_SOCKET is unset. Only the supervisor sends: NotifyAccess=main in
// the unit makes systemd ignore anything a child might send.
class SystemdNotifier {
 public:
  // Reads NOTIFY_SOCKET and WATCHDOG_USEC (sd_watchdog_enabled) once.
  SystemdNotifier();

  bool enabled() const { return enabled_; }
  void ready(std::string_view status);      // READY=1
  void reloading(std::string_view status);  // RELOADING=1, MONOTONIC_USEC=<now>
  void stopping(std::string_view status);   // STOPPING=1
  void status(std::string_view status);     // STATUS= only
  // EXTEND_TIMEOUT_USEC=: a start (or reload) may take `ms` more before
  // the next message, beyond TimeoutStartSec= (a service whose
  // start_timeout_ms is longer than systemd's start timeout).
  void extend_timeout(int64_t ms);

  // The watchdog interval systemd asked for (WatchdogSec), 0 when none.
  int64_t watchdog_interval_ms() const { return watchdog_ms_; }
  // Whether the loop should decide health and call watchdog() now.
  bool watchdog_due(int64_t now_ms) const {
    return watchdog_ms_ != 0 && now_ms >= watchdog_due_ms();
  }
  // Sends WATCHDOG=1 when `healthy`, then waits half the interval (as
  // sd_watchdog_enabled(3) recommends: one late loop iteration does not get
  // a healthy server killed). An unhealthy supervisor sends nothing, and
  // looks again soon; once the interval runs out systemd kills it and, with
  // Restart=on-failure, starts it again.
  void watchdog(int64_t now_ms, bool healthy);
  // When the loop must wake up next for the watchdog (monotonic ms), or
  // INT64_MAX without a watchdog.
  int64_t watchdog_due_ms() const;

 private:
  void send(const std::string& message);

  bool enabled_ = false;
  int64_t watchdog_ms_ = 0;
  int64_t next_check_ms_ = 0;  // when watchdog() is due next
};

// A STATUS= summary made one line: newlines (never expected, but error
// texts come from many places) become spaces, and it is cut at 200 bytes.
std::string status_line(std::string_view text);

// Deaths in a row (RestartPolicy::streak) from which a slot counts as in a
// crash loop (the log says "crash loop" from the same point on).
inline constexpr uint32_t kCrashLoopStreak = 3;

// The watchdog rule. The supervisor is healthy when a generation is serving
// and no slot has been in a crash loop for longer than the watchdog
// interval. `crash_loops_since_ms` holds, for each slot in a crash loop, the
// time (monotonic ms) it entered it.
bool watchdog_healthy(bool serving, const std::vector<int64_t>& crash_loops_since_ms,
                      int64_t now_ms, int64_t interval_ms);

// ---- socket activation -------------------------------------------------------

// A listening socket passed by systemd (LISTEN_FDS), before it is matched.
struct PassedSocket {
  proto::UniqueFd fd;
  std::string name;            // FileDescriptorName (LISTEN_FDNAMES), "unknown" when unnamed
  sockaddr_storage address{};  // getsockname
  socklen_t address_len = 0;
};

// The name a passed socket must carry (FileDescriptorName=) to be matched to
// a listener by name: its configured "address:port" with every ':' written
// as '_' ("127.0.0.1_8080", "__1_443" for ::1 port 443), because systemd
// refuses ':' in a descriptor name (it separates the names in
// LISTEN_FDNAMES).
std::string descriptor_name(const ListenerConfig& listener);

// Which configured listener a passed socket is: the first one whose address
// and port equal the socket's bound address (port 0 in the config never
// matches an address: it means "any port"), or else whose descriptor_name()
// equals `name`. -1 when none. Pure.
int match_passed_socket(const std::vector<ListenerConfig>& configs, const sockaddr_storage& bound,
                        std::string_view name);

// Takes the sockets systemd passed (sd_listen_fds_with_names; the LISTEN_*
// variables are unset, so nothing forked later sees them), makes each
// non-blocking and close-on-exec, and matches them to `configs`: matched
// ones are returned as Listeners with their configured key (what
// bind_listeners() matches on); the others are logged and closed. Each
// taken socket is logged ("taken from systemd"). Empty without LISTEN_FDS.
std::vector<Listener> take_activated_listeners(const std::vector<ListenerConfig>& configs);

}  // namespace ringhttpd::master
