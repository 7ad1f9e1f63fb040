// The configuration file: JSON text in, validated plain structs out. Every
// key has a default; every problem is reported with its key path
// (e.g. `routes[2].service: no service named "ap"`). The structs the workers
// use live in worker/settings.h; this file adds what only the supervisor needs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "master/privileges.h"
#include "worker/settings.h"

namespace ringhttpd::master {

struct ListenerConfig {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal
  int port = 8080;                    // 0 = any free port (tests)
  bool reuseport = false;             // one SO_REUSEPORT socket per network process
};

struct AdminConfig {
  std::string socket = "run/ringhttpd.sock";  // "" = no admin socket
  unsigned mode = 0600;
  std::string group;       // "" = none; else members of it (by gid) may connect too
  unsigned group_gid = 0;  // valid when !group.empty(): resolved at load
};

struct LogConfig {
  std::string access = "off";       // "off", "stderr" or a file path
  std::string format = "combined";  // "combined" or "json"
  std::string level = "info";       // "debug", "info", "warn", "error"
};

struct Config {
  std::vector<ListenerConfig> listeners;
  worker::NetworkSettings network;
  std::vector<worker::ServiceSettings> services;
  std::vector<worker::RouteSettings> routes;
  AdminConfig admin;
  LogConfig log;
  RunAsConfig run_as;  // top-level "user" and "group" (master/privileges.h)
};

struct ConfigResult {
  Config config;
  std::vector<std::string> errors;  // "key.path: problem", empty when valid
  bool ok() const { return errors.empty(); }
};

// Parses and validates JSON text. Never throws.
ConfigResult parse_config(std::string_view json_text);

// Reads a file and parses it; a read failure is reported as an error.
ConfigResult load_config_file(const std::string& path);

// The embedded default (etc/ringhttpd.json at build time).
std::string_view default_config_text();

// `text` made safe to print inside one line of a message: printable ASCII is
// kept except that a double quote and a backslash get a backslash before
// them; newline, CR and tab become \n, \r and \t, and any other control byte
// or byte >= 0x7f becomes \xNN. Key names, quoted values and file paths all
// go through it, so a config cannot forge an extra error line or send escape
// sequences to a terminal.
std::string escape_text(std::string_view text);

// Another process's text (a child's reason, a module's message, which may
// be escaped already) for one line of a message: bytes outside printable
// ASCII as \xNN, everything else, a backslash too, as it is. So it stays
// one line and sends no escape sequence, and is not escaped twice.
std::string printable_line(std::string_view text);

}  // namespace ringhttpd::master
