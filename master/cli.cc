// ringhttpd's command line (CLI11) and the one place that decides what this
// process is. `serve` becomes the supervisor (which forks the workers);
// `check` validates a config file and exits. main() is in master/main.cc;
// the test build's binary calls run_cli() too, after adding its handlers.
#include "master/cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "master/capacity.h"
#include "master/config.h"
#include "master/ctl.h"
#include "master/fd_limit.h"
#include "master/module_init_check.h"
#include "master/supervisor.h"
#include "worker/handlers/module.h"
#include "worker/log.h"
#include "worker/process_title.h"

namespace {

constexpr const char* kExamples = R"(Examples:
  ringhttpd serve                          serve on the embedded default config (127.0.0.1:8080)
  ringhttpd serve -c etc/ringhttpd.json    serve with a config file
  ringhttpd check -c /etc/ringhttpd.json   validate a config file: exit 0, or 1 listing each problem
  ringhttpd check --init -c FILE           the same, and run each module's init in a child process
  ringhttpd ctl status                     the running server's processes (admin socket)
  ringhttpd ctl -c /etc/ringhttpd.json reload   reload; exit 0 when the new config serves
  ringhttpd ctl metrics                    the metrics (Prometheus text format)
  ringhttpd --version
)";

ringhttpd::master::ConfigResult load(const std::string& path) {
  if (path.empty())
    return ringhttpd::master::parse_config(ringhttpd::master::default_config_text());
  return ringhttpd::master::load_config_file(path);
}

// The path is escaped like the config's own strings: a file name with a
// newline must not forge a line of the report.
std::string display_name(const std::string& path) {
  return path.empty() ? "(embedded default)" : ringhttpd::master::escape_text(path);
}

void print_errors(const std::string& path, const ringhttpd::master::ConfigResult& result) {
  const std::string where = display_name(path);
  for (const std::string& e : result.errors)
    std::fprintf(stderr, "%s: %s\n", where.c_str(), e.c_str());
}

// A module service whose shared object would not load: what `serve` would
// refuse at start (a missing file, not a module, another ABI version),
// found here. The module's init is not run: it may do anything.
void check_modules(const ringhttpd::master::ConfigResult& result,
                   std::vector<std::string>& errors) {
  const auto& services = result.config.services;
  for (size_t i = 0; i < services.size(); ++i) {
    if (services[i].type != "module") continue;
    std::string e = ringhttpd::worker::ModuleHandler::probe(services[i].module.path);
    // The path (and dlerror's text, which repeats it) comes from the file:
    // escaped like every other value `check` prints.
    if (!e.empty()) {
      errors.push_back("services[" + std::to_string(i) +
                       "].path: " + ringhttpd::master::escape_text(e));
    }
  }
}

// What the start would refuse for want of open files (serve raises the
// limit for network.max_connections; check only asks whether it could).
std::string fd_limit_problem(const ringhttpd::master::Config& config) {
  const uint64_t n_network = ringhttpd::master::network_process_count(config);
  uint64_t processes = n_network;
  for (const auto& s : config.services) processes += static_cast<uint64_t>(s.processes);
  uint64_t sockets = 0;  // a reuseport listener is one socket per network process
  for (const auto& l : config.listeners) sockets += l.reuseport ? n_network : 1;
  return ringhttpd::master::fd_limit_problem(config.network.max_connections, sockets, processes);
}

int check(const std::string& path, bool run_init) {
  auto result = load(path);
  if (result.ok()) {
    if (std::string e = ringhttpd::master::check_capacity(result.config); !e.empty()) {
      result.errors.push_back(e);
    }
    if (std::string e = fd_limit_problem(result.config); !e.empty()) result.errors.push_back(e);
    check_modules(result, result.errors);
  }
  // Only modules that load are started: their init is the module's code.
  if (result.ok() && run_init) {
    for (std::string& e : ringhttpd::master::run_module_inits(result.config)) {
      result.errors.push_back(std::move(e));
    }
  }
  if (!result.ok()) {
    print_errors(path, result);
    return 1;
  }
  std::printf("%s: ok\n", display_name(path).c_str());
  return 0;
}

int serve(const std::string& path) {
  auto result = load(path);
  if (!result.ok()) {
    print_errors(path, result);
    return 1;
  }
  ringhttpd::master::Supervisor supervisor(std::move(result.config), path);
  return supervisor.run();
}

// Inside, an empty path means the embedded default; but `-c ''` given
// explicitly is a mistake (an unset variable in a unit file or a script),
// and serving the default instead would hide it.
bool empty_path_given(const CLI::Option* option, const std::string& path) {
  if (option->count() == 0 || !path.empty()) return false;
  std::fprintf(stderr, "-c: empty path (leave out -c for the embedded default)\n");
  return true;
}

}  // namespace

int ringhttpd::master::run_cli(int argc, char** argv) {
  ringhttpd::worker::init_process_title(argc, argv);
  CLI::App app{"ringhttpd: a multi-process HTTP/1.1 server with shared-memory rings"};
  app.footer(kExamples);
  app.set_version_flag("--version", std::string("ringhttpd ") + RINGHTTPD_VERSION);
  app.require_subcommand(1);

  std::string serve_path;
  CLI::App* serve_cmd = app.add_subcommand("serve", "run the server in the foreground");
  CLI::Option* serve_config = serve_cmd->add_option("-c,--config", serve_path,
                                                    "config file (default: the embedded config)");

  std::string check_path;
  CLI::App* check_cmd = app.add_subcommand("check", "validate a config file and exit");
  CLI::Option* check_config = check_cmd->add_option("-c,--config", check_path,
                                                    "config file (default: the embedded config)");
  bool check_init = false;
  check_cmd->add_flag("--init", check_init,
                      "also run each module service's init with its config, as the configured "
                      "user, each in a child process (off by default: init is the module's code)");

  ringhttpd::master::CtlOptions ctl_options;
  CLI::App* ctl_cmd = ringhttpd::master::add_ctl_command(app, ctl_options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);  // --help: the text, exit 0
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // A usage error is one line and exit status 2 (1 is a failure of what
    // was asked: a bad config, a failed reload), whatever CLI11's own code.
    std::fprintf(stderr, "ringhttpd: %s (see ringhttpd --help)\n", e.what());
    return 2;
  }
  if (*serve_cmd) return empty_path_given(serve_config, serve_path) ? 1 : serve(serve_path);
  if (*check_cmd) {
    return empty_path_given(check_config, check_path) ? 1 : check(check_path, check_init);
  }
  if (*ctl_cmd) return ringhttpd::master::run_ctl(ctl_options);
  return 1;
}
