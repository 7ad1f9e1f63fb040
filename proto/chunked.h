// Chunked transfer coding (RFC 9112 §7.1), byte by byte and strict, for
// both directions: ChunkLineLexer checks one chunk-size line (the request
// parser, proto/http_parser.cc, runs it ahead of llhttp), and ChunkedDecoder
// decodes a whole chunked body with its trailer section (the proxy, for an
// upstream's response). llhttp 8.1 is lax exactly here: it takes any two
// bytes after chunk data as the CRLF ("5\r\nhelloXX0\r\n\r\n" passes),
// any byte after a chunk line's CR as its LF, and rejects BWS before ";"
// that RFC 9112 allows. Pure: no allocation, no I/O; every verdict is made
// on the byte that decides it, however the input is split.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

#include "proto/http_request.h"

namespace ringhttpd::proto {

inline bool chunk_ws(char c) { return c == ' ' || c == '\t'; }

// qdtext (RFC 9110 §5.6.4): HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text.
inline bool is_qdtext(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return c == '\t' || c == ' ' || c == '!' || (u >= 0x23 && u <= 0x7e && c != '\\') || u >= 0x80;
}

// What may follow "\" in a quoted-pair: HTAB / SP / VCHAR / obs-text.
inline bool is_quoted_pair_char(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return c == '\t' || (u >= 0x20 && u != 0x7f);
}

// One chunk-size line, byte by byte (RFC 9112 §7.1.1):
//   chunk-size [ chunk-ext ] CRLF
//   chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//   chunk-ext-val = token / quoted-string
// llhttp 8.1 takes any byte after the CR as the LF, accepts an empty
// extension name and rejects BWS, quoted-pairs and empty quoted strings, so
// it never sees these lines: the parser hands it "<size in hex>\r\n" instead.
// Extensions are checked and dropped; their bytes over the whole request are
// bounded (cf. CVE-2024-22019).
class ChunkLineLexer {
 public:
  // An array, not a pointer to a literal: callers compare the address, and
  // an inline array is one object in the program, while a literal's copies
  // in different translation units need not be merged (the inline Scan
  // the linker keeps may come from another one).
  static constexpr char kExtensionsTooLarge[] = "chunk extensions too large";
  static constexpr uint32_t kMaxSizeDigits = 32;  // leading zeros included

  struct Result {
    size_t ok = 0;                    // leading bytes accepted
    bool line_end = false;            // they end with the line's LF
    const char* violation = nullptr;  // if set, byte `ok` is rejected
  };

  // Consumes bytes up to the end of the line or the first bad byte;
  // `extension_budget` bounds the extension bytes of all lines so far.
  Result Scan(std::string_view bytes, uint64_t extension_budget) {
    Result r;
    while (r.ok < bytes.size()) {
      r.violation = Step(bytes[r.ok]);
      if (r.violation == nullptr && in_extension() && ++extension_bytes_ > extension_budget) {
        r.violation = kExtensionsTooLarge;
      }
      if (r.violation != nullptr) return r;
      ++r.ok;
      r.line_end = state_ == State::kDone;
      if (r.line_end) return r;
    }
    return r;
  }

  uint64_t size() const { return size_; }
  uint64_t extension_bytes() const { return extension_bytes_; }
  bool in_extension() const {
    return state_ != State::kSize && state_ != State::kCr && state_ != State::kDone;
  }
  // Ready for the next line; the extension bytes keep adding up.
  void NextLine() {
    state_ = State::kSize;
    size_ = 0;
    digits_ = 0;
  }

 private:
  enum class State : uint8_t {
    kSize,         // hex digits
    kBeforeSemi,   // BWS, then ";"
    kBeforeName,   // after ";": BWS, then a name
    kName,         // chunk-ext-name
    kAfterName,    // BWS, then "=" or ";"
    kBeforeValue,  // after "=": BWS, then a token or a quoted string
    kToken,        // token value
    kQuoted,       // inside a quoted string
    kQuotedPair,   // after "\" in a quoted string
    kAfterQuoted,  // after the closing DQUOTE
    kCr,           // CR seen, LF expected
    kDone,
  };

  const char* Step(char c) {
    switch (state_) {
      case State::kSize:
        return StepSize(c);
      case State::kBeforeSemi:
        return chunk_ws(c) ? nullptr : Semi(c);
      case State::kBeforeName:
        return chunk_ws(c) ? nullptr : Name(c);
      case State::kName:
        return is_tchar(c) ? nullptr : AfterName(c);
      case State::kAfterName:
        return chunk_ws(c) ? nullptr : AfterName(c);
      case State::kBeforeValue:
        return chunk_ws(c) ? nullptr : Value(c);
      case State::kToken:
        return is_tchar(c) ? nullptr : AfterValue(c);
      case State::kQuoted:
        return StepQuoted(c);
      case State::kQuotedPair:
        return is_quoted_pair_char(c) ? Go(State::kQuoted)
                                      : "invalid quoted-pair in chunk extension";
      case State::kAfterQuoted:
        return AfterValue(c);
      case State::kCr:
        return c == '\n' ? Go(State::kDone) : "chunk line not ended by CRLF";
      case State::kDone:
        break;
    }
    return "bytes after the end of the chunk line";
  }

  const char* Go(State next) {
    state_ = next;
    return nullptr;
  }

  const char* StepSize(char c) {
    int digit = hex_value(c);
    if (digit < 0) return digits_ == 0 ? "invalid chunk size" : AfterValue(c);
    if (size_ > (std::numeric_limits<uint64_t>::max() >> 4)) return "chunk size overflow";
    if (++digits_ > kMaxSizeDigits) return "chunk size too long";
    size_ = (size_ << 4) | static_cast<uint64_t>(digit);
    return nullptr;
  }

  // After the size or a value: BWS, ";" or the CR.
  const char* AfterValue(char c) {
    if (chunk_ws(c)) return Go(State::kBeforeSemi);
    if (c == '\r') return Go(State::kCr);
    return Semi(c);
  }

  const char* Semi(char c) {
    return c == ';' ? Go(State::kBeforeName) : "invalid character in chunk line";
  }

  const char* Name(char c) {
    return is_tchar(c) ? Go(State::kName) : "invalid chunk extension name";
  }

  // After a name, or BWS after it: "=", ";", BWS, or straight after the
  // name the CR.
  const char* AfterName(char c) {
    if (c == '=') return Go(State::kBeforeValue);
    if (c == ';') return Go(State::kBeforeName);
    if (chunk_ws(c)) return Go(State::kAfterName);
    if (c == '\r' && state_ == State::kName) return Go(State::kCr);
    return "invalid chunk extension";
  }

  const char* Value(char c) {
    if (c == '"') return Go(State::kQuoted);
    return is_tchar(c) ? Go(State::kToken) : "invalid chunk extension value";
  }

  const char* StepQuoted(char c) {
    if (c == '"') return Go(State::kAfterQuoted);
    if (c == '\\') return Go(State::kQuotedPair);
    return is_qdtext(c) ? nullptr : "invalid character in quoted chunk extension";
  }

  State state_ = State::kSize;
  uint32_t digits_ = 0;
  uint64_t size_ = 0;
  uint64_t extension_bytes_ = 0;
};

// A whole chunked body, then its trailer section:
//   *( chunk-size [ chunk-ext ] CRLF chunk-data CRLF ) "0" [ chunk-ext ] CRLF
//   *( field-line CRLF ) CRLF
// Every CR must be followed by LF; a trailer line is a token, ":", then
// field-value bytes (HTAB, SP, VCHAR, obs-text). The extension and trailer
// bytes of the whole body are bounded by `meta_budget`. Trailer fields are
// checked and dropped (nothing here forwards them).
class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(uint64_t meta_budget = 16384) : budget_(meta_budget) {}

  struct Result {
    size_t used = 0;              // leading bytes consumed
    bool done = false;            // they end the body (its trailer section's last LF)
    const char* error = nullptr;  // set: byte `used` is rejected, and so is the body
  };

  // Decodes `in`; each run of body bytes goes to `data(std::string_view)`, a
  // view into `in`. Stops at the body's end (done) or at an error; bytes
  // after the end are not looked at.
  template <class Data>
  Result feed(std::string_view in, Data&& data) {
    Result r;
    while (r.used < in.size() && !r.done && r.error == nullptr) {
      if (state_ == State::kData) {
        const size_t n = static_cast<size_t>(
            std::min<uint64_t>(left_, static_cast<uint64_t>(in.size() - r.used)));
        data(in.substr(r.used, n));
        left_ -= n;
        r.used += n;
        if (left_ == 0) state_ = State::kDataCr;
        continue;
      }
      if (state_ == State::kSizeLine) {
        const ChunkLineLexer::Result l = line_.Scan(in.substr(r.used), budget_);
        r.used += l.ok;
        r.error = l.violation;
        if (l.line_end) end_of_size_line();
        continue;
      }
      r.error = step(in[r.used]);
      if (r.error == nullptr) ++r.used;
      r.done = state_ == State::kDone;
    }
    return r;
  }

  bool done() const { return state_ == State::kDone; }
  uint64_t body_bytes() const { return body_; }

 private:
  enum class State : uint8_t {
    kSizeLine,  // ChunkLineLexer
    kData,      // left_ bytes of chunk data
    kDataCr,    // the CRLF after them
    kDataLf,
    kTrailerStart,  // a field name, or the CR of the final CRLF
    kTrailerName,
    kTrailerValue,
    kTrailerLf,
    kFinalLf,
    kDone,
  };

  void end_of_size_line();
  const char* step(char c);

  ChunkLineLexer line_;
  State state_ = State::kSizeLine;
  uint64_t left_ = 0;
  uint64_t body_ = 0;
  uint64_t budget_;
  uint64_t trailer_bytes_ = 0;
};

}  // namespace ringhttpd::proto
