// The strict chunked decoder (proto/chunked.h): bodies and trailers decoded
// the same however the input is split, every framing error llhttp 8.1 lets
// through refused on the byte that decides it, and nothing read past the end.
#include "proto/chunked.h"

#include <gtest/gtest.h>

#include <string>

namespace ringhttpd::proto {
namespace {

struct Decoded {
  std::string body;
  size_t used = 0;  // bytes consumed in all
  bool done = false;
  const char* error = nullptr;
};

// Feeds `in` in pieces of `step` bytes (0: whole), as a reader would.
Decoded decode(std::string_view in, size_t step = 0, uint64_t budget = 16384) {
  ChunkedDecoder d(budget);
  Decoded out;
  while (out.used < in.size() && !out.done && out.error == nullptr) {
    const size_t n = step == 0 ? in.size() - out.used : std::min(step, in.size() - out.used);
    const auto r =
        d.feed(in.substr(out.used, n), [&](std::string_view piece) { out.body.append(piece); });
    out.used += r.used;
    out.done = r.done;
    out.error = r.error;
    if (r.used < n && !r.done && r.error == nullptr) break;  // never: a piece is taken whole
  }
  return out;
}

TEST(ChunkedDecoder, DecodesTheSameAtEverySplit) {
  const std::string in =
      "5\r\nhello\r\n6;name=value;q=\"a \\\" b\"\r\n world\r\nA \t; x\r\n0123456789\r\n"
      "0\r\nTrailer-One: 1\r\nX-Sum:\tabc \r\n\r\nNEXT";
  for (size_t step : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{7}}) {
    const Decoded d = decode(in, step);
    EXPECT_TRUE(d.done) << step;
    EXPECT_EQ(d.error, nullptr) << step << ": " << d.error;
    EXPECT_EQ(d.body, "hello world0123456789") << step;
    EXPECT_EQ(d.used, in.size() - 4) << "the bytes after the body are not read (" << step << ")";
  }
}

TEST(ChunkedDecoder, AnEmptyBodyAndOneWithoutTrailers) {
  EXPECT_TRUE(decode("0\r\n\r\n").done);
  const Decoded d = decode("3\r\nabc\r\n0\r\n\r\n");
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.body, "abc");
}

// What llhttp 8.1 lets through, each refused here (the proxy answers 502).
TEST(ChunkedDecoder, BrokenFramingIsRefusedOnTheByteThatDecides) {
  struct Case {
    const char* in;
    size_t at;  // the rejected byte
  };
  const Case cases[] = {
      {"5\r\nhelloXX0\r\n\r\n", 8},      // any two bytes taken as the CRLF
      {"5\r\nhello\rX0\r\n\r\n", 9},     // CR then not LF after the data
      {"5\rXhello\r\n0\r\n\r\n", 2},     // CR then not LF in the size line
      {"5\nhello\r\n0\r\n\r\n", 1},      // a bare LF ending the size line
      {"5\r\nhello\n0\r\n\r\n", 8},      // a bare LF after the data
      {"0\r\n\n", 3},                    // a bare LF ending the trailers
      {"0\r\nX: 1\n\r\n", 7},            // a bare LF ending a trailer line
      {"0\r\n: 1\r\n\r\n", 3},           // an empty trailer name
      {"0\r\nX 1\r\n\r\n", 4},           // a trailer line without a colon
      {"0\r\nX: a\x01\r\n\r\n", 7},      // a control byte in a trailer value
      {"0\r\n\rX", 4},                   // the final CRLF broken
      {"g\r\n", 0},                      // not a size
      {"5;\r\nhello\r\n0\r\n\r\n", 2},   // an empty extension name
      {"5 5\r\nhello\r\n0\r\n\r\n", 2},  // a second size
  };
  for (const Case& c : cases) {
    for (size_t step : {size_t{0}, size_t{1}}) {
      const Decoded d = decode(c.in, step);
      EXPECT_NE(d.error, nullptr) << c.in << " (" << step << ")";
      EXPECT_FALSE(d.done) << c.in;
      EXPECT_EQ(d.used, c.at) << c.in << " (" << step << ")";
    }
  }
}

TEST(ChunkedDecoder, ExtensionAndTrailerBytesAreBounded) {
  const std::string ext = "1;" + std::string(100, 'e') + "\r\nx\r\n0\r\n\r\n";
  EXPECT_TRUE(decode(ext, 0, 200).done);
  EXPECT_NE(decode(ext, 0, 50).error, nullptr);
  const std::string trailers = "0\r\nX: " + std::string(100, 't') + "\r\n\r\n";
  EXPECT_TRUE(decode(trailers, 0, 200).done);
  EXPECT_NE(decode(trailers, 0, 50).error, nullptr);
  // One budget for both: 100 extension bytes and 100 trailer bytes do not fit 150.
  const std::string both =
      "1;" + std::string(99, 'e') + "\r\nx\r\n0\r\nX: " + std::string(95, 't') + "\r\n\r\n";
  EXPECT_TRUE(decode(both, 0, 250).done);
  EXPECT_NE(decode(both, 0, 150).error, nullptr);
}

TEST(ChunkedDecoder, AHugeSizeIsACountNotAnAllocation) {
  ChunkedDecoder d;
  std::string got;
  const auto r = d.feed("ffffffffffffffff\r\nabc", [&](std::string_view p) { got.append(p); });
  EXPECT_EQ(r.error, nullptr);
  EXPECT_FALSE(r.done);
  EXPECT_EQ(got, "abc");
  EXPECT_EQ(d.body_bytes(), ~uint64_t{0});
  EXPECT_NE(decode("1ffffffffffffffff\r\n").error, nullptr) << "over 2^64 - 1";
}

}  // namespace
}  // namespace ringhttpd::proto
