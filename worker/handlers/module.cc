// The module handler (see module.h): loading and ABI checks, the C function
// table handed to the module, and the adapter from Exchange and HandlerLoop
// to the module's callbacks. All on the service process's one thread.
#include "worker/handlers/module.h"

#include <dlfcn.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "proto/http_response.h"
#include "worker/log.h"

namespace ringhttpd::worker {

struct ModuleRequest {
  ModuleHandler* owner = nullptr;
  uint64_t id = 0;
  std::shared_ptr<Exchange> x;
  std::vector<ringhttpd_header> headers;  // views into x->request()
  ringhttpd_request_info info{};
  void* data = nullptr;  // the module's
  bool started = false;
  uint64_t length = 0;  // announced
  uint64_t given = 0;   // body bytes written
  size_t offered = 0;   // body bytes offered and left unconsumed
  bool resume = false;  // offer them again although nothing new arrived
  bool body_end_told = false;
  bool want_writable = false;
  bool told = false;        // on_request was called
  bool cancelling = false;  // in on_cancel: only its data is still reachable
  bool ended = false;
};

namespace {

// Handles are never reused within a process: a stale one cannot reach a
// newer request.
uint64_t g_next_id = 1;

// The live handlers of this process (one in the server; several in tests):
// a server token or a request handle is checked against them.
std::vector<ModuleHandler*>& live_handlers() {
  static std::vector<ModuleHandler*> handlers;
  return handlers;
}

ringhttpd_request* token(uint64_t id) {
  return reinterpret_cast<ringhttpd_request*>(static_cast<uintptr_t>(id));
}

ringhttpd_str str(std::string_view s) { return {s.data(), s.size()}; }

// Joins pieces with += (GCC 12 gives false -Werror=restrict errors on
// "literal" + std::string).
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  ((out += parts), ...);
  return out;
}

std::string num(uint64_t n) { return std::to_string(n); }

int64_t monotonic_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A string from the module: NULL is allowed only when empty.
bool module_string(const ringhttpd_str& s, std::string& out) {
  if (s.data == nullptr && s.len != 0) return false;
  out.assign(s.data == nullptr ? "" : s.data, s.len);
  return true;
}

// Printable for a log line: control bytes as \xNN, at most 64 bytes.
std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 64)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}

// The module's headers, checked: "" when valid, else why not.
std::string copy_headers(const ringhttpd_header* headers, size_t count,
                         std::vector<proto::Header>& out) {
  if (count != 0 && headers == nullptr)
    return cat("headers is NULL with header_count ", num(count));
  for (size_t i = 0; i < count; ++i) {
    proto::Header h;
    if (!module_string(headers[i].name, h.name) || !module_string(headers[i].value, h.value)) {
      return cat("header ", num(i), " has a NULL name or value with a nonzero length");
    }
    if (!proto::valid_header_field(h)) {
      return cat("header \"", printable(h.name), ": ", printable(h.value),
                 "\" is not a valid field (name a token; value without CR, LF or NUL)");
    }
    out.push_back(std::move(h));
  }
  return {};
}

uint32_t to_epoll(uint32_t events) {
  uint32_t e = 0;
  if (events & RINGHTTPD_FD_READABLE) e |= EPOLLIN;
  if (events & RINGHTTPD_FD_WRITABLE) e |= EPOLLOUT;
  return e;
}

uint32_t from_epoll(uint32_t e) {
  uint32_t events = 0;
  if (e & (EPOLLIN | EPOLLPRI | EPOLLRDHUP)) events |= RINGHTTPD_FD_READABLE;
  if (e & EPOLLOUT) events |= RINGHTTPD_FD_WRITABLE;
  if (e & (EPOLLERR | EPOLLHUP)) events |= RINGHTTPD_FD_ERROR;
  return events;
}

constexpr uint32_t kFdEvents = RINGHTTPD_FD_READABLE | RINGHTTPD_FD_WRITABLE;

// ---- the C table ----

int api_start(ringhttpd_request* req, int status, const ringhttpd_header* headers, size_t count,
              uint64_t length) {
  auto r = ModuleHandler::find(req, "respond_start");
  return r ? r->owner->start(*r, status, headers, count, length) : RINGHTTPD_ERR_HANDLE;
}

int api_write(ringhttpd_request* req, const void* data, size_t len) {
  auto r = ModuleHandler::find(req, "respond_write");
  return r ? r->owner->write(*r, data, len) : RINGHTTPD_ERR_HANDLE;
}

int api_finish(ringhttpd_request* req) {
  auto r = ModuleHandler::find(req, "respond_finish");
  return r ? r->owner->finish(*r) : RINGHTTPD_ERR_HANDLE;
}

int api_abort(ringhttpd_request* req) {
  auto r = ModuleHandler::find(req, "respond_abort");
  return r ? r->owner->abort(*r) : RINGHTTPD_ERR_HANDLE;
}

int api_respond(ringhttpd_request* req, int status, const ringhttpd_header* headers, size_t count,
                const void* body, size_t len) {
  auto r = ModuleHandler::find(req, "respond");
  return r ? r->owner->respond(*r, status, headers, count, body, len) : RINGHTTPD_ERR_HANDLE;
}

int api_resume(ringhttpd_request* req) {
  auto r = ModuleHandler::find(req, "body_resume");
  return r ? r->owner->resume(*r) : RINGHTTPD_ERR_HANDLE;
}

int api_set_data(ringhttpd_request* req, void* data) {
  auto r = ModuleHandler::find(req, "set_request_data", true);
  if (!r) return RINGHTTPD_ERR_HANDLE;
  r->data = data;
  return RINGHTTPD_OK;
}

void* api_data(ringhttpd_request* req) {
  auto r = ModuleHandler::find(req, "request_data", true);
  return r ? r->data : nullptr;
}

int api_watch(ringhttpd_server* server, int fd, uint32_t events, ringhttpd_fd_callback ready,
              void* arg) {
  ModuleHandler* h = ModuleHandler::from_server(server);
  return h ? h->watch(fd, events, ready, arg) : RINGHTTPD_ERR_ARG;
}

int api_modify(ringhttpd_server* server, int fd, uint32_t events) {
  ModuleHandler* h = ModuleHandler::from_server(server);
  return h ? h->modify(fd, events) : RINGHTTPD_ERR_ARG;
}

int api_unwatch(ringhttpd_server* server, int fd) {
  ModuleHandler* h = ModuleHandler::from_server(server);
  return h ? h->unwatch(fd) : RINGHTTPD_ERR_ARG;
}

int64_t api_now_ms(ringhttpd_server*) { return monotonic_now_ms(); }

void api_log(ringhttpd_server* server, int level, const char* message, size_t len) {
  ModuleHandler* h = ModuleHandler::from_server(server);
  if (h == nullptr) return;
  if (message == nullptr && len != 0) {
    return h->log_line(RINGHTTPD_LOG_ERROR, "log: message is NULL with a nonzero length");
  }
  h->log_line(level, std::string_view(message == nullptr ? "" : message, len));
}

const ringhttpd_api kApi = {
    RINGHTTPD_MODULE_ABI_VERSION,
    sizeof(ringhttpd_api),
    api_start,
    api_write,
    api_finish,
    api_abort,
    api_respond,
    api_resume,
    api_set_data,
    api_data,
    api_watch,
    api_modify,
    api_unwatch,
    api_now_ms,
    api_log,
};

}  // namespace

// ---- loading ----

void ModuleHandler::LibraryCloser::operator()(void* library) const {
  if (library != nullptr) ::dlclose(library);
}

// dlopen, the entry symbol, its table and its ABI version: everything but
// init. The library comes back open with its table, or null with `error`.
const ringhttpd_module* ModuleHandler::open(const std::string& path, const std::string& label,
                                            std::unique_ptr<void, LibraryCloser>& library,
                                            std::string& error) {
  // dlopen would wait forever on a FIFO (and read a device): a module is a file.
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    error = cat(label, ": cannot load: not a regular file");
    return nullptr;
  }
  ::dlerror();
  library.reset(::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL));
  if (!library) {
    const char* why = ::dlerror();
    error = cat(label, ": cannot load: ", why != nullptr ? why : "dlopen failed");
    return nullptr;
  }
  void* symbol = ::dlsym(library.get(), RINGHTTPD_MODULE_SYMBOL);
  if (symbol == nullptr) {
    error = label + ": no symbol " RINGHTTPD_MODULE_SYMBOL " (not a ringhttpd module?)";
    return nullptr;
  }
  const auto entry = reinterpret_cast<ringhttpd_module_entry>(symbol);
  const ringhttpd_module* module = entry();
  if (module == nullptr) {
    error = label + ": " RINGHTTPD_MODULE_SYMBOL "() returned NULL";
    return nullptr;
  }
  if (module->abi_version != RINGHTTPD_MODULE_ABI_VERSION) {
    error = cat(label, ": built for module ABI version ", num(module->abi_version),
                ", this server speaks version ", num(RINGHTTPD_MODULE_ABI_VERSION),
                "; rebuild it against this server's ringhttpd/module.h");
    return nullptr;
  }
  if (module->init == nullptr || module->on_request == nullptr) {
    error = label + ": its table lacks init or on_request";
    return nullptr;
  }
  return module;
}

std::unique_ptr<Handler> ModuleHandler::load(const ModuleSettings& settings,
                                             const ServiceIdentity& identity, std::string& error) {
  std::string label = "module ";
  label += settings.path;
  std::unique_ptr<void, LibraryCloser> library;
  const ringhttpd_module* module = open(settings.path, label, library, error);
  if (module == nullptr) return nullptr;
  return create(module, std::move(label), settings.config_json, identity, library.release(), error);
}

std::string ModuleHandler::probe(const std::string& path) {
  std::unique_ptr<void, LibraryCloser> library;
  std::string error;
  open(path, "module " + path, library, error);
  return error;
}

std::unique_ptr<ModuleHandler> ModuleHandler::create(const ringhttpd_module* module,
                                                     std::string label,
                                                     std::string_view config_json,
                                                     const ServiceIdentity& identity, void* library,
                                                     std::string& error) {
  std::unique_ptr<ModuleHandler> handler(new ModuleHandler(module, std::move(label), library));
  if (module == nullptr || module->init == nullptr || module->on_request == nullptr) {
    error = handler->label_ + ": its table lacks init or on_request";
    return nullptr;
  }
  if (!handler->init(config_json, identity, error)) return nullptr;
  return handler;
}

ModuleHandler::ModuleHandler(const ringhttpd_module* module, std::string label, void* library)
    : library_(library), module_(module), label_(std::move(label)) {
  live_handlers().push_back(this);
}

bool ModuleHandler::init(std::string_view config_json, const ServiceIdentity& identity,
                         std::string& error) {
  const std::string config(config_json);  // NUL-terminated for the module
  char reason[512] = {};
  ringhttpd_init_args args{};
  args.api = &kApi;
  args.server = reinterpret_cast<ringhttpd_server*>(this);
  args.config_json = config.c_str();
  args.config_len = config.size();
  args.identity = {str(identity.service), identity.pid, identity.generation, identity.index};
  args.error = reason;
  args.error_size = sizeof reason;
  const int rc = module_->init(&args);
  reason[sizeof reason - 1] = '\0';  // whatever the module wrote
  if (rc != 0) {
    error = cat(label_, ": init failed (returned ", std::to_string(rc), ")");
    if (reason[0] != '\0') error += cat(": ", printable(reason));
    return false;
  }
  state_ = args.state;
  initialised_ = true;
  return true;
}

// Handles still open end without on_cancel (the process is ending); the
// module's destroy() runs with the api inert: the loop and the streams may
// already be gone.
ModuleHandler::~ModuleHandler() {
  closing_ = true;
  for (auto& [id, r] : requests_) r->ended = true;
  requests_.clear();
  if (initialised_ && module_->destroy != nullptr) module_->destroy(state_);
  std::erase(live_handlers(), this);
}

ModuleHandler* ModuleHandler::from_server(ringhttpd_server* server) {
  for (ModuleHandler* h : live_handlers()) {
    if (reinterpret_cast<ringhttpd_server*>(h) == server) return h;
  }
  log_error("module api called with an unknown server pointer; ignored");
  return nullptr;
}

std::shared_ptr<ModuleRequest> ModuleHandler::find(ringhttpd_request* req, const char* call,
                                                   bool data_only) {
  const uint64_t id = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(req));
  for (ModuleHandler* h : live_handlers()) {
    if (h->closing_) continue;
    auto it = h->requests_.find(id);
    if (it != h->requests_.end() && (data_only || !it->second->cancelling)) return it->second;
  }
  // A handle that ended (finished, cancelled) is expected; one never given
  // out is a module bug worth an error line.
  const bool issued = id != 0 && id < g_next_id;
  std::string line = live_handlers().size() == 1 ? live_handlers()[0]->label_ : "module";
  line += ": ";
  line += call;
  line += issued ? ": the request handle has ended; ignored" : ": not a request handle; ignored";
  log(issued ? LogLevel::debug : LogLevel::error, line);
  return nullptr;
}

void ModuleHandler::log_line(int level, std::string_view message) const {
  std::string line = label_;
  line += ": ";
  line += message;
  switch (level) {
    case RINGHTTPD_LOG_DEBUG:
      return log_debug(line);
    case RINGHTTPD_LOG_INFO:
      return log_info(line);
    case RINGHTTPD_LOG_WARN:
      return log_warn(line);
    default:
      return log_error(line);
  }
}

// ---- requests in ----

void ModuleHandler::attach(HandlerLoop& loop) {
  loop_ = &loop;
  std::vector<PendingWatch> pending;
  pending.swap(pending_watches_);
  for (const PendingWatch& w : pending) {
    if (watch(w.fd, w.events, w.ready, w.arg) != RINGHTTPD_OK) {
      log_line(RINGHTTPD_LOG_ERROR, cat("watch of fd ", std::to_string(w.fd),
                                        " asked for in init failed: ", std::strerror(errno)));
    }
  }
}

void ModuleHandler::handle(ServiceRequest, std::unique_ptr<Responder> responder) {
  // Not called: this handler streams. Answered rather than left to hang.
  responder->respond(proto::HttpResponse{500, {}, "module handler takes streams only\n"});
}

void ModuleHandler::handle_stream(std::shared_ptr<Exchange> exchange) {
  auto r = std::make_shared<ModuleRequest>();
  r->owner = this;
  r->id = g_next_id++;
  r->x = std::move(exchange);
  const proto::HttpRequest& http = r->x->request().http;
  for (const proto::Header& h : http.headers) r->headers.push_back({str(h.name), str(h.value)});
  r->info.method = str(http.method);
  r->info.target = str(http.target);
  r->info.path = str(http.path());
  r->info.query = str(http.query());
  r->info.headers = r->headers.empty() ? nullptr : r->headers.data();
  r->info.header_count = r->headers.size();
  r->info.body_length = r->x->body_length();
  r->info.version_major = http.version_major;
  r->info.version_minor = http.version_minor;
  requests_.emplace(r->id, r);
  std::weak_ptr<ModuleRequest> weak = r;
  r->x->set_listener([weak] {
    if (auto live = weak.lock(); live && !live->ended) live->owner->deliver(live);
  });
  fresh_.push_back(r);
}

// The module hears of a request from poll(), the loop's next turn, not from
// handle_stream(): that runs while the request's record is still in the
// ring, and a module that crashed there would leave the request looking
// untaken to the network process, which would move it to a sibling (and
// crash that one too) instead of answering 502.
void ModuleHandler::tell_fresh() {
  std::vector<std::shared_ptr<ModuleRequest>> now;
  now.swap(fresh_);
  for (const auto& r : now) {
    if (r->ended) continue;
    if (r->x->cancelled()) {  // never told: nothing to cancel
      end(*r);
      continue;
    }
    r->told = true;
    module_->on_request(state_, token(r->id), &r->info);
    if (!r->ended) deliver(r);
  }
}

void ModuleHandler::deliver(const std::shared_ptr<ModuleRequest>& r) {
  if (!r->told) return;  // poll() tells it first
  if (r->x->cancelled()) {
    r->cancelling = true;
    if (module_->on_cancel != nullptr) module_->on_cancel(state_, token(r->id));
    end(*r);
    return;
  }
  if (!offer_body(*r) || r->ended) return;
  if (!r->body_end_told && r->x->body_complete() && r->x->body().empty()) {
    r->body_end_told = true;
    if (module_->on_body_end != nullptr) module_->on_body_end(state_, token(r->id));
    if (r->ended) return;
  }
  if (r->want_writable && r->x->writable()) {
    r->want_writable = false;
    if (module_->on_writable != nullptr) module_->on_writable(state_, token(r->id));
  }
}

// Offers what arrived; false when the module broke the request.
bool ModuleHandler::offer_body(ModuleRequest& r) {
  for (;;) {
    const std::string_view body = r.x->body();
    if (body.empty()) return true;
    if (module_->on_body == nullptr) {  // read and dropped
      r.x->consume(body.size());
      continue;
    }
    if (body.size() <= r.offered && !r.resume) return true;  // nothing new
    r.resume = false;
    const size_t n = module_->on_body(state_, token(r.id), body.data(), body.size());
    if (r.ended) return false;
    if (n > body.size()) {
      fail(r, RINGHTTPD_ERR_ARG,
           cat("on_body returned ", num(n), ", more than the ", num(body.size()),
               " bytes it was given"));
      return false;
    }
    r.x->consume(n);
    r.offered = body.size() - n;
    if (r.offered != 0) return true;  // the module waits: body_resume() or more bytes
  }
}

int64_t ModuleHandler::poll(int64_t now_ms) {
  tell_fresh();
  std::vector<uint64_t> now;
  now.swap(resume_);
  for (uint64_t id : now) {
    auto it = requests_.find(id);
    if (it == requests_.end()) continue;
    const std::shared_ptr<ModuleRequest> r = it->second;
    r->resume = true;
    deliver(r);
  }
  int64_t next = module_->poll != nullptr ? module_->poll(state_, now_ms) : -1;
  if (!resume_.empty() || !fresh_.empty()) next = now_ms;  // more to do at once
  return next;
}

// ---- the response ----

int ModuleHandler::start(ModuleRequest& r, int status, const ringhttpd_header* headers,
                         size_t count, uint64_t length) {
  if (r.started) return fail(r, RINGHTTPD_ERR_STATE, "respond_start called twice");
  if (status < 200 || status > 599) {
    return fail(r, RINGHTTPD_ERR_ARG,
                cat("respond_start: status ", std::to_string(status), " is outside 200..599"));
  }
  std::vector<proto::Header> copied;
  if (std::string why = copy_headers(headers, count, copied); !why.empty()) {
    return fail(r, RINGHTTPD_ERR_ARG, cat("respond_start: ", why));
  }
  r.x->start(status, std::move(copied), length);
  if (r.x->cancelled()) return RINGHTTPD_OK;  // on_cancel follows from the loop
  // Right after a start that took, the window is empty: writable. If not,
  // the exchange refused the head (too large for the ring) and answered 500.
  if (!r.x->writable()) {
    log_line(RINGHTTPD_LOG_ERROR, "respond_start: the response head was refused (see above)");
    end(r);
    return RINGHTTPD_ERR_ARG;
  }
  r.started = true;
  r.length = length;
  return RINGHTTPD_OK;
}

int ModuleHandler::write(ModuleRequest& r, const void* data, size_t len) {
  if (data == nullptr && len != 0) {
    return fail(r, RINGHTTPD_ERR_ARG, cat("respond_write: data is NULL with len ", num(len)));
  }
  if (!r.started) return fail(r, RINGHTTPD_ERR_STATE, "respond_write before respond_start");
  if (r.length != RINGHTTPD_UNKNOWN_LENGTH && len > r.length - r.given) {
    return fail(r, RINGHTTPD_ERR_ARG,
                cat("respond_write: ", num(r.given + len),
                    " body bytes, past the announced length ", num(r.length)));
  }
  if (len == 0) return RINGHTTPD_OK;
  r.given += len;
  if (r.x->write(std::string_view(static_cast<const char*>(data), len))) return RINGHTTPD_OK;
  r.want_writable = true;
  return RINGHTTPD_AGAIN;
}

int ModuleHandler::finish(ModuleRequest& r) {
  if (!r.started) return fail(r, RINGHTTPD_ERR_STATE, "respond_finish before respond_start");
  if (r.length != RINGHTTPD_UNKNOWN_LENGTH && r.given != r.length) {
    return fail(r, RINGHTTPD_ERR_STATE,
                cat("respond_finish after ", num(r.given),
                    " body bytes, short of the announced length ", num(r.length)));
  }
  r.x->finish();
  end(r);
  return RINGHTTPD_OK;
}

int ModuleHandler::abort(ModuleRequest& r) {
  if (!r.started) {
    log_line(RINGHTTPD_LOG_WARN, "respond_abort before respond_start; answering 500");
    answer_500(r);
  } else {
    r.x->abort();
  }
  end(r);
  return RINGHTTPD_OK;
}

int ModuleHandler::respond(ModuleRequest& r, int status, const ringhttpd_header* headers,
                           size_t count, const void* body, size_t len) {
  if (body == nullptr && len != 0) {
    return fail(r, RINGHTTPD_ERR_ARG, cat("respond: body is NULL with body_len ", num(len)));
  }
  int rc = start(r, status, headers, count, len);
  if (rc == RINGHTTPD_OK && len != 0) rc = write(r, body, len);
  if (rc == RINGHTTPD_OK || rc == RINGHTTPD_AGAIN) rc = finish(r);
  return rc;
}

int ModuleHandler::resume(ModuleRequest& r) {
  if (std::find(resume_.begin(), resume_.end(), r.id) == resume_.end()) resume_.push_back(r.id);
  return RINGHTTPD_OK;
}

int ModuleHandler::fail(ModuleRequest& r, int code, const std::string& why) {
  std::string line = why;
  if (r.started) {
    line += "; the response is cut off";
    r.x->abort();
  } else {
    line += "; answering 500";
    answer_500(r);
  }
  log_line(RINGHTTPD_LOG_ERROR, line);
  end(r);
  return code;
}

void ModuleHandler::answer_500(ModuleRequest& r) {
  const std::string_view body = "500 Internal Server Error\n";
  r.x->start(500, {{"Content-Type", "text/plain"}}, body.size());
  r.x->write(body);
  r.x->finish();
}

void ModuleHandler::end(ModuleRequest& r) {
  r.ended = true;
  std::erase(resume_, r.id);
  requests_.erase(r.id);  // the caller holds a shared_ptr: `r` stays valid
}

// ---- the module's descriptors ----

int ModuleHandler::watch(int fd, uint32_t events, ringhttpd_fd_callback ready, void* arg) {
  if (closing_) return RINGHTTPD_ERR_ARG;
  if (ready == nullptr || (events & ~kFdEvents) != 0) {
    errno = EINVAL;
    log_line(RINGHTTPD_LOG_ERROR, "watch: a NULL callback or unknown event bits; refused");
    return RINGHTTPD_ERR_ARG;
  }
  if (loop_ == nullptr) {  // from init: applied at attach()
    pending_watches_.push_back({fd, events, ready, arg});
    return RINGHTTPD_OK;
  }
  const bool ok = loop_->watch(fd, to_epoll(events), [this, fd, ready, arg](uint32_t e) {
    ready(state_, fd, from_epoll(e), arg);
  });
  if (!ok) return RINGHTTPD_ERR_ARG;
  watched_.push_back(fd);
  return RINGHTTPD_OK;
}

int ModuleHandler::modify(int fd, uint32_t events) {
  if (closing_) return RINGHTTPD_ERR_ARG;
  if ((events & ~kFdEvents) != 0) {
    errno = EINVAL;
    return RINGHTTPD_ERR_ARG;
  }
  if (loop_ == nullptr) {
    for (PendingWatch& w : pending_watches_) {
      if (w.fd == fd) w.events = events;
    }
    return RINGHTTPD_OK;
  }
  return loop_->modify(fd, to_epoll(events)) ? RINGHTTPD_OK : RINGHTTPD_ERR_ARG;
}

int ModuleHandler::unwatch(int fd) {
  if (closing_) return RINGHTTPD_OK;  // the loop goes with the process
  std::erase_if(pending_watches_, [fd](const PendingWatch& w) { return w.fd == fd; });
  if (loop_ != nullptr && std::find(watched_.begin(), watched_.end(), fd) != watched_.end()) {
    loop_->unwatch(fd);
    std::erase(watched_, fd);
  }
  return RINGHTTPD_OK;
}

}  // namespace ringhttpd::worker
