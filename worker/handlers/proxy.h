// The "proxy" handler type: a reverse proxy inside a service process. Each
// process runs one event loop (the service process's epoll, through
// HandlerLoop) holding many requests at once: upstream sockets and rings in
// one set, so no request ever parks a process. Bodies stream both ways
// through the rings' windows (worker/handler.h: Exchange), never whole.
//
//   request:  Exchange head -> upstream pick (round_robin | least_conn,
//             passing over upstreams that failed within fail_timeout_ms)
//             -> an idle kept-alive connection or a new non-blocking
//             connect -> head (hop-by-hop headers dropped, X-Forwarded-*
//             added) -> body as the client sends it (chunked upstream when
//             its length is unknown)
//   response: llhttp (HTTP_RESPONSE) -> Exchange start/write/finish; the
//             upstream socket is read only while the client side takes it
//   errors:   refused or failed connect, reset, malformed (a status
//             outside 100..599, a 1xx with framing) or truncated response
//             -> 502; connect or response timeout -> 504; a reused
//             connection found closed before any response byte -> sent
//             once more on a new connection. A response already begun is
//             aborted instead (the client's connection closes). The
//             exchange cancelled (client gone, or the network process's
//             504 at timeout_ms) -> the job ends, its connection closed.
//   pipeline > 1 (opt-in): a GET or HEAD without a body may go on a busy
//             upstream connection behind others (struct Pipe in
//             proxy.cc), while that upstream answers fast (answer_pace.h);
//             answers are matched in order, and requests a connection
//             will not answer are sent again elsewhere
//             (docs/configuration.md, `pipeline`, `pipeline_fast_ms`).
#pragma once

#include <memory>

#include "worker/handler.h"

namespace ringhttpd::worker {

std::unique_ptr<Handler> make_proxy_handler(const ServiceSettings& settings,
                                            const ServiceIdentity& identity);

}  // namespace ringhttpd::worker
