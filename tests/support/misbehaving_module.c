/* A test-only ringhttpd module that misbehaves on purpose, to show that a
 * module's mistakes cost one request (500, a log line) or, for a crash, its
 * service process (502, replaced), never more (tests/integration/module_test).
 *
 *   /crash        raises SIGSEGV
 *   /status       answers with status 42
 *   /crlf         a header value with CR LF in it (response splitting)
 *   /nullheaders  headers NULL with a count of 2
 *   /overwrite    announces 3 body bytes and writes 5
 *   /stale        answers, then keeps using the ended handle
 *   /garbage      calls the api with a made-up handle, then answers
 *   /hang         never answers
 *   anything else "alive <pid>"
 *
 * Config {"fail_init": true} makes init fail; {"fail_init": "multiline"}
 * too, with a reason of two lines and a terminal escape sequence (which the
 * server must show escaped); {"crash_init": true} makes
 * it abort; {"hang_init_while": "/some/file"} makes init wait while that
 * file exists (an init that hangs, e.g. on a database without a timeout).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ringhttpd/module.h"

static const struct ringhttpd_api* api;
static uint32_t pid;

static int is(struct ringhttpd_str s, const char* literal) {
  return s.len == strlen(literal) && memcmp(s.data, literal, s.len) == 0;
}

/* Waits while the file named by the config's "hang_init_while" exists. */
static void hang_while_file_exists(const char* config) {
  static const char kKey[] = "\"hang_init_while\":\"";
  const char* at = strstr(config, kKey);
  if (at == NULL) return;
  at += sizeof kKey - 1;
  const char* end = strchr(at, '"');
  char path[256];
  if (end == NULL || (size_t)(end - at) >= sizeof path) return;
  memcpy(path, at, (size_t)(end - at));
  path[end - at] = '\0';
  while (access(path, F_OK) == 0) usleep(10000);
}

static int misbehaving_init(struct ringhttpd_init_args* args) {
  hang_while_file_exists(args->config_json);
  if (strstr(args->config_json, "\"crash_init\":true") != NULL) abort();
  if (strstr(args->config_json, "\"fail_init\":true") != NULL) {
    snprintf(args->error, args->error_size, "asked to fail by its config");
    return 7;
  }
  if (strstr(args->config_json, "\"fail_init\":\"multiline\"") != NULL) {
    snprintf(args->error, args->error_size, "asked to fail\nsecond line \x1b[31mred");
    return 7;
  }
  api = args->api;
  pid = args->identity.pid;
  return 0;
}

static void on_request(void* state, struct ringhttpd_request* req,
                       const struct ringhttpd_request_info* info) {
  (void)state;
  struct ringhttpd_header splitting = {{"X-Test", 6}, {"a\r\nX-Injected: 1", 16}};
  char text[64];
  if (is(info->path, "/crash")) raise(SIGSEGV);
  if (is(info->path, "/status")) {
    api->respond(req, 42, NULL, 0, "x", 1);
  } else if (is(info->path, "/crlf")) {
    api->respond(req, 200, &splitting, 1, "x", 1);
  } else if (is(info->path, "/nullheaders")) {
    api->respond_start(req, 200, NULL, 2, 0);
  } else if (is(info->path, "/overwrite")) {
    api->respond_start(req, 200, NULL, 0, 3);
    api->respond_write(req, "12345", 5);
  } else if (is(info->path, "/stale")) {
    api->respond(req, 200, NULL, 0, "ok\n", 3);
    api->respond_write(req, "more", 4);
    api->respond(req, 200, NULL, 0, "again\n", 6);
    api->respond_finish(req);
  } else if (is(info->path, "/garbage")) {
    api->respond((struct ringhttpd_request*)(uintptr_t)0x7fffffff1234ull, 200, NULL, 0, "x", 1);
    api->respond(NULL, 200, NULL, 0, "x", 1);
    api->respond(req, 200, NULL, 0, "survived\n", 9);
  } else if (!is(info->path, "/hang")) {
    snprintf(text, sizeof text, "alive %u\n", (unsigned)pid);
    api->respond(req, 200, NULL, 0, text, strlen(text));
  }
}

static const struct ringhttpd_module kModule = {
    .abi_version = RINGHTTPD_MODULE_ABI_VERSION,
    .name = "misbehaving",
    .init = misbehaving_init,
    .on_request = on_request,
};

RINGHTTPD_MODULE_EXPORT const struct ringhttpd_module* ringhttpd_module_v1(void) {
  return &kModule;
}
