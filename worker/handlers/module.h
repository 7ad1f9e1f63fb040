// The "module" handler: application logic in a shared object with the C ABI
// of include/ringhttpd/module.h, loaded with dlopen in each service process.
// This class owns the library, the module's state and the table of open
// request handles, and adapts the C calls to Exchange (streamed requests and
// responses) and HandlerLoop (the module's own descriptors). Everything the
// module passes in is checked here: a bad argument fails that one request
// (500, a log line), never the process. Handles are ids looked up in a table,
// never pointers, so a stale or made-up one is ignored rather than followed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "include/ringhttpd/module.h"
#include "worker/handler.h"

namespace ringhttpd::worker {

// One request as the module sees it (defined in module.cc).
struct ModuleRequest;

class ModuleHandler : public Handler {
 public:
  // Loads `settings.path` (dlopen RTLD_NOW | RTLD_LOCAL), checks its ABI
  // version and calls its init with settings.config_json. nullptr, with one
  // line naming the path and the reason in `error`, when any step fails.
  static std::unique_ptr<Handler> load(const ModuleSettings& settings,
                                       const ServiceIdentity& identity, std::string& error);
  // What `ringhttpd check` asks of a module service: the load and the ABI
  // check of load(), without init (which may do anything the module
  // likes). "" when it would load; else the reason, naming the path.
  static std::string probe(const std::string& path);
  // The same from a table already in memory (tests): `label` names it in log
  // lines; `library` (a dlopen handle or nullptr) is closed last.
  static std::unique_ptr<ModuleHandler> create(const ringhttpd_module* module, std::string label,
                                               std::string_view config_json,
                                               const ServiceIdentity& identity, void* library,
                                               std::string& error);
  ~ModuleHandler() override;
  ModuleHandler(const ModuleHandler&) = delete;
  ModuleHandler& operator=(const ModuleHandler&) = delete;

  void attach(HandlerLoop& loop) override;
  void handle(ServiceRequest request, std::unique_ptr<Responder> responder) override;
  bool streams() const override { return true; }
  void handle_stream(std::shared_ptr<Exchange> exchange) override;
  int64_t poll(int64_t now_ms) override;

  // Open handles (tests).
  size_t open_requests() const { return requests_.size(); }

  // ---- the C api's side (module.cc's table calls these) ----
  static ModuleHandler* from_server(ringhttpd_server* server);
  // The handle's request, or nullptr (logged) when unknown or ended; while
  // on_cancel runs, only for `data_only` calls (request_data).
  static std::shared_ptr<ModuleRequest> find(ringhttpd_request* req, const char* call,
                                             bool data_only = false);
  int start(ModuleRequest& r, int status, const ringhttpd_header* headers, size_t count,
            uint64_t length);
  int write(ModuleRequest& r, const void* data, size_t len);
  int finish(ModuleRequest& r);
  int respond(ModuleRequest& r, int status, const ringhttpd_header* headers, size_t count,
              const void* body, size_t len);
  int abort(ModuleRequest& r);
  int resume(ModuleRequest& r);
  int watch(int fd, uint32_t events, ringhttpd_fd_callback ready, void* arg);
  int modify(int fd, uint32_t events);
  int unwatch(int fd);
  void log_line(int level, std::string_view message) const;

 private:
  ModuleHandler(const ringhttpd_module* module, std::string label, void* library);
  bool init(std::string_view config_json, const ServiceIdentity& identity, std::string& error);
  // Offers the body, the body's end and writability to the module, and tells
  // it about a cancel: what the exchange's listener and poll() run.
  void deliver(const std::shared_ptr<ModuleRequest>& r);
  void tell_fresh();
  bool offer_body(ModuleRequest& r);
  // Fails the request for the module (500, or the response cut off) with a
  // log line, and ends its handle. Returns `code`.
  int fail(ModuleRequest& r, int code, const std::string& why);
  void answer_500(ModuleRequest& r);
  void end(ModuleRequest& r);

  struct PendingWatch {
    int fd;
    uint32_t events;
    ringhttpd_fd_callback ready;
    void* arg;
  };

  struct LibraryCloser {
    void operator()(void* library) const;
  };
  static const ringhttpd_module* open(const std::string& path, const std::string& label,
                                      std::unique_ptr<void, LibraryCloser>& library,
                                      std::string& error);
  std::unique_ptr<void, LibraryCloser> library_;  // closed last
  const ringhttpd_module* module_;
  std::string label_;  // "module /path/x.so"
  void* state_ = nullptr;
  bool initialised_ = false;
  bool closing_ = false;  // in the destructor: the loop may be gone
  HandlerLoop* loop_ = nullptr;
  std::vector<PendingWatch> pending_watches_;  // asked for in init, before attach
  std::vector<int> watched_;
  std::unordered_map<uint64_t, std::shared_ptr<ModuleRequest>> requests_;  // open handles
  std::vector<uint64_t> resume_;                       // body_resume() asked: delivered from poll()
  std::vector<std::shared_ptr<ModuleRequest>> fresh_;  // heads for on_request, from poll()
};

}  // namespace ringhttpd::worker
