// Fuzz target over request parsing and framing (proto::RequestParser).
// Differential: the same bytes fed whole and fed in pieces of a size the
// input chooses must give the same requests and the same verdict; and every
// request must respect the limits. Any difference traps. Pieces are fed
// from buffers freed after each feed. Built as a libFuzzer
// target with clang (scripts/fuzz), and as a corpus replay under ctest.
//
// Input layout: byte 0 picks the limits, byte 1 the piece size, the rest is
// what a client sent.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "proto/http_parser.h"

namespace {

using ringhttpd::proto::HttpRequest;
using ringhttpd::proto::ParserLimits;
using ringhttpd::proto::RequestParser;

struct Outcome {
  std::vector<HttpRequest> requests;
  bool ok = true;
  int status = 0;
};

// Each piece is fed from a heap buffer of its own, freed right after (as the
// network process reuses its read buffer): a head that kept a view into an
// earlier piece reads freed memory (caught under ASan) or wrong bytes (a
// difference from the whole feed).
Outcome run(const ParserLimits& limits, std::string_view input, size_t piece) {
  RequestParser parser(limits);
  Outcome out;
  for (size_t at = 0; at < input.size() && out.ok; at += piece) {
    const std::string_view bytes = input.substr(at, piece);
    const auto buffer = std::make_unique<char[]>(bytes.size());
    std::memcpy(buffer.get(), bytes.data(), bytes.size());
    out.ok = parser.feed(std::string_view(buffer.get(), bytes.size()), out.requests);
  }
  out.status = parser.error_status();
  return out;
}

bool same(const HttpRequest& a, const HttpRequest& b) {
  if (a.method != b.method || a.target != b.target || a.body != b.body ||
      a.version_major != b.version_major || a.version_minor != b.version_minor ||
      a.keep_alive != b.keep_alive || a.expect_continue != b.expect_continue ||
      a.headers.size() != b.headers.size()) {
    return false;
  }
  for (size_t i = 0; i < a.headers.size(); ++i) {
    if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value) {
      return false;
    }
  }
  return true;
}

void check(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  ParserLimits limits;
  limits.max_header_bytes = 1024u + (data[0] & 0x0f) * 256u;
  limits.max_target_bytes = 64u + (data[0] >> 4) * 64u;
  limits.max_body_bytes = 4096;
  const size_t piece = 1 + data[1] % 23;
  const std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);

  const Outcome whole = run(limits, input, input.size() + 1);
  const Outcome split = run(limits, input, piece);
  check(whole.ok == split.ok && whole.status == split.status);
  check(whole.requests.size() == split.requests.size());
  for (size_t i = 0; i < whole.requests.size(); ++i) {
    const HttpRequest& r = whole.requests[i];
    check(same(r, split.requests[i]));
    check(!r.method.empty() && !r.target.empty());
    check(r.body.size() <= limits.max_body_bytes);
    check(r.target.size() <= limits.max_target_bytes);
    check(r.version_major == 1 && r.version_minor <= 1);
  }
  check(whole.ok == (whole.status == 0));
  return 0;
}
