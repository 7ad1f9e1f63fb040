// The "stream" handler type of the test build: the streamed side of the
// handler interface (worker/handler.h: Exchange), used by the streaming
// tests and by scripts/bench's large-transfer runs.
//
//   GET  /bytes?n=N[&chunked=1]  N bytes, byte k = k % 251, written a piece
//                                at a time as the window allows; with
//                                chunked=1 no length is announced
//   POST /sink[?rate=R]          reads the body as it arrives (at most R
//                                bytes per millisecond when given: a slow
//                                reader) and answers "<bytes> <sum>\n", the
//                                sum of all bytes modulo 2^64
//   GET  /hold                   never answered: let go only when the
//                                exchange is cancelled (a client that
//                                left, or the network process's 504)
//   anything else                404
#include <algorithm>
#include <charconv>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/test_handlers.h"
#include "worker/handler.h"

namespace ringhttpd::testing {
namespace {

using worker::Exchange;
using worker::Handler;

uint64_t query_number(std::string_view query, std::string_view key, uint64_t otherwise) {
  const std::string digits = query_value(query, key);
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  return ec == std::errc() && end == digits.data() + digits.size() && !digits.empty() ? v
                                                                                      : otherwise;
}

struct Job {
  std::shared_ptr<Exchange> x;
  // /bytes
  uint64_t left = 0;
  uint64_t offset = 0;
  bool hold = false;  // /hold
  // /sink
  bool sink = false;
  uint64_t rate = 0;  // bytes per ms; 0: as fast as it comes
  int64_t last_ms = 0;
  uint64_t got = 0;
  uint64_t sum = 0;
  bool done = false;
};

class StreamHandler : public Handler {
 public:
  bool streams() const override { return true; }
  void handle(worker::ServiceRequest, std::unique_ptr<worker::Responder> responder) override {
    responder->respond(proto::HttpResponse{500, {}, "stream handler takes streams only\n"});
  }

  void handle_stream(std::shared_ptr<Exchange> x) override {
    const proto::HttpRequest& req = x->request().http;
    auto job = std::make_shared<Job>();
    job->x = x;
    if (req.path() == "/bytes") {
      job->left = query_number(req.query(), "n", 0);
      const bool chunked = query_number(req.query(), "chunked", 0) != 0;
      x->start(200, {{"Content-Type", "application/octet-stream"}},
               chunked ? proto::kUnknownBodyLength : job->left);
    } else if (req.path() == "/hold") {
      job->hold = true;
    } else if (req.path() == "/sink") {
      job->sink = true;
      job->rate = query_number(req.query(), "rate", 0);
    } else {
      x->start(404, {}, 0);
      x->finish();
      return;
    }
    std::weak_ptr<Job> weak = job;
    x->set_listener([this, weak] {
      if (auto j = weak.lock()) step(*j, now_ms_);
    });
    jobs_.push_back(job);
    step(*job, now_ms_);
  }

  int64_t poll(int64_t now_ms) override {
    now_ms_ = now_ms;
    bool slow = false;
    for (auto& job : jobs_) {
      if (job->sink && job->rate != 0 && !job->done) {
        step(*job, now_ms);
        slow = true;
      }
    }
    std::erase_if(jobs_, [](const std::shared_ptr<Job>& j) { return j->done; });
    return slow ? now_ms + 1 : -1;
  }

 private:
  void step(Job& job, int64_t now_ms) {
    if (job.done) return;
    if (job.x->cancelled()) {
      job.done = true;
      return;
    }
    if (job.hold) return;
    if (job.sink) return sink(job, now_ms);
    static const std::string pattern = [] {
      std::string p(251 * 512, '\0');
      for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<char>(i % 251);
      return p;
    }();
    while (job.left > 0 && job.x->writable()) {
      const size_t at = static_cast<size_t>(job.offset % 251);
      const size_t n = static_cast<size_t>(std::min<uint64_t>(job.left, 65536));
      job.x->write(std::string_view(pattern).substr(at, n));
      job.left -= n;
      job.offset += n;
    }
    if (job.left == 0) {
      job.x->finish();
      job.done = true;
    }
  }

  void sink(Job& job, int64_t now_ms) {
    std::string_view body = job.x->body();
    if (job.rate != 0) {
      if (job.last_ms == 0) job.last_ms = now_ms;
      const uint64_t budget = static_cast<uint64_t>(now_ms - job.last_ms) * job.rate;
      if (budget == 0) return;
      job.last_ms = now_ms;
      body = body.substr(0, static_cast<size_t>(std::min<uint64_t>(body.size(), budget)));
    }
    for (unsigned char c : body) job.sum += c;
    job.got += body.size();
    job.x->consume(body.size());
    if (job.x->body_complete() && job.x->body().empty()) {
      const std::string answer = std::to_string(job.got) + " " + std::to_string(job.sum) + "\n";
      job.x->start(200, {{"Content-Type", "text/plain"}}, answer.size());
      job.x->write(answer);
      job.x->finish();
      job.done = true;
    }
  }

  std::vector<std::shared_ptr<Job>> jobs_;
  int64_t now_ms_ = 0;
};

}  // namespace

void add_stream_handler() {
  worker::add_handler_type("stream",
                           [](const worker::ServiceSettings&, const worker::ServiceIdentity&) {
                             return std::unique_ptr<Handler>(std::make_unique<StreamHandler>());
                           });
}

}  // namespace ringhttpd::testing
