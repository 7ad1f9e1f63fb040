// RequestParser: streaming HTTP/1.x request parsing. This file owns
//  * the llhttp state machine, which does the framing (request line, header
//    syntax, Content-Length and chunked bodies, keep-alive),
//  * HeadLexer, a byte-level pass over each request head (and trailer
//    section) that runs ahead of llhttp and caps what llhttp may see. llhttp
//    8.1 accepts things we must reject (DESIGN.md, last bullet): bare LF after
//    the request line or as the final empty line, obs-fold, whitespace before
//    the colon, doubled / leading / trailing spaces and tabs in the request
//    line, HTTP/0.9 request lines and non-"HTTP/" protocols (RTSP/ICE). The
//    lexer also finds the exact end of the head, so the 431 limit counts exact
//    bytes across feeds,
//  * the chunked-body framing llhttp 8.1 does not check: it takes any two
//    bytes after chunk data as the CRLF ("5\r\nhelloXX0\r\n\r\n" passes) and
//    is lax at the end of the trailers. We pause at each chunk header, verify
//    the CRLF ourselves and run the lexer over the trailer section,
//  * the semantic checks llhttp leaves to its user (Host, transfer codings,
//    version, size limits, CONNECT) and the mapping of every failure to the
//    status to answer.
// Every check is made on the byte that decides it and nothing after that byte
// is looked at, so the verdict on a byte stream does not depend on how it was
// split into feeds. Callbacks never let an exception into llhttp's C frames.
#include "proto/http_parser.h"

#include <llhttp.h>

#include <algorithm>
#include <utility>

namespace ringhttpd::proto {
namespace {

constexpr int kBadRequest = 400;
constexpr int kPayloadTooLarge = 413;
constexpr int kUriTooLong = 414;
constexpr int kHeadTooLarge = 431;
constexpr int kInternalError = 500;
constexpr int kNotImplemented = 501;
constexpr int kVersionNotSupported = 505;

constexpr std::string_view kHttpName = "HTTP/";
constexpr const char* kBareLf = "bare LF";

bool IsWs(char c) { return c == ' ' || c == '\t'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsWs(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsWs(s.back())) s.remove_suffix(1);
  return s;
}

// Characters of a Host value: reg-name / IP-literal / IPv4 plus ":" port.
bool IsHostChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c)) return true;
  return std::string_view("-._~!$&'()*+,;=%:[]").find(c) != std::string_view::npos;
}

// Lexical checks over one request head, from the first byte after the
// previous request (leading empty lines included) to its final empty line.
class HeadLexer {
 public:
  // Returned as Result::violation when the request-target passes its limit
  // (414): found here, byte by byte, so the verdict is the same however the
  // input is split (llhttp reports a target only in spans).
  static constexpr const char* kTargetTooLong = "request target too long";

  explicit HeadLexer(uint32_t max_target_bytes = 8192) : max_target_(max_target_bytes) {}

  struct Result {
    size_t ok = 0;                    // leading bytes llhttp may parse
    bool head_end = false;            // they end with the head's final LF
    const char* violation = nullptr;  // if set, byte `ok` is rejected (400)
  };

  // Consumes bytes up to the end of the head or the first bad byte.
  Result Scan(std::string_view bytes) {
    Result r;
    while (r.ok < bytes.size()) {
      r.violation = Step(bytes[r.ok]);
      if (r.violation != nullptr) return r;
      ++r.ok;
      if (state_ == State::kDone) {
        r.head_end = true;
        return r;
      }
    }
    return r;
  }

  bool done() const { return state_ == State::kDone; }
  bool at_start() const { return state_ == State::kStart; }
  void Reset() { *this = HeadLexer(max_target_); }
  // For a trailer section: header lines, then the final empty line.
  void StartTrailers() {
    Reset();
    state_ = State::kLineStart;
  }

 private:
  enum class State : uint8_t {
    kStart,          // before the request line; empty lines allowed
    kStartCr,        // CR of a leading empty line
    kRequestLine,    // method SP target SP HTTP/x.y
    kRequestLineCr,  // CR ending the request line
    kLineStart,      // first byte of a header line or of the final empty line
    kName,           // header name, before the colon
    kValue,          // after the colon
    kValueCr,        // CR ending a header line
    kEndCr,          // CR of the final empty line
    kDone,
  };

  const char* Step(char c) {
    switch (state_) {
      case State::kStart:
        if (c == '\r') return Go(State::kStartCr);
        state_ = State::kRequestLine;
        return StepRequestLine(c);
      case State::kRequestLine:
        return StepRequestLine(c);
      case State::kLineStart:
        return StepLineStart(c);
      case State::kName:
        return StepName(c);
      case State::kValue:
        return c == '\r' ? Go(State::kValueCr) : (c == '\n' ? kBareLf : nullptr);
      case State::kStartCr:
        return ExpectLf(c, State::kStart);
      case State::kRequestLineCr:
        return ExpectLf(c, State::kLineStart);
      case State::kValueCr:
        return ExpectLf(c, State::kLineStart);
      case State::kEndCr:
        return ExpectLf(c, State::kDone);
      case State::kDone:
        break;
    }
    return "bytes after the end of the head";
  }

  const char* Go(State next) {
    state_ = next;
    return nullptr;
  }

  const char* ExpectLf(char c, State next) {
    return c == '\n' ? Go(next) : "CR not followed by LF";
  }

  const char* StepRequestLine(char c) {
    if (c == '\n') return kBareLf;
    if (c == '\t') return "tab in request line";
    if (c == '\r') return EndRequestLine();
    if (c == ' ') {
      if (token_len_ == 0) return "empty token in request line";  // leading or doubled SP
      if (++spaces_ > 2) return "extra space in request line";
      token_len_ = 0;
      return nullptr;
    }
    if (spaces_ == 2 && token_len_ < kHttpName.size() && c != kHttpName[token_len_]) {
      return "protocol is not HTTP";
    }
    if (++token_len_ > max_target_ && spaces_ == 1) return kTargetTooLong;
    return nullptr;
  }

  const char* EndRequestLine() {
    if (spaces_ < 2) return "request line without HTTP version";  // HTTP/0.9 style
    if (token_len_ == 0) return "empty token in request line";    // trailing SP
    return Go(State::kRequestLineCr);
  }

  const char* StepLineStart(char c) {
    if (c == '\r') return Go(State::kEndCr);
    if (c == '\n') return kBareLf;
    if (IsWs(c)) return "obs-fold or whitespace at start of header line";
    state_ = State::kName;
    return StepName(c);
  }

  const char* StepName(char c) {
    if (c == ':') return Go(State::kValue);
    if (IsWs(c)) return "whitespace in header name";
    if (c == '\r') return "header line without colon";
    return c == '\n' ? kBareLf : nullptr;
  }

  uint32_t max_target_;
  State state_ = State::kStart;
  uint8_t spaces_ = 0;      // SPs seen in the request line
  uint32_t token_len_ = 0;  // bytes of the current request-line token
};

// What is known about the request being parsed; reset when it completes.
struct RequestState {
  HttpRequest req;
  std::string version;        // on_version text, to tell 505 from 400
  bool version_done = false;  // on_version_complete seen
  bool in_field = false;      // last header span was a name
  bool headers_done = false;  // header callbacks now carry trailers
  bool started = false;       // on_message_begin seen
  bool wants_continue = false;
  int hosts = 0;
  uint32_t head_bytes = 0;     // bytes since the previous request ended
  uint32_t trailer_bytes = 0;  // bytes of the trailer section so far
  uint64_t chunk_left = 0;     // data bytes of the current chunk still to come
  uint8_t crlf_seen = 0;       // bytes of the CRLF after chunk data seen
  uint64_t extension_bytes = 0;
};

// Where in a request the next byte belongs; decides who looks at it first.
enum class Phase : uint8_t {
  kHead,       // lexer, then llhttp
  kBody,       // llhttp alone: Content-Length body, chunk size lines
  kChunkData,  // llhttp, exactly chunk_left bytes
  kChunkCrlf,  // checked here, then llhttp
  kTrailers,   // lexer, then llhttp
};

// The parser proper; RequestParser::Impl just holds one. Not movable: llhttp
// keeps a pointer to it.
class Parser {
 public:
  explicit Parser(ParserLimits limits);
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  bool Feed(std::string_view data, std::vector<HttpRequest>& out);
  int status() const { return status_; }
  std::string_view reason() const { return reason_; }
  bool mid_request() const { return cur_.started && status_ == 0; }
  bool wants_continue() const { return cur_.wants_continue && status_ == 0; }
  // Nothing consumed since the last request ended (not even a CR): a new
  // parser would behave exactly the same from here.
  bool idle() const {
    return status_ == 0 && !closed_ && !cur_.started && phase_ == Phase::kHead &&
           lexer_.at_start() && cur_.head_bytes == 0;
  }

  // Records the first failure; returns -1 so callbacks can `return Fail(...)`.
  int Fail(int status, std::string_view reason);

  // llhttp callbacks (0 = go on, -1 = error, HPE_PAUSED = request done).
  int OnMessageBegin();
  int OnMethod(std::string_view s);
  int OnMethodComplete();
  int OnUrl(std::string_view s);
  int OnVersion(std::string_view s);
  int OnVersionComplete();
  int OnHeaderField(std::string_view s);
  int OnHeaderValue(std::string_view s);
  int OnHeaderValueComplete();
  int OnHeadersComplete();
  int OnChunkHeader();
  int OnChunkExtension(std::string_view s);
  int OnBody(std::string_view s);
  int OnMessageComplete();

 private:
  size_t Step(std::string_view data);
  size_t FeedLexed(std::string_view data, uint32_t& counter, const char* too_large);
  size_t FeedChunkData(std::string_view data);
  size_t FeedChunkCrlf(std::string_view data);
  size_t Execute(std::string_view bytes);
  void FailFromLlhttp(llhttp_errno_t err);
  int VersionErrorStatus() const;
  int CheckHost();
  int CheckTransferEncoding();
  int CheckContentLength();
  int CheckBodyGrowth(uint64_t more);

  ParserLimits limits_;
  llhttp_t parser_{};
  HeadLexer lexer_;
  RequestState cur_;
  std::vector<HttpRequest>* out_ = nullptr;
  int status_ = 0;
  std::string_view reason_;
  Phase phase_ = Phase::kHead;
  bool closed_ = false;  // a request without keep-alive ended the stream
};

// ---- callback trampolines: C in, no exceptions out ----

template <int (Parser::*Method)(std::string_view)>
int DataCallback(llhttp_t* p, const char* at, size_t length) {
  Parser* self = static_cast<Parser*>(p->data);
  try {
    return (self->*Method)(std::string_view(at, length));
  } catch (...) {
    return self->Fail(kInternalError, "out of memory");
  }
}

template <int (Parser::*Method)()>
int EventCallback(llhttp_t* p) {
  Parser* self = static_cast<Parser*>(p->data);
  try {
    return (self->*Method)();
  } catch (...) {
    return self->Fail(kInternalError, "out of memory");
  }
}

llhttp_settings_t MakeSettings() {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_message_begin = EventCallback<&Parser::OnMessageBegin>;
  s.on_method = DataCallback<&Parser::OnMethod>;
  s.on_method_complete = EventCallback<&Parser::OnMethodComplete>;
  s.on_url = DataCallback<&Parser::OnUrl>;
  s.on_version = DataCallback<&Parser::OnVersion>;
  s.on_version_complete = EventCallback<&Parser::OnVersionComplete>;
  s.on_header_field = DataCallback<&Parser::OnHeaderField>;
  s.on_header_value = DataCallback<&Parser::OnHeaderValue>;
  s.on_header_value_complete = EventCallback<&Parser::OnHeaderValueComplete>;
  s.on_headers_complete = EventCallback<&Parser::OnHeadersComplete>;
  s.on_chunk_header = EventCallback<&Parser::OnChunkHeader>;
  s.on_chunk_extension_name = DataCallback<&Parser::OnChunkExtension>;
  s.on_chunk_extension_value = DataCallback<&Parser::OnChunkExtension>;
  s.on_body = DataCallback<&Parser::OnBody>;
  s.on_message_complete = EventCallback<&Parser::OnMessageComplete>;
  return s;
}

const llhttp_settings_t& Settings() {
  static const llhttp_settings_t settings = MakeSettings();
  return settings;
}

// ---- feeding ----

Parser::Parser(ParserLimits limits) : limits_(limits), lexer_(limits.max_target_bytes) {
  llhttp_init(&parser_, HTTP_REQUEST, &Settings());
  parser_.data = this;
}

bool Parser::Feed(std::string_view data, std::vector<HttpRequest>& out) {
  if (status_ != 0) return false;
  out_ = &out;
  int stalls = 0;
  while (!data.empty() && status_ == 0 && !closed_) {
    size_t used = Step(data);
    data.remove_prefix(used);
    stalls = used == 0 ? stalls + 1 : 0;
    if (stalls > 1 && status_ == 0) Fail(kInternalError, "parser made no progress");
  }
  out_ = nullptr;
  return status_ == 0;
}

size_t Parser::Step(std::string_view data) {
  switch (phase_) {
    case Phase::kHead:
      return FeedLexed(data, cur_.head_bytes, "request head too large");
    case Phase::kTrailers:
      return FeedLexed(data, cur_.trailer_bytes, "trailer section too large");
    case Phase::kChunkData:
      return FeedChunkData(data);
    case Phase::kChunkCrlf:
      return FeedChunkCrlf(data);
    case Phase::kBody:
      break;
  }
  return Execute(data);
}

// Hands llhttp the head (or trailer) bytes that the lexer and the 431 budget
// allow; `counter` holds the section's bytes so far.
size_t Parser::FeedLexed(std::string_view data, uint32_t& counter, const char* too_large) {
  size_t budget = limits_.max_header_bytes - counter;
  if (budget == 0) {
    Fail(kHeadTooLarge, too_large);
    return 0;
  }
  HeadLexer::Result r = lexer_.Scan(data.substr(0, budget));
  counter += static_cast<uint32_t>(r.ok);  // before Execute: completion resets it
  Phase before = phase_;
  size_t used = r.ok == 0 ? 0 : Execute(data.substr(0, r.ok));
  if (status_ != 0) return used;
  if (r.violation != nullptr) {
    Fail(r.violation == HeadLexer::kTargetTooLong ? kUriTooLong : kBadRequest, r.violation);
  } else if (used != r.ok || (r.head_end && lexer_.done() && phase_ == before)) {
    Fail(kBadRequest, "malformed request head");  // lexer and llhttp disagree
  }
  return used;
}

size_t Parser::FeedChunkData(std::string_view data) {
  size_t n = static_cast<size_t>(std::min<uint64_t>(data.size(), cur_.chunk_left));
  size_t used = Execute(data.substr(0, n));
  cur_.chunk_left -= used;
  if (cur_.chunk_left == 0) phase_ = Phase::kChunkCrlf;
  return used;
}

// The CRLF after chunk data, which llhttp 8.1 skips without looking.
size_t Parser::FeedChunkCrlf(std::string_view data) {
  constexpr std::string_view kCrlf = "\r\n";
  size_t n = 0;
  while (n < data.size() && cur_.crlf_seen + n < kCrlf.size() &&
         data[n] == kCrlf[cur_.crlf_seen + n]) {
    ++n;
  }
  if (n == 0) {
    Fail(kBadRequest, "chunk data not followed by CRLF");
    return 0;
  }
  size_t used = Execute(data.substr(0, n));
  cur_.crlf_seen = static_cast<uint8_t>(cur_.crlf_seen + used);
  if (cur_.crlf_seen == kCrlf.size()) {
    cur_.crlf_seen = 0;
    phase_ = Phase::kBody;
  }
  return used;
}

// Runs llhttp; returns the bytes consumed (fewer than given only when a chunk
// header or a whole request completed: both pause the parser so the caller
// can switch phase exactly there). Upgrade pauses are resumed: Upgrade is
// ignored and the request answered as plain HTTP (RFC 9110 §7.8), so the next
// bytes are HTTP again. CONNECT, the other upgrade, never gets this far (501).
size_t Parser::Execute(std::string_view bytes) {
  const char* p = bytes.data();
  const char* end = p + bytes.size();
  for (;;) {
    llhttp_errno_t err = llhttp_execute(&parser_, p, static_cast<size_t>(end - p));
    if (err == HPE_OK) return bytes.size();
    if (err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE) {
      FailFromLlhttp(err);
      return 0;
    }
    p = llhttp_get_error_pos(&parser_);
    if (err == HPE_PAUSED) {
      llhttp_resume(&parser_);
      return static_cast<size_t>(p - bytes.data());
    }
    llhttp_resume_after_upgrade(&parser_);
  }
}

// ---- errors ----

int Parser::Fail(int status, std::string_view reason) {
  if (status_ == 0) {
    status_ = status;
    reason_ = reason;
  }
  return -1;
}

void Parser::FailFromLlhttp(llhttp_errno_t err) {
  if (status_ != 0) return;  // a callback already chose the status
  if (err == HPE_INVALID_VERSION) {
    Fail(VersionErrorStatus(), "invalid HTTP version");
  } else if (err == HPE_PAUSED_H2_UPGRADE) {
    Fail(kVersionNotSupported, "HTTP/2 connection preface");
  } else {
    const char* why = llhttp_get_error_reason(&parser_);
    Fail(kBadRequest, why != nullptr ? why : llhttp_errno_name(err));
  }
}

// llhttp rejects well-formed versions it does not know (HTTP/1.2, HTTP/3.0)
// with the same error as malformed ones (HTTP/11); only the former are 505.
int Parser::VersionErrorStatus() const {
  const std::string& v = cur_.version;
  bool well_formed = v.size() == 3 && IsDigit(v[0]) && v[1] == '.' && IsDigit(v[2]);
  return well_formed && !cur_.version_done ? kVersionNotSupported : kBadRequest;
}

// ---- request line ----

int Parser::OnMessageBegin() {
  cur_.started = true;
  return 0;
}

int Parser::OnMethod(std::string_view s) {
  cur_.req.method.append(s);
  return 0;
}

int Parser::OnMethodComplete() {
  // We are an origin server, not a proxy; llhttp would also hand the rest of
  // the connection over as a tunnel.
  if (cur_.req.method == "CONNECT") return Fail(kNotImplemented, "CONNECT not supported");
  return 0;
}

int Parser::OnUrl(std::string_view s) {
  cur_.req.target.append(s);  // its length is bounded by the lexer
  return 0;
}

int Parser::OnVersion(std::string_view s) {
  if (cur_.version.size() + s.size() > 8) return Fail(kBadRequest, "invalid HTTP version");
  cur_.version.append(s);
  return 0;
}

int Parser::OnVersionComplete() {
  cur_.version_done = true;
  if (parser_.http_major != 1 || parser_.http_minor > 1) {
    return Fail(kVersionNotSupported, "HTTP version not supported");
  }
  cur_.req.version_major = parser_.http_major;
  cur_.req.version_minor = parser_.http_minor;
  return 0;
}

// ---- header section (and trailer section, which is checked and dropped) ----

// Trailer fields (after headers_done) are dropped, not merged into the
// headers: a trailer must not be able to change routing or framing. The lexer
// has checked and bounded them.
int Parser::OnHeaderField(std::string_view s) {
  if (cur_.headers_done) return 0;
  if (!cur_.in_field) cur_.req.headers.emplace_back();
  cur_.in_field = true;
  cur_.req.headers.back().name.append(s);
  return 0;
}

int Parser::OnHeaderValue(std::string_view s) {
  if (cur_.headers_done) return 0;
  cur_.in_field = false;
  cur_.req.headers.back().value.append(s);
  return 0;
}

int Parser::OnHeaderValueComplete() {
  cur_.in_field = false;
  if (cur_.headers_done) return 0;
  Header& h = cur_.req.headers.back();
  std::string_view trimmed = Trim(h.value);
  if (trimmed.size() != h.value.size()) h.value = std::string(trimmed);
  if (iequals(h.name, "Host")) ++cur_.hosts;
  return 0;
}

int Parser::OnHeadersComplete() {
  cur_.headers_done = true;
  HttpRequest& req = cur_.req;
  if (!cur_.version_done) return Fail(kBadRequest, "request line without HTTP version");
  if (req.target == "*" && req.method != "OPTIONS") {
    return Fail(kBadRequest, "asterisk-form target outside OPTIONS");
  }
  if (CheckHost() != 0 || CheckTransferEncoding() != 0 || CheckContentLength() != 0) return -1;
  bool has_body = (parser_.flags & F_CHUNKED) != 0 || parser_.content_length > 0;
  req.expect_continue = iequals(req.header("Expect"), "100-continue");
  // RFC 9110 §10.1.1: never send 100 Continue to an HTTP/1.0 client.
  cur_.wants_continue = req.expect_continue && req.version_minor == 1 && has_body;
  phase_ = Phase::kBody;
  return 0;
}

int Parser::CheckHost() {
  if (cur_.hosts > 1) return Fail(kBadRequest, "more than one Host header");
  if (cur_.hosts == 0) {
    return cur_.req.version_minor == 1 ? Fail(kBadRequest, "HTTP/1.1 request without Host") : 0;
  }
  for (char c : cur_.req.header("Host")) {
    if (!IsHostChar(c)) return Fail(kBadRequest, "invalid Host header");
  }
  return 0;
}

// llhttp accepts "gzip, chunked" (chunked last) and an empty value, and
// rejects "gzip" alone only after this callback; we decode nothing but
// chunked, so any other coding is 501 (RFC 9112 §6.1). "chunked" not last or
// twice is rejected by llhttp (400).
int Parser::CheckTransferEncoding() {
  int codings = 0;
  for (const Header& h : cur_.req.headers) {
    if (!iequals(h.name, "Transfer-Encoding")) continue;
    if (cur_.req.version_minor == 0) return Fail(kBadRequest, "Transfer-Encoding in HTTP/1.0");
    std::string_view list = h.value;
    while (!list.empty()) {
      size_t comma = list.find(',');
      std::string_view coding = Trim(list.substr(0, comma));
      list = comma == list.npos ? std::string_view() : list.substr(comma + 1);
      if (coding.empty()) continue;
      if (!iequals(coding, "chunked")) return Fail(kNotImplemented, "unsupported transfer coding");
      ++codings;
    }
    if (codings == 0) return Fail(kBadRequest, "empty Transfer-Encoding");
  }
  return 0;
}

// Rejected before any body byte arrives.
int Parser::CheckContentLength() {
  if ((parser_.flags & F_CONTENT_LENGTH) && parser_.content_length > limits_.max_body_bytes) {
    return Fail(kPayloadTooLarge, "Content-Length above limit");
  }
  return 0;
}

// ---- body ----

int Parser::CheckBodyGrowth(uint64_t more) {
  if (more > limits_.max_body_bytes - cur_.req.body.size()) {
    return Fail(kPayloadTooLarge, "body above limit");
  }
  return 0;
}

// Rejects an oversized chunk from its size line, before its data arrives,
// and pauses so that Execute() returns exactly where the data (or, after the
// last chunk, the trailer section) starts.
int Parser::OnChunkHeader() {
  if (CheckBodyGrowth(parser_.content_length) != 0) return -1;
  cur_.chunk_left = parser_.content_length;
  if (cur_.chunk_left > 0) {
    phase_ = Phase::kChunkData;
  } else {
    phase_ = Phase::kTrailers;
    lexer_.StartTrailers();
  }
  return HPE_PAUSED;
}

// Extensions are ignored but bounded (cf. CVE-2024-22019).
int Parser::OnChunkExtension(std::string_view s) {
  cur_.extension_bytes += s.size();
  if (cur_.extension_bytes > limits_.max_header_bytes) {
    return Fail(kPayloadTooLarge, "chunk extensions too large");
  }
  return 0;
}

int Parser::OnBody(std::string_view s) {
  if (CheckBodyGrowth(s.size()) != 0) return -1;
  cur_.req.body.append(s);
  return 0;
}

// Emits the request and pauses llhttp, so Execute() returns exactly where the
// next request starts.
int Parser::OnMessageComplete() {
  cur_.req.keep_alive = llhttp_should_keep_alive(&parser_) != 0;
  // Bytes after a request that ends the connection are never interpreted.
  closed_ = !cur_.req.keep_alive;
  out_->push_back(std::move(cur_.req));
  cur_ = RequestState();
  lexer_.Reset();
  phase_ = Phase::kHead;
  return HPE_PAUSED;
}

}  // namespace

struct RequestParser::Impl {
  explicit Impl(ParserLimits limits) : parser(limits) {}
  Parser parser;
};

RequestParser::RequestParser(ParserLimits limits) : limits_(limits) {}
RequestParser::~RequestParser() = default;
RequestParser::RequestParser(RequestParser&&) noexcept = default;
RequestParser& RequestParser::operator=(RequestParser&&) noexcept = default;

bool RequestParser::feed(std::string_view data, std::vector<HttpRequest>& out) {
  try {
    if (!impl_) impl_ = std::make_unique<Impl>(limits_);
    return impl_->parser.Feed(data, out);
  } catch (...) {  // e.g. out.push_back failing outside a callback
    if (impl_) impl_->parser.Fail(kInternalError, "out of memory");
    return false;
  }
}

void RequestParser::release_if_idle() {
  if (impl_ && impl_->parser.idle()) impl_.reset();
}

int RequestParser::error_status() const { return impl_ ? impl_->parser.status() : 0; }

std::string_view RequestParser::error_reason() const {
  return impl_ ? impl_->parser.reason() : std::string_view();
}

bool RequestParser::mid_request() const { return impl_ && impl_->parser.mid_request(); }

bool RequestParser::wants_continue() const { return impl_ && impl_->parser.wants_continue(); }

}  // namespace ringhttpd::proto
