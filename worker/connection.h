// One client connection inside a network process: its socket, its streaming
// parser, and the ordered queue of responses for the requests it sent
// (pipelining: a response is written only when all before it are written).
// A slot waiting for a service process is filled in when the service's
// records arrive; the network process keeps a map from request id to slot.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "proto/http_parser.h"
#include "proto/unique_fd.h"

namespace ringhttpd::worker {

struct ResponseSlot {
  std::string data;          // the bytes to send; complete once `ready`
  uint64_t request_id = 0;   // != 0 while a service process owes the answer
  uint32_t service = 0;      // valid while request_id != 0: which process
  int64_t deadline_ms = 0;   // valid while request_id != 0: then 504
  bool ready = false;
  bool keep_alive = true;    // the connection stays open after this response
  bool head_only = false;    // HEAD request: head without body bytes
};

struct Connection {
  Connection(uint64_t id_, proto::UniqueFd fd_, proto::ParserLimits limits)
      : id(id_), fd(std::move(fd_)), parser(limits) {}

  uint64_t id;
  proto::UniqueFd fd;
  proto::RequestParser parser;
  std::deque<ResponseSlot> slots;
  size_t sent = 0;              // bytes of slots.front().data already written
  int64_t last_active_ms = 0;   // last read or write progress
  int64_t request_start_ms = 0; // valid while parser.mid_request()
  bool no_more_requests = false;// error, Connection: close, peer EOF or stopping
  bool peer_closed = false;     // read returned 0 or failed
  bool read_paused = false;     // too many responses queued; resume when drained
  bool readable = false;        // edge-triggered: data may be waiting
  bool continue_sent = false;   // "100 Continue" sent for the current request
};

}  // namespace ringhttpd::worker
