// See chunked.h: the chunked decoder's states after the size line.
#include "proto/chunked.h"

namespace ringhttpd::proto {

void ChunkedDecoder::end_of_size_line() {
  left_ = line_.size();
  line_.NextLine();
  if (left_ == 0) {
    state_ = State::kTrailerStart;  // the last chunk
    return;
  }
  // Never past 2^64 - 1 in all: a count, not a size to allocate.
  body_ = left_ > std::numeric_limits<uint64_t>::max() - body_
              ? std::numeric_limits<uint64_t>::max()
              : body_ + left_;
  state_ = State::kData;
}

// One byte of the CRLFs and the trailer section.
const char* ChunkedDecoder::step(char c) {
  const auto go = [this](State next) -> const char* {
    state_ = next;
    return nullptr;
  };
  // One budget for the extensions and the trailers together.
  if (state_ >= State::kTrailerStart && state_ <= State::kFinalLf &&
      ++trailer_bytes_ + line_.extension_bytes() > budget_) {
    return "trailer section too large";
  }
  switch (state_) {
    case State::kDataCr:
      return c == '\r' ? go(State::kDataLf) : "chunk data not followed by CRLF";
    case State::kDataLf:
      return c == '\n' ? go(State::kSizeLine) : "chunk data not followed by CRLF";
    case State::kTrailerStart:
      if (c == '\r') return go(State::kFinalLf);
      return is_tchar(c) ? go(State::kTrailerName) : "invalid trailer field";
    case State::kTrailerName:
      if (c == ':') return go(State::kTrailerValue);
      return is_tchar(c) ? nullptr : "invalid trailer field name";
    case State::kTrailerValue: {
      if (c == '\r') return go(State::kTrailerLf);
      const auto u = static_cast<unsigned char>(c);
      return c == '\t' || (u >= 0x20 && u != 0x7f) ? nullptr : "invalid trailer field value";
    }
    case State::kTrailerLf:
      return c == '\n' ? go(State::kTrailerStart) : "trailer line not ended by CRLF";
    case State::kFinalLf:
      return c == '\n' ? go(State::kDone) : "trailer section not ended by CRLF";
    default:
      return "bytes after the end of the body";
  }
}

}  // namespace ringhttpd::proto
