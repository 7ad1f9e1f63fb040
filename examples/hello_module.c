/* An example ringhttpd module (docs/modules.md walks through it): the C ABI
 * of include/ringhttpd/module.h end to end, in one file with no dependencies.
 *
 *   GET  /hello          the greeting from the service's config
 *                        ({"greeting": "..."}), then a newline
 *   GET  /version        "hello_module <HELLO_MODULE_VERSION>": which build
 *                        of the code answers (the reload test builds it twice)
 *   POST /length         the request body is counted as it streams in and
 *                        answered with "<n> bytes"
 *   GET  /later?ms=N     answered "later after N ms" from the poll callback N
 *                        ms from now (at most 60000): the process serves
 *                        other requests meanwhile
 *   GET  /pending        "<n> waiting": the /later requests of this process
 *                        not answered yet (a client that leaves is removed)
 *   anything else        404
 *
 * Build: gcc -std=c99 -O2 -Wall -fPIC -shared -I include \
 *            -o hello_module.so examples/hello_module.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringhttpd/module.h"

#ifndef HELLO_MODULE_VERSION
#define HELLO_MODULE_VERSION "1"
#endif

/* A request answered later, from poll(). */
struct later {
  struct ringhttpd_request* req;
  int64_t due_ms;
  int64_t ms;
  struct later* next;
};

/* The module's state: one per service process. */
struct hello {
  const struct ringhttpd_api* api;
  struct ringhttpd_server* server;
  char greeting[256];
  struct later* waiting; /* unordered: a real module would keep a heap */
};

static const struct ringhttpd_header kText[] = {
    {{"Content-Type", 12}, {"text/plain; charset=utf-8", 25}}};

static int equals(struct ringhttpd_str s, const char* literal) {
  return s.len == strlen(literal) && memcmp(s.data, literal, s.len) == 0;
}

static void answer(struct hello* h, struct ringhttpd_request* req, int status, const char* text) {
  h->api->respond(req, status, kText, 1, text, strlen(text));
}

/* The value of "name=" in a query string, or `otherwise`. */
static long query_long(struct ringhttpd_str query, const char* name, long otherwise) {
  size_t n = strlen(name);
  size_t at = 0;
  while (at < query.len) {
    if (query.len - at > n && memcmp(query.data + at, name, n) == 0 && query.data[at + n] == '=') {
      long v = 0;
      for (size_t i = at + n + 1; i < query.len && query.data[i] >= '0' && query.data[i] <= '9';
           ++i) {
        if (v < 100000000) v = v * 10 + (query.data[i] - '0');
      }
      return v;
    }
    while (at < query.len && query.data[at] != '&') ++at;
    ++at;
  }
  return otherwise;
}

/* Reads config.greeting: a toy reader for {"greeting": "text"} (escapes
 * \" and \\ only). 0 when absent or read, -1 when not a string. */
static int read_greeting(const char* json, char* out, size_t size) {
  const char* key = strstr(json, "\"greeting\"");
  if (key == NULL) return 0;
  const char* p = key + 10;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ':') ++p;
  if (*p != '"') return -1;
  size_t n = 0;
  for (++p; *p != '\0' && *p != '"' && n + 1 < size; ++p) {
    if (*p == '\\' && p[1] != '\0') ++p;
    out[n++] = *p;
  }
  out[n] = '\0';
  return 0;
}

static int hello_init(struct ringhttpd_init_args* args) {
  struct hello* h = calloc(1, sizeof *h);
  if (h == NULL) {
    snprintf(args->error, args->error_size, "out of memory");
    return 1;
  }
  h->api = args->api;
  h->server = args->server;
  snprintf(h->greeting, sizeof h->greeting, "Hello from a ringhttpd module");
  if (read_greeting(args->config_json, h->greeting, sizeof h->greeting) != 0) {
    snprintf(args->error, args->error_size, "config.greeting must be a string");
    free(h);
    return 1;
  }
  args->state = h;
  return 0;
}

static void hello_destroy(void* state) {
  struct hello* h = state;
  while (h->waiting != NULL) {
    struct later* next = h->waiting->next;
    free(h->waiting);
    h->waiting = next;
  }
  free(h);
}

static void on_request(void* state, struct ringhttpd_request* req,
                       const struct ringhttpd_request_info* info) {
  struct hello* h = state;
  char text[320];
  if (equals(info->method, "GET") && equals(info->path, "/hello")) {
    snprintf(text, sizeof text, "%s\n", h->greeting);
    return answer(h, req, 200, text);
  }
  if (equals(info->method, "GET") && equals(info->path, "/version")) {
    return answer(h, req, 200, "hello_module " HELLO_MODULE_VERSION "\n");
  }
  if (equals(info->method, "GET") && equals(info->path, "/pending")) {
    unsigned n = 0;
    for (struct later* l = h->waiting; l != NULL; l = l->next) ++n;
    snprintf(text, sizeof text, "%u waiting\n", n);
    return answer(h, req, 200, text);
  }
  if (equals(info->method, "POST") && equals(info->path, "/length")) {
    uint64_t* count = calloc(1, sizeof *count); /* answered in on_body_end */
    if (count == NULL) return answer(h, req, 500, "out of memory\n");
    h->api->set_request_data(req, count);
    return;
  }
  if (equals(info->method, "GET") && equals(info->path, "/later")) {
    struct later* l = calloc(1, sizeof *l);
    if (l == NULL) return answer(h, req, 500, "out of memory\n");
    l->ms = query_long(info->query, "ms", 0);
    if (l->ms > 60000) l->ms = 60000;
    l->req = req;
    l->due_ms = h->api->now_ms(h->server) + l->ms;
    l->next = h->waiting;
    h->waiting = l;
    return;
  }
  answer(h, req, 404, "not found\n");
}

static size_t on_body(void* state, struct ringhttpd_request* req, const char* data, size_t len) {
  struct hello* h = state;
  uint64_t* count = h->api->request_data(req);
  (void)data;
  if (count != NULL) *count += len;
  return len; /* all consumed: the client may send more */
}

static void on_body_end(void* state, struct ringhttpd_request* req) {
  struct hello* h = state;
  uint64_t* count = h->api->request_data(req);
  char text[64];
  if (count == NULL) return; /* only POST /length sets it: the others answer elsewhere */
  snprintf(text, sizeof text, "%llu bytes\n", (unsigned long long)*count);
  free(count);
  answer(h, req, 200, text);
}

/* Unlinks `l` from the waiting list and frees it. */
static void forget(struct hello* h, struct later* l) {
  for (struct later** p = &h->waiting; *p != NULL; p = &(*p)->next) {
    if (*p == l) {
      *p = l->next;
      free(l);
      return;
    }
  }
}

static void on_cancel(void* state, struct ringhttpd_request* req) {
  struct hello* h = state;
  for (struct later* l = h->waiting; l != NULL; l = l->next) {
    if (l->req == req) return forget(h, l);
  }
  free(h->api->request_data(req)); /* a POST /length counter, or NULL */
}

static int64_t hello_poll(void* state, int64_t now_ms) {
  struct hello* h = state;
  int64_t next = -1;
  struct later** p = &h->waiting;
  while (*p != NULL) {
    struct later* l = *p;
    if (l->due_ms <= now_ms) {
      char text[64];
      snprintf(text, sizeof text, "later after %lld ms\n", (long long)l->ms);
      *p = l->next;
      answer(h, l->req, 200, text);
      free(l);
      continue;
    }
    if (next < 0 || l->due_ms < next) next = l->due_ms;
    p = &l->next;
  }
  return next;
}

static const struct ringhttpd_module kModule = {
    .abi_version = RINGHTTPD_MODULE_ABI_VERSION,
    .name = "hello",
    .init = hello_init,
    .destroy = hello_destroy,
    .on_request = on_request,
    .on_body = on_body,
    .on_body_end = on_body_end,
    .on_cancel = on_cancel,
    .poll = hello_poll,
};

RINGHTTPD_MODULE_EXPORT const struct ringhttpd_module* ringhttpd_module_v1(void) {
  return &kModule;
}
