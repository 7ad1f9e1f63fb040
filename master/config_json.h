// The effective config as JSON: every key with the value the server runs
// with (defaults filled in, kill_after_ms resolved), for the admin socket's
// `config` command. Feeding the output back to parse_config() gives the same
// config (tested), so it can be saved and used as a config file.
#pragma once

#include <nlohmann/json.hpp>

#include "master/config.h"

namespace ringhttpd::master {

nlohmann::json config_to_json(const Config& config);

}  // namespace ringhttpd::master
