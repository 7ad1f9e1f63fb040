// Fuzz target over the ring record decoders (proto/ring_codec.h): the input
// is a head record's payload as a peer process could write it, given to both
// decode_request_head and decode_response_head (and decode_credit, and as a
// taken-over connection's payload, decode_takeover; and as an upstream's
// chunked body, proto::ChunkedDecoder). Whatever decodes must be the
// one encoding of its values (re-encoding gives the same bytes back), decode
// again to the same values, and fit the payload (no more body than
// body_length); a chunked body must decode the same fed whole and fed byte
// by byte. Any difference traps. Built as a libFuzzer target with clang
// (scripts/fuzz codec), and as a corpus replay under ctest.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/chunked.h"
#include "proto/ring_codec.h"
#include "proto/takeover.h"

namespace {

using ringhttpd::proto::decode_request_head;
using ringhttpd::proto::decode_response_head;
using ringhttpd::proto::encode_request_head;
using ringhttpd::proto::encode_response_head;
using ringhttpd::proto::Header;
using ringhttpd::proto::HttpRequest;
using ringhttpd::proto::RequestOrigin;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

bool same_headers(const std::vector<Header>& a, const std::vector<Header>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].value != b[i].value) return false;
  }
  return true;
}

void request(std::string_view payload) {
  HttpRequest req;
  RequestOrigin origin;
  uint64_t body_length = 0;
  const size_t used = decode_request_head(payload, req, origin, body_length);
  if (used == 0) return;
  check(used <= payload.size() && payload.size() - used <= body_length);
  check(req.body.empty());

  std::string again;
  check(encode_request_head(req, origin, body_length, again));
  check(again == payload.substr(0, used));
  HttpRequest req2;
  RequestOrigin origin2;
  uint64_t body_length2 = 0;
  check(decode_request_head(again, req2, origin2, body_length2) == again.size());
  check(req2.method == req.method && req2.target == req.target &&
        req2.version_major == req.version_major && req2.version_minor == req.version_minor &&
        req2.keep_alive == req.keep_alive && same_headers(req2.headers, req.headers));
  check(origin2.network_pid == origin.network_pid && origin2.generation == origin.generation &&
        origin2.network_index == origin.network_index && origin2.client == origin.client &&
        body_length2 == body_length);
  check(origin.client.size() <= ringhttpd::proto::kMaxClientText);
}

// A credit record's payload: 8 bytes and not zero, or refused; what decodes
// encodes back to the same bytes.
void credit(std::string_view payload) {
  uint64_t bytes = 0;
  if (!ringhttpd::proto::decode_credit(payload, bytes)) return;
  check(payload.size() == 8 && bytes != 0);
  check(ringhttpd::proto::encode_credit(bytes) == payload);
}

void response(std::string_view payload) {
  int status = 0;
  std::vector<Header> headers;
  uint64_t body_length = 0;
  const size_t used = decode_response_head(payload, status, headers, body_length);
  // The network process's decoding (views into the payload) agrees with
  // the copying one on every input, and its views stay inside the payload.
  int view_status = 0;
  std::vector<ringhttpd::proto::HeaderView> views;
  uint64_t view_length = 0;
  check(decode_response_head(payload, view_status, views, view_length) == used);
  if (used == 0) return;
  check(view_status == status && view_length == body_length && views.size() == headers.size());
  for (size_t i = 0; i < views.size(); ++i) {
    check(views[i].name == headers[i].name && views[i].value == headers[i].value);
    check(views[i].value.data() >= payload.data() &&
          views[i].value.data() + views[i].value.size() <= payload.data() + used);
  }
  check(used <= payload.size() && payload.size() - used <= body_length);
  check(status >= 100 && status <= 599);

  std::string again;
  check(encode_response_head(status, headers, body_length, again));
  check(again == payload.substr(0, used));
  int status2 = 0;
  std::vector<Header> headers2;
  uint64_t body_length2 = 0;
  check(decode_response_head(again, status2, headers2, body_length2) == again.size());
  check(status2 == status && same_headers(headers2, headers) && body_length2 == body_length);
}

// A taken-over connection's payload (proto/takeover.h), as a network process
// could write it for the supervisor: what decodes has a head that decodes
// whole with no body, early bytes inside the payload, and encodes back to
// the same bytes.
void takeover(std::string_view payload) {
  HttpRequest req;
  RequestOrigin origin;
  std::string_view early;
  if (!ringhttpd::proto::decode_takeover(payload, req, origin, early)) return;
  check(payload.size() >= ringhttpd::proto::kTakeoverPrefix);
  check(early.data() >= payload.data() &&
        early.data() + early.size() == payload.data() + payload.size());
  const std::string_view head =
      payload.substr(ringhttpd::proto::kTakeoverPrefix,
                     payload.size() - ringhttpd::proto::kTakeoverPrefix - early.size());
  std::string again;
  check(encode_request_head(req, origin, 0, again));
  check(again == head);
  check(ringhttpd::proto::encode_takeover(head, early) == payload);
}

}  // namespace

// An upstream's chunked body: the verdict, the bytes used and the body are
// the same however the input is split (here: whole, and a byte at a time).
void chunked(std::string_view in) {
  struct Run {
    std::string body;
    size_t used = 0;
    bool done = false;
    bool failed = false;
  };
  const auto run = [&](size_t step) {
    ringhttpd::proto::ChunkedDecoder d(256);
    Run r;
    while (r.used < in.size() && !r.done && !r.failed) {
      const size_t n = std::min(step, in.size() - r.used);
      const auto got = d.feed(in.substr(r.used, n), [&](std::string_view p) { r.body.append(p); });
      check(got.used <= n);
      r.used += got.used;
      r.done = got.done;
      r.failed = got.error != nullptr;
      check(got.used == n || got.done || r.failed);  // a piece is taken whole otherwise
    }
    return r;
  };
  const Run whole = run(in.size() == 0 ? 1 : in.size());
  const Run bytes = run(1);
  check(whole.body == bytes.body && whole.used == bytes.used && whole.done == bytes.done &&
        whole.failed == bytes.failed);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  request(payload);
  response(payload);
  credit(payload);
  takeover(payload);
  chunked(payload);
  return 0;
}
