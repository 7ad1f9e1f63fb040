// The module handler's adapter (worker/handlers/module.h) without processes:
// a fake Exchange and HandlerLoop, a module table written here in C++ and the
// test modules built as shared objects (tests/CMakeLists.txt). Covers loading
// and its refusals, request info, every misuse a module can commit (each a
// 500 or a cut-off response, never a crash), cancel and stale handles, body
// flow control, writability, poll and descriptors.
#include "worker/handlers/module.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>

#include <map>
#include <string>
#include <vector>

namespace ringhttpd::worker {
namespace {

class FakeExchange : public Exchange {
 public:
  explicit FakeExchange(std::string target, std::string method = "GET", uint64_t body_length = 0) {
    request_.http.method = std::move(method);
    request_.http.target = std::move(target);
    request_.http.headers = {{"Host", "t"}, {"X-A", "1"}};
    body_length_ = body_length;
    complete_ = body_length == 0;
  }
  const ServiceRequest& request() const override { return request_; }
  uint64_t body_length() const override { return body_length_; }
  std::string_view body() const override { return in_; }
  void consume(size_t n) override {
    consumed += n;
    in_.erase(0, n);
  }
  bool body_complete() const override { return complete_; }
  void start(int s, std::vector<proto::Header> h, uint64_t length) override {
    if (status != 0) return;
    status = s;
    headers = std::move(h);
    announced = length;
  }
  bool write(std::string_view piece) override {
    out.append(piece);
    return room;
  }
  bool writable() const override { return room && status != 0 && !finished && !aborted; }
  void finish() override { finished = true; }
  void abort() override {
    if (status == 0) status = 500;
    aborted = true;
  }
  bool cancelled() const override { return cancelled_; }
  bool responding() const override { return status != 0 && !finished && !aborted && !cancelled_; }
  void set_listener(std::function<void()> l) override { listener = std::move(l); }

  // The test's side.
  void arrive(std::string bytes, bool end) {
    in_ += bytes;
    complete_ = end;
    notify();
  }
  void cancel() {
    cancelled_ = true;
    notify();
  }
  void notify() {
    if (listener) listener();
  }

  int status = 0;
  std::vector<proto::Header> headers;
  uint64_t announced = 0;
  std::string out;
  bool finished = false;
  bool aborted = false;
  bool room = true;
  size_t consumed = 0;
  std::function<void()> listener;

 private:
  ServiceRequest request_;
  uint64_t body_length_ = 0;
  std::string in_;
  bool complete_ = true;
  bool cancelled_ = false;
};

class FakeLoop : public HandlerLoop {
 public:
  bool watch(int fd, uint32_t events, std::function<void(uint32_t)> ready) override {
    watches[fd] = {events, std::move(ready)};
    return true;
  }
  bool modify(int fd, uint32_t events) override {
    if (!watches.count(fd)) return false;
    watches[fd].first = events;
    return true;
  }
  void unwatch(int fd) override { watches.erase(fd); }
  std::map<int, std::pair<uint32_t, std::function<void(uint32_t)>>> watches;
};

// ---- a module written here: it records what it is told ----

struct Seen {
  const ringhttpd_api* api = nullptr;
  ringhttpd_server* server = nullptr;
  std::string config;
  std::vector<ringhttpd_request*> requests;
  std::string method, target, path, query, first_header;
  size_t header_count = 0;
  std::string body;
  size_t take = SIZE_MAX;  // on_body consumes at most this much per call
  size_t bodies = 0;       // on_body calls
  int body_ends = 0;
  int writables = 0;
  std::vector<ringhttpd_request*> cancelled;
  int respond_in_cancel = 0;  // what respond returned inside on_cancel
  void* data_in_cancel = nullptr;
  int64_t deadline = -1;
  int64_t polled_at = 0;
  std::vector<std::pair<int, uint32_t>> fd_events;
  bool destroyed = false;
};
Seen* seen = nullptr;

std::string text(ringhttpd_str s) { return std::string(s.data, s.len); }

int t_init(ringhttpd_init_args* a) {
  seen->api = a->api;
  seen->server = a->server;
  seen->config.assign(a->config_json, a->config_len);
  if (seen->config.find("watch") != std::string::npos) {
    a->api->watch(
        a->server, 7, RINGHTTPD_FD_READABLE,
        [](void*, int fd, uint32_t e, void*) {
          seen->fd_events.push_back({fd, e});
        },
        nullptr);
  }
  a->state = seen;
  return 0;
}
void t_destroy(void*) { seen->destroyed = true; }
void t_request(void*, ringhttpd_request* req, const ringhttpd_request_info* info) {
  seen->requests.push_back(req);
  seen->method = text(info->method);
  seen->target = text(info->target);
  seen->path = text(info->path);
  seen->query = text(info->query);
  seen->header_count = info->header_count;
  if (info->header_count > 0) {
    seen->first_header = text(info->headers[0].name) + ": " + text(info->headers[0].value);
  }
  if (seen->path == "/now") seen->api->respond(req, 200, nullptr, 0, "hi", 2);
}
size_t t_body(void*, ringhttpd_request*, const char* data, size_t len) {
  ++seen->bodies;
  const size_t n = std::min(len, seen->take);
  seen->body.append(data, n);
  return n;
}
void t_body_end(void*, ringhttpd_request*) { ++seen->body_ends; }
void t_writable(void*, ringhttpd_request*) { ++seen->writables; }
void t_cancel(void*, ringhttpd_request* req) {
  seen->cancelled.push_back(req);
  seen->respond_in_cancel = seen->api->respond(req, 200, nullptr, 0, "x", 1);
  seen->data_in_cancel = seen->api->request_data(req);
}
int64_t t_poll(void*, int64_t now) {
  seen->polled_at = now;
  return seen->deadline;
}

const ringhttpd_module kTable = {RINGHTTPD_MODULE_ABI_VERSION,
                                 0,
                                 "test",
                                 t_init,
                                 t_destroy,
                                 t_request,
                                 t_body,
                                 t_body_end,
                                 t_writable,
                                 t_cancel,
                                 t_poll};

class ModuleAdapter : public ::testing::Test {
 protected:
  void SetUp() override {
    seen = &s;
    std::string error;
    handler = ModuleHandler::create(&kTable, "module test", config, ServiceIdentity{"m", 1, 1, 0},
                                    nullptr, error);
    ASSERT_TRUE(handler) << error;
    handler->attach(loop);
  }
  void TearDown() override {
    handler.reset();
    seen = nullptr;
  }
  std::shared_ptr<FakeExchange> request(std::string target, std::string method = "GET",
                                        uint64_t body_length = 0) {
    auto x = std::make_shared<FakeExchange>(std::move(target), std::move(method), body_length);
    handler->handle_stream(x);
    handler->poll(0);  // the module hears of it on the loop's next turn
    return x;
  }
  ringhttpd_request* last() const { return s.requests.back(); }
  const ringhttpd_api& api() const { return *s.api; }

  std::string config = "{\"k\":1}";
  Seen s;
  FakeLoop loop;
  std::unique_ptr<ModuleHandler> handler;
};

// ---- loading ----

TEST(ModuleLoad, AMissingFileIsRefusedNamingThePath) {
  std::string error;
  ModuleSettings settings{"/nonexistent/dir/x.so", "{}"};
  EXPECT_FALSE(ModuleHandler::load(settings, ServiceIdentity{}, error));
  EXPECT_NE(error.find("module /nonexistent/dir/x.so: cannot load: "), std::string::npos) << error;
}

TEST(ModuleLoad, AnotherAbiVersionIsRefusedNamingBothVersions) {
  std::string error;
  ModuleSettings settings{RINGHTTPD_WRONG_ABI_MODULE, "{}"};
  EXPECT_FALSE(ModuleHandler::load(settings, ServiceIdentity{}, error));
  EXPECT_EQ(error, std::string("module ") + RINGHTTPD_WRONG_ABI_MODULE +
                       ": built for module ABI version 42, this server speaks version 1; "
                       "rebuild it against this server's ringhttpd/module.h");
}

TEST(ModuleLoad, ALibraryWithoutTheEntrySymbolIsRefused) {
  std::string error;
  ModuleSettings settings{RINGHTTPD_NO_ENTRY_MODULE, "{}"};
  EXPECT_FALSE(ModuleHandler::load(settings, ServiceIdentity{}, error));
  EXPECT_NE(error.find(": no symbol ringhttpd_module_v1"), std::string::npos) << error;
}

TEST(ModuleLoad, AFailedInitIsRefusedWithTheModulesReason) {
  std::string error;
  ModuleSettings settings{RINGHTTPD_MISBEHAVING_MODULE, R"({"fail_init":true})"};
  EXPECT_FALSE(ModuleHandler::load(settings, ServiceIdentity{}, error));
  EXPECT_NE(error.find(": init failed (returned 7): asked to fail by its config"),
            std::string::npos)
      << error;
}

TEST(ModuleLoad, TheExampleAnswersWithTheGreetingFromItsConfig) {
  std::string error;
  ModuleSettings settings{RINGHTTPD_HELLO_MODULE, R"({"greeting":"Hi \"there\""})"};
  auto handler = ModuleHandler::load(settings, ServiceIdentity{}, error);
  ASSERT_TRUE(handler) << error;
  ASSERT_TRUE(handler->streams());
  auto x = std::make_shared<FakeExchange>("/hello");
  handler->handle_stream(x);
  EXPECT_EQ(x->status, 0);  // told from poll(), after the ring released the record
  handler->poll(0);
  EXPECT_EQ(x->status, 200);
  EXPECT_EQ(x->out, "Hi \"there\"\n");
  EXPECT_TRUE(x->finished);
}

TEST(ModuleLoad, TheExamplesInitRefusesAGreetingThatIsNotAString) {
  std::string error;
  ModuleSettings settings{RINGHTTPD_HELLO_MODULE, R"({"greeting":5})"};
  EXPECT_FALSE(ModuleHandler::load(settings, ServiceIdentity{}, error));
  EXPECT_NE(error.find("init failed (returned 1): config.greeting must be a string"),
            std::string::npos)
      << error;
}

// ---- requests ----

TEST_F(ModuleAdapter, InitGetsTheConfigAndDestroyRunsAtTheEnd) {
  EXPECT_EQ(s.config, "{\"k\":1}");
  handler.reset();
  EXPECT_TRUE(s.destroyed);
}

TEST_F(ModuleAdapter, TheRequestInfoCarriesTheHead) {
  request("/a/b?x=1&y=2", "PUT", 3);
  EXPECT_EQ(s.method, "PUT");
  EXPECT_EQ(s.target, "/a/b?x=1&y=2");
  EXPECT_EQ(s.path, "/a/b");
  EXPECT_EQ(s.query, "x=1&y=2");
  EXPECT_EQ(s.header_count, 2u);
  EXPECT_EQ(s.first_header, "Host: t");
}

TEST_F(ModuleAdapter, AnAnswerInsideOnRequestEndsTheHandle) {
  auto x = request("/now");
  EXPECT_EQ(x->status, 200);
  EXPECT_EQ(x->out, "hi");
  EXPECT_TRUE(x->finished);
  EXPECT_EQ(handler->open_requests(), 0u);
  EXPECT_EQ(api().respond_write(last(), "x", 1), RINGHTTPD_ERR_HANDLE);
  EXPECT_EQ(x->out, "hi");
}

TEST_F(ModuleAdapter, AnAnswerLaterFromPollWorks) {
  auto x = request("/later");
  EXPECT_EQ(x->status, 0);
  s.deadline = 1234;
  EXPECT_EQ(handler->poll(1000), 1234);
  const ringhttpd_header h[] = {{{"Content-Type", 12}, {"text/plain", 10}}};
  EXPECT_EQ(api().respond_start(last(), 201, h, 1, RINGHTTPD_UNKNOWN_LENGTH), RINGHTTPD_OK);
  EXPECT_EQ(api().respond_write(last(), "ab", 2), RINGHTTPD_OK);
  EXPECT_EQ(api().respond_write(last(), "cd", 2), RINGHTTPD_OK);
  EXPECT_EQ(api().respond_finish(last()), RINGHTTPD_OK);
  EXPECT_EQ(x->status, 201);
  EXPECT_EQ(x->announced, proto::kUnknownBodyLength);
  ASSERT_EQ(x->headers.size(), 1u);
  EXPECT_EQ(x->headers[0].value, "text/plain");
  EXPECT_EQ(x->out, "abcd");
  EXPECT_TRUE(x->finished);
}

// ---- misuse: 500 (or a cut-off response) and the handle ends ----

TEST_F(ModuleAdapter, AStatusOutside200To599Answers500) {
  for (int status : {0, 42, 199, 600, -1}) {
    auto x = request("/held");
    EXPECT_EQ(api().respond(last(), status, nullptr, 0, "x", 1), RINGHTTPD_ERR_ARG) << status;
    EXPECT_EQ(x->status, 500) << status;
    EXPECT_TRUE(x->finished);
    EXPECT_EQ(api().respond(last(), 200, nullptr, 0, "x", 1), RINGHTTPD_ERR_HANDLE);
  }
  EXPECT_EQ(handler->open_requests(), 0u);
}

TEST_F(ModuleAdapter, AHeaderThatCouldSplitTheResponseAnswers500) {
  const std::pair<std::string, std::string> bad[] = {{"X-A", "a\r\nX-Injected: 1"},
                                                     {"X-A", "a\nb"},
                                                     {"Bad Name", "v"},
                                                     {"", "v"},
                                                     {"X-A", std::string("a\0b", 3)}};
  for (const auto& [name, value] : bad) {
    auto x = request("/held");
    const ringhttpd_header h[] = {{{name.data(), name.size()}, {value.data(), value.size()}}};
    EXPECT_EQ(api().respond_start(last(), 200, h, 1, 0), RINGHTTPD_ERR_ARG) << name;
    EXPECT_EQ(x->status, 500) << name;
    EXPECT_TRUE(x->headers.empty() || x->headers[0].name == "Content-Type");
  }
}

TEST_F(ModuleAdapter, NullPointersWithLengthsAnswer500) {
  auto x = request("/held");
  EXPECT_EQ(api().respond_start(last(), 200, nullptr, 3, 0), RINGHTTPD_ERR_ARG);
  EXPECT_EQ(x->status, 500);
  x = request("/held");
  const ringhttpd_header h[] = {{{nullptr, 4}, {"v", 1}}};
  EXPECT_EQ(api().respond_start(last(), 200, h, 1, 0), RINGHTTPD_ERR_ARG);
  EXPECT_EQ(x->status, 500);
  x = request("/held");
  EXPECT_EQ(api().respond(last(), 200, nullptr, 0, nullptr, 5), RINGHTTPD_ERR_ARG);
  EXPECT_EQ(x->status, 500);
  x = request("/held");
  ASSERT_EQ(api().respond_start(last(), 200, nullptr, 0, RINGHTTPD_UNKNOWN_LENGTH), RINGHTTPD_OK);
  EXPECT_EQ(api().respond_write(last(), nullptr, 5), RINGHTTPD_ERR_ARG);
  EXPECT_TRUE(x->aborted);  // started: cut off
  x = request("/held");
  EXPECT_EQ(api().respond_write(last(), nullptr, 0), RINGHTTPD_ERR_STATE);  // before start
  EXPECT_EQ(x->status, 500);
}

TEST_F(ModuleAdapter, CallsOutOfOrderOrPastTheLengthFailTheRequest) {
  auto x = request("/held");
  EXPECT_EQ(api().respond_finish(last()), RINGHTTPD_ERR_STATE);
  EXPECT_EQ(x->status, 500);
  x = request("/held");
  ASSERT_EQ(api().respond_start(last(), 200, nullptr, 0, 3), RINGHTTPD_OK);
  EXPECT_EQ(api().respond_start(last(), 200, nullptr, 0, 3), RINGHTTPD_ERR_STATE);
  EXPECT_TRUE(x->aborted);
  x = request("/held");
  ASSERT_EQ(api().respond_start(last(), 200, nullptr, 0, 3), RINGHTTPD_OK);
  EXPECT_EQ(api().respond_write(last(), "12345", 5), RINGHTTPD_ERR_ARG);
  EXPECT_TRUE(x->aborted);
  EXPECT_EQ(x->out, "");
  x = request("/held");
  ASSERT_EQ(api().respond_start(last(), 200, nullptr, 0, 3), RINGHTTPD_OK);
  ASSERT_EQ(api().respond_write(last(), "12", 2), RINGHTTPD_OK);
  EXPECT_EQ(api().respond_finish(last()), RINGHTTPD_ERR_STATE);
  EXPECT_TRUE(x->aborted);
  EXPECT_FALSE(x->finished);
}

TEST_F(ModuleAdapter, AbortEndsTheHandle) {
  auto x = request("/held");
  ASSERT_EQ(api().respond_start(last(), 200, nullptr, 0, 5), RINGHTTPD_OK);
  EXPECT_EQ(api().respond_abort(last()), RINGHTTPD_OK);
  EXPECT_TRUE(x->aborted);
  EXPECT_EQ(api().respond_abort(last()), RINGHTTPD_ERR_HANDLE);
}

TEST_F(ModuleAdapter, MadeUpHandlesAndServersAreIgnored) {
  EXPECT_EQ(api().respond(nullptr, 200, nullptr, 0, "x", 1), RINGHTTPD_ERR_HANDLE);
  auto* fake = reinterpret_cast<ringhttpd_request*>(uintptr_t{0x7fffffff1234});
  EXPECT_EQ(api().respond_finish(fake), RINGHTTPD_ERR_HANDLE);
  EXPECT_EQ(api().set_request_data(fake, &s), RINGHTTPD_ERR_HANDLE);
  EXPECT_EQ(api().request_data(fake), nullptr);
  auto* server = reinterpret_cast<ringhttpd_server*>(&s);
  EXPECT_EQ(api().watch(
                server, 3, RINGHTTPD_FD_READABLE, [](void*, int, uint32_t, void*) {}, nullptr),
            RINGHTTPD_ERR_ARG);
  api().log(server, RINGHTTPD_LOG_ERROR, "x", 1);  // ignored, no crash
  api().log(s.server, RINGHTTPD_LOG_INFO, nullptr, 3);
}

// ---- cancel ----

TEST_F(ModuleAdapter, ACancelIsToldOnceAndTheHandleIsDeadAfterIt) {
  auto x = request("/held");
  int data = 5;
  ASSERT_EQ(api().set_request_data(last(), &data), RINGHTTPD_OK);
  x->cancel();
  ASSERT_EQ(s.cancelled.size(), 1u);
  EXPECT_EQ(s.cancelled[0], last());
  EXPECT_EQ(s.respond_in_cancel, RINGHTTPD_ERR_HANDLE);  // nothing reaches the client
  EXPECT_EQ(s.data_in_cancel, &data);                    // but its data is there to free
  EXPECT_EQ(x->status, 0);
  EXPECT_EQ(api().respond(last(), 200, nullptr, 0, "x", 1), RINGHTTPD_ERR_HANDLE);
  EXPECT_EQ(api().request_data(last()), nullptr);
  x->notify();
  EXPECT_EQ(s.cancelled.size(), 1u);
  EXPECT_EQ(handler->open_requests(), 0u);
}

TEST_F(ModuleAdapter, ARequestCancelledBeforeTheModuleHeardOfItIsNeverTold) {
  auto x = std::make_shared<FakeExchange>("/held");
  handler->handle_stream(x);
  x->cancel();
  handler->poll(0);
  EXPECT_TRUE(s.requests.empty());
  EXPECT_TRUE(s.cancelled.empty());
  EXPECT_EQ(handler->open_requests(), 0u);
}

TEST_F(ModuleAdapter, RespondAbortBeforeStartAnswers500) {
  auto x = request("/held");
  EXPECT_EQ(api().respond_abort(last()), RINGHTTPD_OK);
  EXPECT_EQ(x->status, 500);
  EXPECT_TRUE(x->finished);
}

TEST_F(ModuleAdapter, NoCancelAfterTheModuleFinished) {
  auto x = request("/now");
  x->cancel();
  EXPECT_TRUE(s.cancelled.empty());
}

// ---- the body ----

TEST_F(ModuleAdapter, TheBodyStreamsInAndItsEndFollows) {
  auto x = request("/up", "POST", 6);
  EXPECT_EQ(s.body_ends, 0);
  x->arrive("abc", false);
  x->arrive("def", true);
  EXPECT_EQ(s.body, "abcdef");
  EXPECT_EQ(x->consumed, 6u);
  EXPECT_EQ(s.body_ends, 1);
  x->notify();
  EXPECT_EQ(s.body_ends, 1);
}

TEST_F(ModuleAdapter, ABodylessRequestGetsItsEndRightAway) {
  request("/held");
  EXPECT_EQ(s.body_ends, 1);
}

TEST_F(ModuleAdapter, WhatTheModuleLeavesIsOfferedAgainOnlyWhenAskedOrWithMore) {
  s.take = 2;
  auto x = request("/up", "POST", 8);
  x->arrive("abcdef", false);
  EXPECT_EQ(s.body, "ab");
  EXPECT_EQ(s.bodies, 1u);
  x->notify();  // nothing new: not offered again
  EXPECT_EQ(s.bodies, 1u);
  ASSERT_EQ(api().body_resume(last()), RINGHTTPD_OK);
  EXPECT_EQ(s.bodies, 1u);  // from the loop, not inside the call
  handler->poll(0);         // the loop's next iteration delivers it
  EXPECT_EQ(s.body, "abcd");
  x->arrive("gh", true);  // more: offered at once
  EXPECT_EQ(s.body, "abcdef");
  s.take = SIZE_MAX;
  api().body_resume(last());
  handler->poll(0);
  EXPECT_EQ(s.body, "abcdefgh");
  EXPECT_EQ(s.body_ends, 1);
}

TEST_F(ModuleAdapter, AnOnBodyThatClaimsMoreThanItGotAnswers500) {
  s.take = SIZE_MAX;
  const ringhttpd_module liar = [] {
    ringhttpd_module m = kTable;
    m.on_body = [](void*, ringhttpd_request*, const char*, size_t len) { return len + 1; };
    return m;
  }();
  std::string error;
  auto h = ModuleHandler::create(&liar, "module liar", "{}", ServiceIdentity{}, nullptr, error);
  ASSERT_TRUE(h) << error;
  auto x = std::make_shared<FakeExchange>("/up", "POST", 3);
  h->handle_stream(x);
  x->arrive("abc", true);  // before on_request: held
  EXPECT_EQ(x->consumed, 0u);
  h->poll(0);
  EXPECT_EQ(x->status, 500);
  EXPECT_EQ(x->consumed, 0u);
  EXPECT_EQ(h->open_requests(), 0u);
}

// ---- writability, poll, descriptors ----

TEST_F(ModuleAdapter, AgainThenOnWritableWhenTheWindowOpens) {
  auto x = request("/held");
  ASSERT_EQ(api().respond_start(last(), 200, nullptr, 0, RINGHTTPD_UNKNOWN_LENGTH), RINGHTTPD_OK);
  x->room = false;
  EXPECT_EQ(api().respond_write(last(), "abc", 3), RINGHTTPD_AGAIN);
  x->notify();
  EXPECT_EQ(s.writables, 0);
  x->room = true;
  x->notify();
  EXPECT_EQ(s.writables, 1);
  x->notify();
  EXPECT_EQ(s.writables, 1);
}

TEST_F(ModuleAdapter, PollPassesTheModulesDeadline) {
  EXPECT_EQ(handler->poll(50), -1);
  EXPECT_EQ(s.polled_at, 50);
  s.deadline = 75;
  EXPECT_EQ(handler->poll(60), 75);
  EXPECT_GT(api().now_ms(s.server), 0);
}

TEST_F(ModuleAdapter, DescriptorsMapToTheLoop) {
  auto cb = [](void*, int fd, uint32_t e, void*) { seen->fd_events.push_back({fd, e}); };
  ASSERT_EQ(api().watch(s.server, 5, RINGHTTPD_FD_READABLE | RINGHTTPD_FD_WRITABLE, cb, nullptr),
            RINGHTTPD_OK);
  ASSERT_EQ(loop.watches.count(5), 1u);
  EXPECT_EQ(loop.watches[5].first, uint32_t{EPOLLIN | EPOLLOUT});
  loop.watches[5].second(EPOLLIN | EPOLLHUP);
  ASSERT_EQ(s.fd_events.size(), 1u);
  EXPECT_EQ(s.fd_events[0], std::make_pair(5, RINGHTTPD_FD_READABLE | RINGHTTPD_FD_ERROR));
  ASSERT_EQ(api().modify(s.server, 5, RINGHTTPD_FD_WRITABLE), RINGHTTPD_OK);
  EXPECT_EQ(loop.watches[5].first, uint32_t{EPOLLOUT});
  EXPECT_EQ(api().watch(s.server, 6, 0x80, cb, nullptr), RINGHTTPD_ERR_ARG);
  EXPECT_EQ(api().watch(s.server, 6, RINGHTTPD_FD_READABLE, nullptr, nullptr), RINGHTTPD_ERR_ARG);
  ASSERT_EQ(api().unwatch(s.server, 5), RINGHTTPD_OK);
  EXPECT_EQ(loop.watches.count(5), 0u);
}

TEST(ModuleAdapterInit, AWatchAskedForInInitStartsAtAttach) {
  Seen s;
  seen = &s;
  std::string error;
  auto h = ModuleHandler::create(&kTable, "module w", "{\"watch\":1}", ServiceIdentity{}, nullptr,
                                 error);
  ASSERT_TRUE(h) << error;
  FakeLoop loop;
  EXPECT_TRUE(loop.watches.empty());
  h->attach(loop);
  ASSERT_EQ(loop.watches.count(7), 1u);
  loop.watches[7].second(EPOLLIN);
  ASSERT_EQ(s.fd_events.size(), 1u);
  EXPECT_EQ(s.fd_events[0].first, 7);
  h.reset();
  seen = nullptr;
}

}  // namespace
}  // namespace ringhttpd::worker
