// How long the request parser takes per request, in one process, without
// sockets (scripts/bench-parser): batches of 16 pipelined requests fed to one
// RequestParser, for a wrk-like head (45 bytes) and a browser-like one (294
// bytes). Prints the best of several runs, the least disturbed by this noisy
// machine. Not a test: nothing is asserted but that every request parses.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "proto/http_parser.h"

namespace {

using ringhttpd::proto::RequestEvents;
using ringhttpd::proto::RequestParser;

constexpr int kBatch = 16;

double ns_per_request(const std::string& batch, int rounds) {
  RequestParser parser;
  RequestEvents events;
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < rounds; ++r) {
    events.clear();
    if (!parser.feed_events(batch, events) || events.completed != kBatch) {
      std::fprintf(stderr, "a request did not parse\n");
      std::exit(1);
    }
  }
  const auto took = std::chrono::steady_clock::now() - start;
  return std::chrono::duration<double, std::nano>(took).count() / (rounds * double{kBatch});
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 6;
  const std::string small = "GET /echo HTTP/1.1\r\nHost: 127.0.0.1:18182\r\n\r\n";
  const std::string browser =
      "GET /api/v1/items?id=12345&sort=desc HTTP/1.1\r\nHost: example.com\r\n"
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\n"
      "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
      "Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\n"
      "Connection: keep-alive\r\n\r\n";
  for (const std::string* head : {&small, &browser}) {
    std::string batch;
    for (int i = 0; i < kBatch; ++i) batch += *head;
    double best = 1e18;
    for (int run = 0; run < runs; ++run) best = std::min(best, ns_per_request(batch, 100000));
    std::printf("%3zu-byte head: %7.1f ns/request (best of %d runs of %d requests)\n", head->size(),
                best, runs, 100000 * kBatch);
  }
  return 0;
}
