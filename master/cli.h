// The command line: `serve`, `check`, `--version`, `--help`.
#pragma once

namespace ringhttpd::master {

// Parses the arguments and runs the chosen command; returns the exit status.
int run_cli(int argc, char** argv);

}  // namespace ringhttpd::master
