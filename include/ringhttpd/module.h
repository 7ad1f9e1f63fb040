/* ringhttpd user modules: the C ABI between the server and a handler built as
 * a shared object (service type "module", docs/modules.md). This header is
 * the whole contract: pure C (C99), usable from C and C++, no server headers
 * needed. It owns the version number; the server refuses a module built
 * against another version rather than guess at a struct layout.
 *
 * A module exports one symbol:
 *
 *     const struct ringhttpd_module* ringhttpd_module_v1(void);
 *
 * returning a static table whose first member is RINGHTTPD_MODULE_ABI_VERSION.
 * The server calls the module's callbacks; the module calls the server through
 * the function table (struct ringhttpd_api) it receives in init().
 *
 * Threading: everything happens on the service process's one thread. Every
 * callback is called from the service loop, and every api function must be
 * called from that thread too (from inside a callback, or later from another
 * callback: poll(), an fd watch, the next request). A module never blocks:
 * it keeps the request handle, returns, and answers later.
 *
 * Request handles: a `ringhttpd_request*` is an opaque token, not a pointer to
 * memory the module may read. It is valid from on_request() until the first
 * of: the module's respond_finish() or respond_abort(); an api call on it
 * that returns RINGHTTPD_ERR_ARG or RINGHTTPD_ERR_STATE (the server failed the
 * request for the module: 500, or the response cut off); the return of
 * on_cancel(). Later calls with it are ignored and return
 * RINGHTTPD_ERR_HANDLE; tokens are never reused, so a stale one can never
 * reach another request. Strings the server passes (request info, body
 * pieces, config) are borrowed: see each field for how long they live.
 *
 * Failure: a module that crashes takes its service process with it; the
 * request gets 502 and the process is replaced. A request not answered in
 * the service's timeout_ms gets 504; one held past kill_after_ms gets its
 * process replaced. Bad arguments from a module (a null pointer, a status
 * outside 200..599, a header with CR or LF) fail that one request with a log
 * line, never the process.
 */
#ifndef RINGHTTPD_MODULE_H
#define RINGHTTPD_MODULE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change to the structs or functions below. */
#define RINGHTTPD_MODULE_ABI_VERSION 1u
/* The symbol the server looks up, and its type. */
#define RINGHTTPD_MODULE_SYMBOL "ringhttpd_module_v1"

/* A body or response length not known in advance (a chunked request; a
 * response streamed without announcing its length). */
#define RINGHTTPD_UNKNOWN_LENGTH UINT64_MAX

/* Results of api calls. */
#define RINGHTTPD_OK 0
/* respond_write: the bytes were taken, but the client's side already holds a
 * window's worth: write more only after on_writable(). */
#define RINGHTTPD_AGAIN 1
/* The handle is unknown or ended (finished, aborted, cancelled, failed):
 * nothing was done. */
#define RINGHTTPD_ERR_HANDLE (-1)
/* A bad argument: the server failed the request (500, or the response cut
 * off if its head was sent) and logged why; the handle has ended. */
#define RINGHTTPD_ERR_ARG (-2)
/* A call out of order (write before start, start twice, finish short of the
 * announced length): failed and ended like RINGHTTPD_ERR_ARG. */
#define RINGHTTPD_ERR_STATE (-3)

/* Log levels for api->log. */
#define RINGHTTPD_LOG_DEBUG 0
#define RINGHTTPD_LOG_INFO 1
#define RINGHTTPD_LOG_WARN 2
#define RINGHTTPD_LOG_ERROR 3

/* Events for api->watch and the watch callback. */
#define RINGHTTPD_FD_READABLE 1u
#define RINGHTTPD_FD_WRITABLE 2u
#define RINGHTTPD_FD_ERROR 4u /* delivered only: error or hang-up on the fd */

/* Opaque: the server (one per service process) and one request. */
struct ringhttpd_server;
struct ringhttpd_request;

/* Bytes and a length; not NUL-terminated unless a field says so. */
struct ringhttpd_str {
  const char* data;
  size_t len;
};

struct ringhttpd_header {
  struct ringhttpd_str name;
  struct ringhttpd_str value;
};

/* One request's head, given to on_request(). The struct and every byte it
 * points to stay valid and unchanged while the request's handle is valid. */
struct ringhttpd_request_info {
  struct ringhttpd_str method;            /* "GET" */
  struct ringhttpd_str target;            /* as sent: "/a/b?x=1" */
  struct ringhttpd_str path;              /* "/a/b" */
  struct ringhttpd_str query;             /* "x=1" (no '?'); empty if none */
  const struct ringhttpd_header* headers; /* in request order, names as sent */
  size_t header_count;
  uint64_t body_length; /* announced, or RINGHTTPD_UNKNOWN_LENGTH (chunked) */
  int version_major;    /* 1 */
  int version_minor;    /* 0 or 1 */
};

/* Who is serving, for a module that reports it. Valid during init() only. */
struct ringhttpd_identity {
  struct ringhttpd_str service; /* the service's name */
  uint32_t pid;
  uint32_t generation;
  uint32_t index; /* within the service's pool of processes */
};

/* A watched descriptor became ready: `events` is a mask of
 * RINGHTTPD_FD_READABLE / _WRITABLE / _ERROR. */
typedef void (*ringhttpd_fd_callback)(void* state, int fd, uint32_t events, void* arg);

/* The server's functions, passed to init(); the table stays valid until
 * destroy() returns. Every function takes what it is about first. */
struct ringhttpd_api {
  uint32_t abi_version; /* RINGHTTPD_MODULE_ABI_VERSION */
  uint32_t size;        /* sizeof(struct ringhttpd_api) of the server */

  /* ---- the response ----
   * respond_start: a final status (200..599), `header_count` headers (the
   * array and its bytes are copied before it returns; names must be tokens,
   * values free of CR, LF and NUL; Content-Length, Transfer-Encoding,
   * Connection, Date and Server are the server's and are dropped), and the
   * body's length or RINGHTTPD_UNKNOWN_LENGTH (then sent chunked, or
   * close-delimited to HTTP/1.0). `headers` may be NULL when the count is 0.
   * Returns RINGHTTPD_OK or an error. */
  int (*respond_start)(struct ringhttpd_request* req, int status,
                       const struct ringhttpd_header* headers, size_t header_count,
                       uint64_t length);
  /* Appends body bytes (copied before it returns; `data` may be NULL when
   * len is 0). RINGHTTPD_OK: write more now if you like. RINGHTTPD_AGAIN:
   * taken, but wait for on_writable() before writing more (writing anyway is
   * allowed but buffers in the service process). Writing past an announced
   * length is RINGHTTPD_ERR_ARG. */
  int (*respond_write)(struct ringhttpd_request* req, const void* data, size_t len);
  /* The response is complete (an announced length must have been met). The
   * handle ends. */
  int (*respond_finish)(struct ringhttpd_request* req);
  /* Gives up: 500 if nothing was started, otherwise the client's connection
   * is closed before the response completes. The handle ends. */
  int (*respond_abort)(struct ringhttpd_request* req);
  /* start + write + finish of a whole response in one call. */
  int (*respond)(struct ringhttpd_request* req, int status, const struct ringhttpd_header* headers,
                 size_t header_count, const void* body, size_t body_len);

  /* ---- the request body ----
   * Asks for on_body() again with the bytes the module left unconsumed
   * (on_body returned less than it was given), from the loop, soon after
   * this returns. */
  int (*body_resume)(struct ringhttpd_request* req);

  /* ---- per-request data ----
   * One pointer the module may hang on a request; NULL until set. The server
   * never touches what it points to: free it when the handle ends. */
  int (*set_request_data)(struct ringhttpd_request* req, void* data);
  void* (*request_data)(struct ringhttpd_request* req);

  /* ---- the service loop ----
   * Watches `fd` (the module's own: a socket, a timerfd, a pipe) for
   * RINGHTTPD_FD_READABLE and/or _WRITABLE, level-triggered; `ready` is
   * called from the loop with the module's state and `arg`. Returns
   * RINGHTTPD_OK, or RINGHTTPD_ERR_ARG (with errno) if it cannot. */
  int (*watch)(struct ringhttpd_server* server, int fd, uint32_t events,
               ringhttpd_fd_callback ready, void* arg);
  int (*modify)(struct ringhttpd_server* server, int fd, uint32_t events);
  /* Stops watching; call before closing the fd. */
  int (*unwatch)(struct ringhttpd_server* server, int fd);
  /* The clock poll() deadlines are on: CLOCK_MONOTONIC, in milliseconds. */
  int64_t (*now_ms)(struct ringhttpd_server* server);

  /* One line into the server's log (the module's path is prepended). */
  void (*log)(struct ringhttpd_server* server, int level, const char* message, size_t len);
};

/* What init() gets, and where it puts its results. */
struct ringhttpd_init_args {
  const struct ringhttpd_api* api;
  struct ringhttpd_server* server; /* pass to watch/unwatch/now_ms/log */
  /* services[i].config as JSON text ("{}" when absent), NUL-terminated;
   * valid during init() only: copy what you keep. */
  const char* config_json;
  size_t config_len;
  struct ringhttpd_identity identity;
  /* Out: the module's state, passed to every callback (NULL is fine). */
  void* state;
  /* Out, on failure: a NUL-terminated reason, at most error_size bytes. */
  char* error;
  size_t error_size;
};

/* The module's table. Callbacks other than init and on_request may be NULL.
 * `state` is what init() stored in args->state. */
struct ringhttpd_module {
  /* First, always: RINGHTTPD_MODULE_ABI_VERSION as the module was built. */
  uint32_t abi_version;
  uint32_t reserved; /* 0 */
  const char* name;  /* for log lines; may be NULL */

  /* Once per service process, before any request. Returns 0, or nonzero
   * with args->error filled in: the service process does not start (at
   * startup the server exits; on reload the old generation keeps serving). */
  int (*init)(struct ringhttpd_init_args* args);
  /* Once, when the service process ends: free the state. Handles still open
   * end here without on_cancel(). */
  void (*destroy)(void* state);

  /* A request's head arrived. Answer now or later through the api; `info`
   * lives as long as the handle. */
  void (*on_request)(void* state, struct ringhttpd_request* req,
                     const struct ringhttpd_request_info* info);
  /* Body bytes, in order, as they arrive. Returns how many it consumed
   * (0..len); what it left is offered again with the next bytes, or after
   * api->body_resume(). The client sends more only as bytes are consumed
   * (a window of 256 KiB). NULL: the body is read and dropped. `data` lives
   * until on_body returns. */
  size_t (*on_body)(void* state, struct ringhttpd_request* req, const char* data, size_t len);
  /* The whole body has arrived and been consumed (also for a request with
   * no body, right after on_request). */
  void (*on_body_end)(void* state, struct ringhttpd_request* req);
  /* After RINGHTTPD_AGAIN: the client's side has room again. */
  void (*on_writable)(void* state, struct ringhttpd_request* req);
  /* The client left, the request timed out, or its connection's process
   * went away: nothing more reaches the client. While this runs, respond
   * calls on the handle are ignored (RINGHTTPD_ERR_HANDLE) but request_data
   * still works, to free the module's data; the handle ends when this
   * returns. Not called for a handle that already ended. */
  void (*on_cancel)(void* state, struct ringhttpd_request* req);
  /* Called every loop iteration (at least once a second). Returns the next
   * time (api->now_ms clock) it wants to be called, or -1 for no wish. */
  int64_t (*poll)(void* state, int64_t now_ms);
};

/* The one symbol a module exports, and how to mark it exported even when
 * the module is built with -fvisibility=hidden:
 *
 *   RINGHTTPD_MODULE_EXPORT const struct ringhttpd_module* ringhttpd_module_v1(void);
 */
typedef const struct ringhttpd_module* (*ringhttpd_module_entry)(void);
#if defined(__GNUC__)
#define RINGHTTPD_MODULE_EXPORT __attribute__((visibility("default")))
#else
#define RINGHTTPD_MODULE_EXPORT
#endif

#ifdef __cplusplus
}
#endif

#endif /* RINGHTTPD_MODULE_H */
