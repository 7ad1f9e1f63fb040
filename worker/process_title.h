// The process title `ps` shows ("ringhttpd: network g1 #0"), written over the
// argv area as nginx and PostgreSQL do. init_process_title() runs first thing
// in main(): it moves the environment out of the way so the title may use
// the environ strings' room as well as argv's.
#pragma once

#include <string_view>

namespace ringhttpd::worker {

void init_process_title(int argc, char** argv);
// Sets the title (truncated to the room available) and the short thread name
// (/proc/PID/comm, 15 bytes).
void set_process_title(std::string_view title);

}  // namespace ringhttpd::worker
