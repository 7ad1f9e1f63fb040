/* A test-only module built for another ABI version (42): the server must
 * refuse it at start, naming its path and both versions. Its callbacks are
 * never called. */
#include "ringhttpd/module.h"

static int never_init(struct ringhttpd_init_args* args) {
  (void)args;
  return 1;
}

static void never_on_request(void* state, struct ringhttpd_request* req,
                             const struct ringhttpd_request_info* info) {
  (void)state;
  (void)req;
  (void)info;
}

static const struct ringhttpd_module kModule = {
    .abi_version = 42,
    .name = "wrong abi",
    .init = never_init,
    .on_request = never_on_request,
};

RINGHTTPD_MODULE_EXPORT const struct ringhttpd_module* ringhttpd_module_v1(void) {
  return &kModule;
}
