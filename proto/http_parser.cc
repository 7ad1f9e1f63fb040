// RequestParser: streaming HTTP/1.x request parsing. This file owns
//  * the llhttp state machine, which does the framing (request line, header
//    syntax, Content-Length and chunked bodies, keep-alive),
//  * HeadLexer, a byte-level pass over each request head (and trailer
//    section) that runs ahead of llhttp and caps what llhttp may see. llhttp
//    8.1 accepts things we must reject (DESIGN.md, last bullet): bare LF after
//    the request line or as the final empty line, obs-fold, whitespace before
//    the colon, empty field names, doubled / leading / trailing spaces and
//    tabs in the request line, HTTP/0.9 request lines and non-"HTTP/"
//    protocols (RTSP/ICE). The lexer also finds the exact end of the head, so
//    the 431 limit counts exact bytes across feeds, and checks that the method
//    is a token: llhttp gets the method only once its SP has arrived, so an
//    unknown token (501) is told from a non-token (400) however it is split,
//  * the chunked-body framing llhttp 8.1 does not check: it takes any two
//    bytes after chunk data as the CRLF ("5\r\nhelloXX0\r\n\r\n" passes), any
//    byte after a chunk line's CR as its LF ("5\rXhello" passes), and is lax
//    at the end of the trailers. We pause at each chunk header, verify the
//    CRLF ourselves, lex every chunk-size line ourselves (ChunkLineLexer: RFC
//    9112 §7.1.1 extensions, quoted strings included, bounded) and hand llhttp
//    only a canonical "<hex>\r\n", and run the lexer over the trailer section,
//    The lexer also holds back whitespace at the end of each field value
//    (RFC 9110 §5.5): llhttp 8.1 rejects "Content-Length: 5\t" and
//    "Transfer-Encoding: chunked\t", and none of its lenient modes is safe.
//  * the semantic checks llhttp leaves to its user (Host syntax, the
//    absolute-form authority as the Host, request-target form, transfer
//    codings, Content-Length range, Expect, version, size limits, CONNECT,
//    keep-alive from the Connection options, HTAB trimmed too) and the
//    mapping of every failure to the status to answer.
// Every check is made on the byte that decides it and nothing after that byte
// is looked at, so the verdict on a byte stream does not depend on how it was
// split into feeds. Callbacks never let an exception into llhttp's C frames.
#include "proto/http_parser.h"

#include <llhttp.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "proto/chunked.h"

namespace ringhttpd::proto {
namespace {

constexpr int kBadRequest = 400;
constexpr int kPayloadTooLarge = 413;
constexpr int kUriTooLong = 414;
constexpr int kExpectationFailed = 417;
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

// Calls f on each element of a comma-separated list, trimmed (empty ones
// included: "a,,b" gives "a", "", "b"); stops at and returns f's first
// non-zero result.
template <typename F>
int ForEachElement(std::string_view list, F f) {
  for (;;) {
    size_t comma = list.find(',');
    if (int r = f(Trim(list.substr(0, comma))); r != 0) return r;
    if (comma == std::string_view::npos) return 0;
    list.remove_prefix(comma + 1);
  }
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
    size_t ok = 0;                    // leading bytes accepted
    size_t hold = 0;                  // the last of them are held back (see ScanValue)
    bool release = false;             // nothing accepted: the held bytes go first
    bool head_end = false;            // they end with the head's final LF
    bool method_end = false;          // they end with the SP after the method
    const char* violation = nullptr;  // if set, byte `ok` is rejected (400)
  };

  // Consumes bytes up to the end of the head, the SP after the method,
  // whitespace at the end of a field value (held), or the first bad byte.
  Result Scan(std::string_view bytes) {
    Result r;
    while (r.ok < bytes.size()) {
      if (state_ == State::kValue) {
        if (ScanValue(bytes, r)) return r;
      } else {
        r.ok += Run(bytes.substr(r.ok));
      }
      if (r.ok == bytes.size()) break;
      r.violation = Step(bytes[r.ok]);
      if (r.violation != nullptr) return r;
      ++r.ok;
      r.head_end = state_ == State::kDone;
      r.method_end = state_ == State::kRequestLine && spaces_ == 1 && token_len_ == 0;
      if (r.head_end || r.method_end) return r;
    }
    return r;
  }

  bool done() const { return state_ == State::kDone; }
  bool at_start() const { return state_ == State::kStart; }
  // Leading empty lines or the method: bytes llhttp has not been given yet.
  bool before_target() const {
    return state_ == State::kStart || state_ == State::kStartCr ||
           (state_ == State::kRequestLine && spaces_ == 0);
  }
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
        if (c == '\n') return kBareLf;
        held_ = 0;  // the CR: held whitespace was trailing, llhttp never sees it
        return c == '\r' ? Go(State::kValueCr) : nullptr;
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

  // Inside a field value: accepts its bytes up to the CR (or LF, or the end
  // of `bytes`) into r.ok. Whitespace at the end of a value is not part of
  // it (RFC 9110 §5.5), and llhttp must not see it: it takes SP but not HTAB
  // after a Content-Length or "chunked", and rejects those requests. So such
  // bytes are accepted but held (r.hold; held_ counts them across feeds)
  // until the next byte decides: the CR drops them (Step), any other byte
  // releases them to llhttp first (r.release, nothing accepted). True when
  // Scan must return now.
  bool ScanValue(std::string_view bytes, Result& r) {
    const std::string_view s = bytes.substr(r.ok);
    const size_t end = ValueEnd(s);
    size_t ws = 0;
    while (ws < end && IsWs(s[end - 1 - ws])) ++ws;
    if (held_ > 0 && ws < end) {  // the held whitespace was inside the value
      held_ = 0;
      r.release = true;
      return true;
    }
    r.ok += end;
    if (ws == 0) return false;
    held_ += ws;
    r.hold = ws;
    return true;
  }

  // Where a value's bytes end in `s`: its CR, a (bare, rejected) LF, or the
  // end of `s`. Most of a head's bytes: memchr, vectorised.
  static size_t ValueEnd(std::string_view s) {
    const char* cr = static_cast<const char*>(std::memchr(s.data(), '\r', s.size()));
    const size_t end = cr != nullptr ? static_cast<size_t>(cr - s.data()) : s.size();
    const char* lf = static_cast<const char*>(std::memchr(s.data(), '\n', end));
    return lf != nullptr ? static_cast<size_t>(lf - s.data()) : end;
  }

  // The leading bytes of `s` that Step would accept one by one without a
  // change of state (inside a header name or a token of the request line),
  // taken at once: the same verdicts, without a call per byte.
  size_t Run(std::string_view s) {
    size_t i = 0;
    switch (state_) {
      case State::kName:
        while (i < s.size() && s[i] != ':' && !IsWs(s[i]) && s[i] != '\r' && s[i] != '\n') ++i;
        return i;
      case State::kRequestLine:
        return RunRequestLine(s);
      default:
        return 0;
    }
  }

  // Inside a request-line token: the method's tchars, the target up to its
  // limit (the byte past it is Step's: 414), the version's bytes (its
  // "HTTP/" checked here); a space, tab, CR or LF is Step's.
  size_t RunRequestLine(std::string_view s) {
    const auto plain = [](char c) { return c != ' ' && c != '\t' && c != '\r' && c != '\n'; };
    size_t i = 0;
    if (spaces_ == 0) {
      while (i < s.size() && is_tchar(s[i])) ++i;
    } else if (spaces_ == 1) {
      if (token_len_ >= max_target_) return 0;
      const size_t room = std::min<size_t>(s.size(), max_target_ - token_len_);
      while (i < room && plain(s[i])) ++i;
    } else {
      while (i < s.size() && plain(s[i]) &&
             (token_len_ + i >= kHttpName.size() || s[i] == kHttpName[token_len_ + i])) {
        ++i;
      }
    }
    token_len_ += static_cast<uint32_t>(i);
    return i;
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
    if (spaces_ == 0 && !is_tchar(c)) return "invalid character in method";
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
    if (c == ':') return "empty header name";
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
  size_t held_ = 0;         // whitespace at the end of the current value (ScanValue)
};

// The longest method llhttp knows is 13 bytes; a longer token is unknown.
constexpr uint32_t kMethodHold = 24;  // method + SP held back from llhttp

constexpr size_t kNoField = ~size_t{0};
constexpr size_t kTarget = 0;

// What is known about the request being parsed; reset when it completes.
struct RequestState {
  RequestHead req;  // views into the data fed, or into its own storage
  // The field spans are going to (kTarget, then 2 per header: name, value),
  // and whether it lies in req's storage (it was cut by the end of a feed).
  size_t open_field = kNoField;
  bool open_owned = false;
  char method[kMethodHold] = {};  // method + SP, until the SP arrives
  uint32_t method_len = 0;        // bytes of the method + SP (may pass kMethodHold)
  std::string version;            // on_version text, to tell 505 from 400
  bool version_done = false;      // on_version_complete seen
  bool in_field = false;          // last header span was a name
  bool headers_done = false;      // header callbacks now carry trailers
  bool started = false;           // on_message_begin seen
  bool wants_continue = false;
  int hosts = 0;
  bool connection_close = false;       // a Connection option "close"
  bool connection_keep_alive = false;  // a Connection option "keep-alive"
  bool keep_alive = true;              // the verdict, from the end of the head
  bool upgrade = false;                // the head's `upgrade` (RequestHead::upgrade)
  std::string_view authority;          // of an absolute-form target (a view into it)
  uint32_t head_bytes = 0;             // bytes since the previous request ended
  uint32_t trailer_bytes = 0;          // bytes of the trailer section so far
  uint64_t body_bytes = 0;             // decoded body bytes so far
  uint64_t chunk_left = 0;             // data bytes of the current chunk still to come
  uint8_t crlf_seen = 0;               // bytes of the CRLF after chunk data seen
  ChunkLineLexer chunk_line;           // the current chunk-size line
};

// Where in a request the next byte belongs; decides who looks at it first.
enum class Phase : uint8_t {
  kHead,       // lexer, then llhttp (the method only once complete)
  kBody,       // llhttp alone: Content-Length body
  kChunkSize,  // ChunkLineLexer; llhttp gets a canonical size line
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

  // `consumed` (if given): stop after the first request completed and say
  // how many bytes that took.
  bool Feed(std::string_view data, RequestEvents& out, size_t* consumed = nullptr,
            bool one_request = true, bool upgrade_stops = false);
  int status() const { return status_; }
  std::string_view reason() const { return reason_; }
  bool mid_request() const { return cur_.started && status_ == 0; }
  // A request the caller is done with: its buffers become the next one's.
  void Recycle(RequestHead&& done);
  bool wants_continue() const { return cur_.wants_continue && status_ == 0; }
  // The request being parsed (or that failed) said HEAD: its answer, even an
  // error, carries no body (RFC 9110 9.3.2).
  bool head_request() const {
    return cur_.method_len == 5 && std::string_view(cur_.method, 5) == "HEAD ";
  }
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
  int OnBody(std::string_view s);
  int OnMessageComplete();

 private:
  void ReuseSpare(RequestHead& req);
  void AppendSpan(size_t field, std::string_view& to, std::string_view s);
  void OwnPartialHead();
  size_t Step(std::string_view data);
  size_t FeedLexed(std::string_view data, uint32_t& counter, const char* too_large);
  size_t FeedMethod(std::string_view data, uint32_t& counter);
  void HoldMethodByte(char c);
  void ReleaseMethod();
  size_t FeedChunkSize(std::string_view data);
  void ExecuteChunkSize(uint64_t size);
  size_t FeedChunkData(std::string_view data);
  size_t FeedChunkCrlf(std::string_view data);
  size_t Execute(std::string_view bytes);
  void FailFromLlhttp(llhttp_errno_t err);
  int VersionErrorStatus() const;
  int CheckTarget();
  int CheckAbsoluteForm(std::string_view target);
  int CheckHost();
  void UseAuthorityAsHost();
  void NoteConnectionOptions(std::string_view value);
  int CheckTransferEncoding();
  int CheckContentLength();
  int CheckExpect();
  bool KeepAlive() const;
  int CheckBodyGrowth(uint64_t more);

  ParserLimits limits_;
  llhttp_t parser_{};
  HeadLexer lexer_;
  RequestState cur_;
  std::vector<RequestHead> spares_;  // finished requests' buffers, for the next ones (Recycle)
  // Whitespace the lexer holds at the end of a field value (Result::hold):
  // given to llhttp only if a byte of the value follows it. Short (SSO).
  std::string held_ws_;
  RequestEvents* out_ = nullptr;
  int status_ = 0;
  std::string_view reason_;
  Phase phase_ = Phase::kHead;
  bool closed_ = false;         // a request without keep-alive ended the stream
  bool ended_upgrade_ = false;  // an upgrade request ended in this Feed (Feed's upgrade_stops)
  bool reset_llhttp_ = false;   // a request ended: llhttp starts afresh at the next
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

bool Parser::Feed(std::string_view data, RequestEvents& out, size_t* consumed, bool one_request,
                  bool upgrade_stops) {
  if (consumed != nullptr) *consumed = 0;
  if (status_ != 0) return false;
  out_ = &out;
  const size_t had = out.completed;
  int stalls = 0;
  ended_upgrade_ = false;
  while (!data.empty() && status_ == 0 && !closed_) {
    if (consumed != nullptr && one_request && out.completed != had) break;
    if (upgrade_stops && ended_upgrade_) break;
    size_t used = Step(data);
    data.remove_prefix(used);
    if (consumed != nullptr) *consumed += used;
    stalls = used == 0 ? stalls + 1 : 0;
    if (stalls > 1 && status_ == 0) Fail(kInternalError, "parser made no progress");
  }
  if (status_ == 0) OwnPartialHead();
  out_ = nullptr;
  return status_ == 0;
}

// A head the data ended inside of borrows bytes the caller may now reuse:
// they move into the head's own storage, the field still open last, so the
// next feed's first span continues it there.
void Parser::OwnPartialHead() {
  if (!cur_.started || cur_.headers_done) return;
  cur_.req.own();
  cur_.open_owned = cur_.open_field != kNoField;
}

// A span of field `field` (`to`): the first one is a view into the data;
// the next, in the same feed, extends it; one after a feed ended inside it
// is appended to the head's storage, where the field now is.
void Parser::AppendSpan(size_t field, std::string_view& to, std::string_view s) {
  if (cur_.open_field != field) {
    cur_.open_field = field;
    cur_.open_owned = false;
    to = s;
    return;
  }
  // llhttp also ends a span where a feed ends: an empty one may follow
  // bytes held back from it (whitespace at the end of a value).
  if (s.empty()) return;
  if (!cur_.open_owned && to.data() + to.size() != s.data()) {
    cur_.req.own();  // not contiguous: never seen, but never read amiss either
    cur_.open_owned = true;
  }
  if (cur_.open_owned) {
    cur_.req.append_owned(to, s);
  } else {
    to = std::string_view(to.data(), to.size() + s.size());
  }
}

size_t Parser::Step(std::string_view data) {
  switch (phase_) {
    case Phase::kHead:
      return FeedLexed(data, cur_.head_bytes, "request head too large");
    case Phase::kTrailers:
      return FeedLexed(data, cur_.trailer_bytes, "trailer section too large");
    case Phase::kChunkSize:
      return FeedChunkSize(data);
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
  data = data.substr(0, budget);
  if (lexer_.before_target()) return FeedMethod(data, counter);
  HeadLexer::Result r = lexer_.Scan(data);
  if (r.release) {  // whitespace held at the end of a value was inside it
    if (Execute(held_ws_) != held_ws_.size() && status_ == 0) {
      Fail(kInternalError, "held whitespace not taken");
    }
    held_ws_.clear();
    if (status_ != 0) return 0;
    r = lexer_.Scan(data);  // nothing is held now: no second release
  }
  counter += static_cast<uint32_t>(r.ok);  // before Execute: completion resets it
  Phase before = phase_;
  const size_t give = r.ok - r.hold;  // llhttp's; the rest is held
  size_t used = give == 0 ? 0 : Execute(data.substr(0, give));
  if (status_ != 0) return used;
  if (r.violation != nullptr) {
    Fail(r.violation == HeadLexer::kTargetTooLong ? kUriTooLong : kBadRequest, r.violation);
    return used;
  }
  if (used != give || (r.head_end && lexer_.done() && phase_ == before)) {
    Fail(kBadRequest, "malformed request head");  // lexer and llhttp disagree
    return used;
  }
  // Bytes before this hold ended any earlier one (at its CR: dropped).
  if (give > 0) held_ws_.clear();
  // Kept as bytes: the data is the caller's, and a release needs them.
  if (r.hold > 0) held_ws_.append(data.substr(give, r.hold));
  return r.ok;
}

// Leading empty lines and the method, held back from llhttp until the SP
// after the method: a token llhttp does not know is then 501, and a byte that
// cannot be in a token is 400, each decided on its own byte.
size_t Parser::FeedMethod(std::string_view data, uint32_t& counter) {
  HeadLexer::Result r = lexer_.Scan(data);
  counter += static_cast<uint32_t>(r.ok);
  for (char c : data.substr(0, r.ok)) HoldMethodByte(c);
  if (r.violation != nullptr) {
    Fail(kBadRequest, r.violation);
  } else if (r.method_end) {
    ReleaseMethod();
  }
  return r.ok;
}

void Parser::HoldMethodByte(char c) {
  if (c == '\r' || c == '\n') return;  // a leading empty line: llhttp needs none
  cur_.started = true;
  if (cur_.method_len < kMethodHold) cur_.method[cur_.method_len] = c;
  ++cur_.method_len;
}

// The method is a token (the lexer saw to it); llhttp knows it or it is 501.
void Parser::ReleaseMethod() {
  if (cur_.method_len > kMethodHold) {
    Fail(kNotImplemented, "method not implemented");
    return;
  }
  std::string_view method(cur_.method, cur_.method_len);
  size_t used = Execute(method);  // HPE_INVALID_METHOD is 501 (FailFromLlhttp)
  if (status_ == 0 && used != method.size()) Fail(kInternalError, "method not taken");
}

size_t Parser::FeedChunkSize(std::string_view data) {
  ChunkLineLexer& line = cur_.chunk_line;
  ChunkLineLexer::Result r = line.Scan(data, limits_.max_header_bytes);
  if (r.violation == ChunkLineLexer::kExtensionsTooLarge) {
    Fail(kPayloadTooLarge, r.violation);
  } else if (r.violation != nullptr) {
    Fail(kBadRequest, r.violation);
  } else if (r.line_end) {
    uint64_t size = line.size();
    line.NextLine();
    ExecuteChunkSize(size);
  }
  return r.ok;
}

// llhttp gets "<size in hex>\r\n" for a checked chunk-size line; it calls
// OnChunkHeader at the LF, which pauses there.
void Parser::ExecuteChunkSize(uint64_t size) {
  char line[24];
  char* end = std::to_chars(line, line + 16, size, 16).ptr;
  *end++ = '\r';
  *end++ = '\n';
  std::string_view bytes(line, static_cast<size_t>(end - line));
  size_t used = Execute(bytes);
  if (status_ == 0 && used != bytes.size()) Fail(kInternalError, "chunk size line not taken");
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
    phase_ = Phase::kChunkSize;
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
      if (reset_llhttp_) {
        llhttp_reset(&parser_);  // keeps the settings and `data`
        reset_llhttp_ = false;
      } else {
        llhttp_resume(&parser_);
      }
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
  } else if (err == HPE_INVALID_METHOD) {
    // llhttp sees a method only once the lexer has found it a whole token.
    Fail(kNotImplemented, "method not implemented");
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

// The method's bytes are those held back (ReleaseMethod); its name is llhttp's
// (static) once complete.
int Parser::OnMethod(std::string_view) { return 0; }

int Parser::OnMethodComplete() {
  const auto method = static_cast<llhttp_method_t>(parser_.method);
  cur_.req.method = llhttp_method_name(method);
  // We are an origin server, not a proxy; llhttp would also hand the rest of
  // the connection over as a tunnel.
  if (method == HTTP_CONNECT) return Fail(kNotImplemented, "CONNECT not supported");
  // RTSP methods, which llhttp knows but refuses later on an HTTP/ line.
  if (parser_.method >= HTTP_DESCRIBE && parser_.method <= HTTP_FLUSH) {
    return Fail(kNotImplemented, "method not implemented");
  }
  return 0;
}

int Parser::OnUrl(std::string_view s) {
  AppendSpan(kTarget, cur_.req.target, s);  // its length is bounded by the lexer
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
  AppendSpan(2 * cur_.req.headers.size() - 1, cur_.req.headers.back().name, s);
  return 0;
}

int Parser::OnHeaderValue(std::string_view s) {
  if (cur_.headers_done) return 0;
  cur_.in_field = false;
  AppendSpan(2 * cur_.req.headers.size(), cur_.req.headers.back().value, s);
  return 0;
}

int Parser::OnHeaderValueComplete() {
  cur_.in_field = false;
  if (cur_.headers_done) return 0;
  HeaderView& h = cur_.req.headers.back();
  h.value = Trim(h.value);
  if (iequals(h.name, "Host")) {
    ++cur_.hosts;
  } else if (iequals(h.name, "Connection")) {
    NoteConnectionOptions(h.value);
  }
  return 0;
}

// Connection = #connection-option (RFC 9110 §7.6.1): a comma list over all
// Connection lines, options compared case-insensitively, OWS (SP and HTAB)
// around each trimmed. llhttp's own flags are not used for keep-alive: it
// trims only SP, so "close\t" kept the connection open. No allocation.
void Parser::NoteConnectionOptions(std::string_view value) {
  ForEachElement(value, [this](std::string_view option) {
    if (iequals(option, "close")) {
      cur_.connection_close = true;
    } else if (iequals(option, "keep-alive")) {
      cur_.connection_keep_alive = true;
    }
    return 0;
  });
}

int Parser::OnHeadersComplete() {
  cur_.headers_done = true;
  RequestHead& req = cur_.req;
  if (!cur_.version_done) return Fail(kBadRequest, "request line without HTTP version");
  if (CheckTarget() != 0 || CheckHost() != 0 || CheckTransferEncoding() != 0 ||
      CheckContentLength() != 0 || CheckExpect() != 0) {
    return -1;
  }
  UseAuthorityAsHost();
  bool chunked = (parser_.flags & F_CHUNKED) != 0;
  bool has_body = chunked || parser_.content_length > 0;
  // RFC 9110 §10.1.1: never send 100 Continue to an HTTP/1.0 client.
  cur_.wants_continue = req.expect_continue && req.version_minor == 1 && has_body;
  phase_ = chunked ? Phase::kChunkSize : Phase::kBody;
  cur_.keep_alive = KeepAlive();
  req.keep_alive = cur_.keep_alive;
  // llhttp sets `upgrade` before this callback (Connection: upgrade and an
  // Upgrade header; CONNECT never gets here). Only a GET without a body is
  // an upgrade this server can take over (a WebSocket handshake).
  cur_.upgrade = parser_.upgrade != 0 && req.method == "GET" && !has_body;
  req.upgrade = cur_.upgrade;
  const uint64_t length = chunked ? kUnknownBodyLength : parser_.content_length;
  out_->heads.push_back(std::move(req));
  out_->events.push_back(RequestEvent{RequestEvent::Kind::head, length, {}});
  return 0;
}

// origin-form ("/x") or absolute-form ("http://h/x"); asterisk-form ("*")
// only for OPTIONS. llhttp has refused authority-form outside CONNECT (which
// is 501) and any other start, but it takes "*/x" and "http:///x".
int Parser::CheckTarget() {
  std::string_view target = cur_.req.target;
  if (target.front() == '/') return 0;
  if (target.front() == '*') {
    if (target != "*") return Fail(kBadRequest, "invalid asterisk-form target");
    if (cur_.req.method != "OPTIONS") {
      return Fail(kBadRequest, "asterisk-form target outside OPTIONS");
    }
    return 0;
  }
  return CheckAbsoluteForm(target);
}

// RFC 9110 §4.2.1: an http(s) URI with an empty host is invalid; §4.2.4:
// userinfo is treated as an error. The rest of the authority is checked as a
// Host value is (valid_host). It then replaces Host (UseAuthorityAsHost).
int Parser::CheckAbsoluteForm(std::string_view target) {
  constexpr std::string_view kSep = "://";
  size_t sep = target.find(kSep);
  if (sep == std::string_view::npos) return Fail(kBadRequest, "invalid request target");
  std::string_view authority = target.substr(sep + kSep.size());
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos) {
    return Fail(kBadRequest, "userinfo in request target");
  }
  if (authority.empty() || authority.front() == ':') {
    return Fail(kBadRequest, "empty host in request target");
  }
  if (!valid_host(authority)) return Fail(kBadRequest, "invalid host in request target");
  cur_.authority = authority;
  return 0;
}

// RFC 9112 §3.2.2: with an absolute-form target the server MUST ignore the
// Host field and use the target's authority. The Host value becomes a view
// of the authority inside the target (no copy; it moves and is owned with
// the target), so routing, the service, the proxy's Host and
// X-Forwarded-Host all see one host. A request without Host (HTTP/1.0) gets
// one. The received value was still checked first: an invalid Host is a 400
// whatever the target (RFC 9112 §3.2).
void Parser::UseAuthorityAsHost() {
  if (cur_.authority.empty()) return;
  for (HeaderView& h : cur_.req.headers) {
    if (iequals(h.name, "Host")) {
      h.value = cur_.authority;
      return;
    }
  }
  cur_.req.headers.push_back(HeaderView{"Host", cur_.authority});
}

int Parser::CheckHost() {
  if (cur_.hosts > 1) return Fail(kBadRequest, "more than one Host header");
  if (cur_.hosts == 0) {
    return cur_.req.version_minor == 1 ? Fail(kBadRequest, "HTTP/1.1 request without Host") : 0;
  }
  if (!valid_host(cur_.req.header("Host"))) return Fail(kBadRequest, "invalid Host header");
  return 0;
}

// llhttp accepts "gzip, chunked" (chunked last), an empty value and empty
// list elements (", chunked"), and rejects "gzip" alone only after this
// callback. We decode nothing but chunked, so any other coding is 501 (RFC
// 9112 §6.1), and an empty value or element -- a way to hide a coding from a
// lax peer -- is 400. "chunked" not last or twice is rejected by llhttp (400),
// and so is Transfer-Encoding with Content-Length.
int Parser::CheckTransferEncoding() {
  for (const HeaderView& h : cur_.req.headers) {
    if (!iequals(h.name, "Transfer-Encoding")) continue;
    if (cur_.req.version_minor == 0) return Fail(kBadRequest, "Transfer-Encoding in HTTP/1.0");
    int r = ForEachElement(h.value, [this](std::string_view coding) {
      if (coding.empty()) return Fail(kBadRequest, "empty element in Transfer-Encoding");
      if (!iequals(coding, "chunked")) return Fail(kNotImplemented, "unsupported transfer coding");
      return 0;
    });
    if (r != 0) return r;
  }
  return 0;
}

// Content-Length is 1*DIGIT: llhttp rejects signs, spaces, empty values,
// lists and values past 2^64, and any second Content-Length line. Decision:
// a list of identical values ("5, 5") and repeated identical lines are
// rejected (400) like differing ones, not folded into one (RFC 9112 §6.3
// allows either). Values of 2^63 and above are malformed (400), not merely
// too large; smaller ones over the limit are 413, before any body byte.
int Parser::CheckContentLength() {
  if ((parser_.flags & F_CONTENT_LENGTH) == 0) return 0;
  if (parser_.content_length > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Fail(kBadRequest, "Content-Length out of range");
  }
  if (parser_.content_length > limits_.max_body_bytes) {
    return Fail(kPayloadTooLarge, "Content-Length above limit");
  }
  return 0;
}

// RFC 9110 §10.1.1: 100-continue (any case) is the only expectation; any
// other member of any Expect line is 417. Empty members are ignored.
int Parser::CheckExpect() {
  for (const HeaderView& h : cur_.req.headers) {
    if (!iequals(h.name, "Expect")) continue;
    int r = ForEachElement(h.value, [this](std::string_view expectation) {
      if (expectation.empty()) return 0;
      if (!iequals(expectation, "100-continue")) {
        return Fail(kExpectationFailed, "unsupported expectation");
      }
      cur_.req.expect_continue = true;
      return 0;
    });
    if (r != 0) return r;
  }
  return 0;
}

// ---- body ----

int Parser::CheckBodyGrowth(uint64_t more) {
  if (more > limits_.max_body_bytes - cur_.body_bytes) {
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

int Parser::OnBody(std::string_view s) {
  if (CheckBodyGrowth(s.size()) != 0) return -1;
  cur_.body_bytes += s.size();
  if (!s.empty()) out_->events.push_back(RequestEvent{RequestEvent::Kind::body, s.size(), s});
  return 0;
}

// Emits the request and pauses llhttp, so Execute() returns exactly where the
// next request starts.
int Parser::OnMessageComplete() {
  // Bytes after a request that ends the connection are never interpreted.
  closed_ = !cur_.keep_alive;
  ended_upgrade_ = cur_.upgrade;
  // The next request starts llhttp afresh (Execute): its own keep-alive
  // verdict, which trims only SP around Connection options, is never used.
  reset_llhttp_ = true;
  out_->events.push_back(RequestEvent{RequestEvent::Kind::end, cur_.body_bytes, {}});
  ++out_->completed;
  cur_ = RequestState();
  ReuseSpare(cur_.req);
  lexer_.Reset();
  phase_ = Phase::kHead;
  return HPE_PAUSED;
}

// Several spares: pipelined requests are all parsed from one read before
// the caller is done with the first, so each of a batch takes one the
// previous batch gave back. Only small ones are kept (a long target or many
// headers are not kept for every request), and only so many.
// What they may hold is bounded: the first spare up to 4 KiB of storage and
// 64 headers' room, the others (only for pipelining) 16 headers' room and
// no storage, about 14 KiB in all per connection, freed with the parser
// when the connection goes idle.
void Parser::Recycle(RequestHead&& done) {
  constexpr size_t kKeepBytes = 4096;
  constexpr size_t kKeepHeaders = 64;
  constexpr size_t kMaxSpares = 16;
  constexpr size_t kKeepHeadersMore = 16;
  const bool keep = spares_.empty() ? done.storage_capacity() <= kKeepBytes &&
                                          done.headers.capacity() <= kKeepHeaders
                                    : spares_.size() < kMaxSpares && done.storage_capacity() == 0 &&
                                          done.headers.capacity() <= kKeepHeadersMore;
  if (keep) spares_.push_back(std::move(done));
}

// A fresh request in `req`, on a spare's capacity when there is one; else
// with room for a usual head's headers in one allocation.
void Parser::ReuseSpare(RequestHead& req) {
  constexpr size_t kUsualHeaders = 8;
  if (spares_.empty()) {
    req.headers.reserve(kUsualHeaders);
    return;
  }
  req = std::move(spares_.back());
  spares_.pop_back();
  req.clear();
}

// RFC 9112 §9.3: "close" ends the connection in every version (llhttp 8.1
// kept an HTTP/1.0 one open on "keep-alive, close"); HTTP/1.1 persists by
// default, HTTP/1.0 only with "keep-alive". Decided on the options the
// header callbacks noted (NoteConnectionOptions), not on llhttp's flags.
bool Parser::KeepAlive() const {
  if (cur_.connection_close) return false;
  return cur_.req.version_minor >= 1 || cur_.connection_keep_alive;
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

void RequestEvents::clear() {
  heads.clear();
  events.clear();
  completed = 0;
}

bool RequestParser::feed_events(std::string_view data, RequestEvents& out, size_t* consumed) {
  if (consumed != nullptr) *consumed = 0;
  try {
    if (!impl_) impl_ = std::make_unique<Impl>(limits_);
    return impl_->parser.Feed(data, out, consumed);
  } catch (...) {  // e.g. out.events.push_back failing outside a callback
    if (impl_) impl_->parser.Fail(kInternalError, "out of memory");
    return false;
  }
}

bool RequestParser::feed_events(std::string_view data, RequestEvents& out, size_t& consumed,
                                bool one_request) {
  consumed = 0;
  try {
    if (!impl_) impl_ = std::make_unique<Impl>(limits_);
    return impl_->parser.Feed(data, out, &consumed, one_request, /*upgrade_stops=*/true);
  } catch (...) {
    if (impl_) impl_->parser.Fail(kInternalError, "out of memory");
    return false;
  }
}

// Whole requests from the events: bodies are joined into their request. A
// request whose end has not arrived yet stays in `partial_` until it does.
bool RequestParser::collect(std::string_view data, std::vector<HttpRequest>& out,
                            size_t* consumed) {
  scratch_.clear();
  const bool ok = feed_events(data, scratch_, consumed);
  size_t next_head = 0;
  for (const RequestEvent& e : scratch_.events) {
    switch (e.kind) {
      case RequestEvent::Kind::head:
        partial_ = scratch_.heads[next_head++].to_request();
        break;
      case RequestEvent::Kind::body:
        partial_.body.append(e.piece);
        break;
      case RequestEvent::Kind::end:
        out.push_back(std::move(partial_));
        partial_ = HttpRequest();
        break;
    }
  }
  return ok;
}

bool RequestParser::feed(std::string_view data, std::vector<HttpRequest>& out) {
  return collect(data, out, nullptr);
}

bool RequestParser::feed_one(std::string_view data, std::vector<HttpRequest>& out,
                             size_t& consumed) {
  return collect(data, out, &consumed);
}

void RequestParser::release_if_idle() {
  if (impl_ && impl_->parser.idle()) impl_.reset();
}

int RequestParser::error_status() const { return impl_ ? impl_->parser.status() : 0; }

std::string_view RequestParser::error_reason() const {
  return impl_ ? impl_->parser.reason() : std::string_view();
}

bool RequestParser::mid_request() const { return impl_ && impl_->parser.mid_request(); }

void RequestParser::recycle(RequestHead&& done) {
  if (impl_) impl_->parser.Recycle(std::move(done));
}

bool RequestParser::wants_continue() const { return impl_ && impl_->parser.wants_continue(); }

bool RequestParser::head_request() const { return impl_ && impl_->parser.head_request(); }

std::span<const std::string_view> accepted_methods() {
  static const std::vector<std::string_view> methods = [] {
    std::vector<std::string_view> out = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"};
    const auto add = [&out](std::string_view m) {
      if (m != "CONNECT" && std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
    };
#define RINGHTTPD_ADD_METHOD(num, name, string) add(#string);
    HTTP_METHOD_MAP(RINGHTTPD_ADD_METHOD)
#undef RINGHTTPD_ADD_METHOD
    return out;
  }();
  return methods;
}

}  // namespace ringhttpd::proto
