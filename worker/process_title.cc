// argv overwriting for process titles (see process_title.h).
#include "worker/process_title.h"

#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

extern char** environ;

namespace ringhttpd::worker {
namespace {

char* g_area = nullptr;  // start of argv[0]
size_t g_room = 0;       // contiguous bytes from argv[0] through the environ strings

}  // namespace

void init_process_title(int argc, char** argv) {
  if (argc <= 0 || argv[0] == nullptr) return;
  char* end = argv[0] + std::strlen(argv[0]) + 1;
  for (int i = 1; i < argc; ++i) {
    if (argv[i] != end) break;
    end = argv[i] + std::strlen(argv[i]) + 1;
  }
  // Copy the environment to the heap so its strings' room can be reused.
  size_t n_env = 0;
  while (environ[n_env] != nullptr) ++n_env;
  char** moved = static_cast<char**>(std::calloc(n_env + 1, sizeof(char*)));
  if (moved == nullptr) return;
  // A second list of the same strings stays reachable when unsetenv()
  // (sd_listen_fds does it for LISTEN_FDS) drops one from environ: they
  // live as long as the process, and the leak checker must not see a leak.
  static char** copies = static_cast<char**>(std::calloc(n_env + 1, sizeof(char*)));
  for (size_t i = 0; i < n_env; ++i) {
    if (environ[i] == end) end = environ[i] + std::strlen(environ[i]) + 1;
    moved[i] = strdup(environ[i]);
    if (copies != nullptr) copies[i] = moved[i];
  }
  environ = moved;
  // Keep argv[0] valid for code that reads it (e.g. /proc/self/exe users);
  // the argv strings after it are overwritten by the title.
  g_area = argv[0];
  g_room = static_cast<size_t>(end - argv[0]);
}

void set_process_title(std::string_view title) {
  std::string comm(title.substr(0, 15));
  ::prctl(PR_SET_NAME, comm.c_str(), 0, 0, 0);
  if (g_area == nullptr || g_room < 2) return;
  const size_t n = std::min(title.size(), g_room - 1);
  std::memcpy(g_area, title.data(), n);
  std::memset(g_area + n, 0, g_room - n);
}

}  // namespace ringhttpd::worker
