// `ringhttpd check --init`: runs each module service's init as a service
// process would run it (the configured user, the service's `config`), each
// in a child process of its own, and names the key of every failure. A plain
// `check` loads the shared objects but never runs their code: init is the
// module's and may open files or connect somewhere, which the operator asks
// for explicitly here.
#pragma once

#include <string>
#include <vector>

#include "master/config.h"

namespace ringhttpd::master {

// One line per failing module service: "services[i].config: ...". Each
// init may take the service's start_timeout_ms (what a service process
// gets to be ready) before it is killed and reported.
std::vector<std::string> run_module_inits(const Config& config);

}  // namespace ringhttpd::master
