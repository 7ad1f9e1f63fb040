// RequestParser: parsed content of valid requests, identical results however
// the bytes are split into feeds (whole, every two-way split, byte by byte),
// and the exact status of every rejected input, also under every split.
#include "proto/http_parser.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace ringhttpd::proto {
namespace {

std::string Describe(const HttpRequest& r) {
  std::string s = r.method + " " + r.target + " HTTP/" + std::to_string(r.version_major) + "." +
                  std::to_string(r.version_minor) + "\n";
  for (const Header& h : r.headers) s += "[" + h.name + "]=[" + h.value + "]\n";
  s += "body=[" + r.body + "] keep_alive=" + std::to_string(r.keep_alive) +
       " expect_continue=" + std::to_string(r.expect_continue);
  return s;
}

struct Outcome {
  std::vector<HttpRequest> requests;
  std::vector<std::string> described;
  int status = 0;
  bool ok = true;  // result of the last feed
};

// Feeds `input` cut at `cuts` (ascending offsets).
Outcome FeedCuts(std::string_view input, const std::vector<size_t>& cuts,
                 ParserLimits limits = {}) {
  RequestParser parser(limits);
  Outcome o;
  size_t pos = 0;
  bool failed = false;
  auto feed = [&](size_t end) {
    o.ok = parser.feed(input.substr(pos, end - pos), o.requests);
    EXPECT_FALSE(failed && o.ok) << "feed() succeeded after a failure";
    failed = failed || !o.ok;
    pos = end;
  };
  for (size_t cut : cuts) feed(cut);
  feed(input.size());
  o.status = parser.error_status();
  for (const HttpRequest& r : o.requests) o.described.push_back(Describe(r));
  return o;
}

Outcome Whole(std::string_view in, ParserLimits l = {}) { return FeedCuts(in, {}, l); }

Outcome Bytewise(std::string_view in, ParserLimits l = {}) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < in.size(); ++i) cuts.push_back(i);
  return FeedCuts(in, cuts, l);
}

// Every way of feeding `in` must give the same outcome as feeding it whole.
void ExpectSplitInvariant(std::string_view in, ParserLimits l = {}, size_t stride = 1) {
  Outcome whole = Whole(in, l);
  for (size_t k = 0; k <= in.size(); k += stride) {
    Outcome split = FeedCuts(in, {k}, l);
    ASSERT_EQ(split.described, whole.described) << "split at " << k;
    ASSERT_EQ(split.status, whole.status) << "split at " << k;
    ASSERT_EQ(split.ok, whole.ok) << "split at " << k;
  }
  Outcome bytes = Bytewise(in, l);
  EXPECT_EQ(bytes.described, whole.described) << "byte by byte";
  EXPECT_EQ(bytes.status, whole.status) << "byte by byte";
  EXPECT_EQ(bytes.ok, whole.ok) << "byte by byte";
}

// ---------------------------------------------------------------------------
// Valid requests

const std::string kGet =
    "GET /search?q=ring&lang=en HTTP/1.1\r\n"
    "Host: Example.COM:8080\r\n"
    "User-Agent: test/1.0\r\n"
    "Accept: \t */* \t\r\n"
    "X-Empty:\r\n"
    "x-MiXeD-case: Value With  Spaces\r\n"
    "\r\n";

const std::string kPostLength =
    "POST /submit HTTP/1.1\r\n"
    "Host: a.example\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 11\r\n"
    "\r\n"
    "hello world";

const std::string kPostChunked =
    "POST /upload HTTP/1.1\r\n"
    "Host: a.example\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "5;name=value\r\n"
    "hello\r\n"
    "6;flag\r\n"
    " world\r\n"
    "A;q=\"quoted; ext\"\r\n"
    "0123456789\r\n"
    "0\r\n"
    "X-Checksum: abc\r\n"
    "X-Other: 1\r\n"
    "\r\n";

const std::string kPipelined =
    "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
    "POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz"
    "GET /three HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

const std::string kHttp10KeepAlive =
    "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    "GET /b HTTP/1.0\r\n\r\n";

const std::string kHttp10Close = "GET / HTTP/1.0\r\nHost: x\r\nConnection: close\r\n\r\n";

const std::string kExpectContinue =
    "PUT /file HTTP/1.1\r\n"
    "Host: a\r\n"
    "Expect: 100-Continue\r\n"
    "Content-Length: 4\r\n"
    "\r\n"
    "data";

const std::string kLeadingEmptyLines = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";

const std::string kUpgradeIgnored =
    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    "POST /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n"
    "Content-Length: 2\r\n\r\nhi"
    "GET /after HTTP/1.1\r\nHost: a\r\n\r\n";

const std::string kChunkedThenGet =
    "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3\r\nabc\r\n0\r\n\r\n"
    "GET /d HTTP/1.1\r\nHost: a\r\n\r\n";

const std::string kAbsoluteForm = "GET http://Example.com:81/x?y=1 HTTP/1.1\r\nHost: other\r\n\r\n";

const std::string kOptionsStar = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";

// RFC 9112 §7.1.1 chunk extensions: BWS around ";" and "=", token and
// quoted-string values (quoted-pairs, HTAB and obs-text inside), valueless
// names; leading zeros and both hex cases in sizes; "chunked" in odd case.
const std::string kChunkedExtensions =
    "POST /ext HTTP/1.1\r\n"
    "Host: a\r\n"
    "Transfer-Encoding: ChUnKeD\r\n"
    "\r\n"
    "5 ; a = b ;c; d=\"\"\r\n"
    "hello\r\n"
    "6;q=\"a \\\"quoted\\\" \\\\ \t \xc3\xa9\"\t;r\r\n"
    " world\r\n"
    "000A;x\r\n"
    "0123456789\r\n"
    "a\r\n"
    "abcdefghij\r\n"
    "0;last=\"y\"\r\n"
    "T: 1\r\n"
    "\r\n";

// Field values may carry bytes >= 0x80 (obs-text).
const std::string kHighBytesInValue =
    "GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9 \xff\x80\r\n\r\n";

// Methods llhttp knows beyond the common ones are parsed (routing decides).
const std::string kOtherKnownMethods =
    "PURGE /p HTTP/1.1\r\nHost: a\r\n\r\n"
    "M-SEARCH /m HTTP/1.1\r\nHost: a\r\n\r\n"
    "PROPFIND /f HTTP/1.1\r\nHost: a\r\n\r\n";

// Connection is a comma list of case-insensitive options.
const std::string kConnectionOptions =
    "GET /1 HTTP/1.0\r\nConnection: foo, Keep-Alive\r\n\r\n"
    "GET /2 HTTP/1.1\r\nHost: a\r\nConnection: KEEP-ALIVE\r\n\r\n"
    "GET /3 HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n";

// Whitespace at the end of a field value, HTAB included, is not part of it
// (RFC 9110 §5.5), for Content-Length and Transfer-Encoding too (llhttp
// would reject "5\t" and "chunked\t"; it never sees those bytes).
const std::string kTrailingWhitespace =
    "POST /cl HTTP/1.1\r\nHost: a\t\r\nContent-Length: 5\t\r\n\r\nhello"
    "POST /te HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\t \t\r\n\r\n"
    "3\r\nabc\r\n0\r\nT: x\t\r\n\r\n"
    "POST /both HTTP/1.1\r\nHost: a \r\nContent-Length:\t 2 \t\r\nX-Mid: a \t b\t \r\n"
    "X-Only-Ws: \t \r\n\r\nhi"
    "GET /last HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\t\r\n\r\n";

// An absolute-form target's authority is the Host (RFC 9112 §3.2.2), also
// when the request has none (HTTP/1.0).
const std::string kAbsoluteFormHttp10 = "GET http://H.example:8080/x HTTP/1.0\r\n\r\n";

// Expect is a list too; empty members are ignored.
const std::string kExpectContinueInList =
    "POST /e HTTP/1.1\r\nHost: a\r\nExpect: , 100-Continue ,\r\nContent-Length: 2\r\n\r\nhi";

TEST(HttpParser, GetWithHeadersAndQuery) {
  Outcome o = Whole(kGet);
  ASSERT_TRUE(o.ok) << o.status;
  ASSERT_EQ(o.requests.size(), 1u);
  const HttpRequest& r = o.requests[0];
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/search?q=ring&lang=en");
  EXPECT_EQ(r.version_major, 1);
  EXPECT_EQ(r.version_minor, 1);
  ASSERT_EQ(r.headers.size(), 5u);
  EXPECT_EQ(r.headers[0].name, "Host");
  EXPECT_EQ(r.headers[0].value, "Example.COM:8080");
  EXPECT_EQ(r.headers[2].value, "*/*");  // SP and HTAB trimmed on both sides
  EXPECT_EQ(r.headers[3].name, "X-Empty");
  EXPECT_EQ(r.headers[3].value, "");
  EXPECT_EQ(r.headers[4].name, "x-MiXeD-case");  // case preserved
  EXPECT_EQ(r.headers[4].value, "Value With  Spaces");
  EXPECT_EQ(r.header("X-MIXED-CASE"), "Value With  Spaces");
  EXPECT_EQ(r.path(), "/search");
  EXPECT_EQ(r.query(), "q=ring&lang=en");
  EXPECT_EQ(r.host(), "example.com");
  EXPECT_TRUE(r.keep_alive);
  EXPECT_FALSE(r.expect_continue);
  EXPECT_EQ(r.body, "");
}

TEST(HttpParser, PostWithContentLength) {
  Outcome o = Whole(kPostLength);
  ASSERT_EQ(o.requests.size(), 1u);
  EXPECT_EQ(o.requests[0].method, "POST");
  EXPECT_EQ(o.requests[0].body, "hello world");
  EXPECT_EQ(o.requests[0].header("content-length"), "11");
}

TEST(HttpParser, ChunkedWithExtensionsAndTrailers) {
  Outcome o = Whole(kPostChunked);
  ASSERT_TRUE(o.ok) << o.status;
  ASSERT_EQ(o.requests.size(), 1u);
  const HttpRequest& r = o.requests[0];
  EXPECT_EQ(r.body, "hello world0123456789");
  EXPECT_EQ(r.headers.size(), 2u);  // trailers are dropped, not merged
  EXPECT_EQ(r.header("X-Checksum"), "");
  EXPECT_TRUE(r.keep_alive);
}

TEST(HttpParser, PipelinedRequestsComeOutInOrder) {
  Outcome o = Whole(kPipelined);
  ASSERT_TRUE(o.ok);
  ASSERT_EQ(o.requests.size(), 3u);
  EXPECT_EQ(o.requests[0].target, "/one");
  EXPECT_TRUE(o.requests[0].keep_alive);
  EXPECT_EQ(o.requests[1].target, "/two");
  EXPECT_EQ(o.requests[1].body, "xyz");
  EXPECT_EQ(o.requests[2].target, "/three");
  EXPECT_FALSE(o.requests[2].keep_alive);
}

TEST(HttpParser, Http10KeepAliveAndClose) {
  Outcome o = Whole(kHttp10KeepAlive);
  ASSERT_TRUE(o.ok);
  ASSERT_EQ(o.requests.size(), 2u);
  EXPECT_EQ(o.requests[0].version_minor, 0);
  EXPECT_TRUE(o.requests[0].keep_alive);   // "Connection: keep-alive"
  EXPECT_FALSE(o.requests[1].keep_alive);  // HTTP/1.0 default
  Outcome c = Whole(kHttp10Close);
  ASSERT_EQ(c.requests.size(), 1u);
  EXPECT_FALSE(c.requests[0].keep_alive);
}

TEST(HttpParser, Http11ConnectionClose) {
  Outcome o = Whole("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(o.requests.size(), 1u);
  EXPECT_FALSE(o.requests[0].keep_alive);
}

TEST(HttpParser, ExpectContinue) {
  Outcome o = Whole(kExpectContinue);
  ASSERT_EQ(o.requests.size(), 1u);
  EXPECT_TRUE(o.requests[0].expect_continue);
  EXPECT_EQ(o.requests[0].body, "data");
}

TEST(HttpParser, LeadingEmptyLinesAreTolerated) {
  Outcome o = Whole(kLeadingEmptyLines);
  ASSERT_TRUE(o.ok);
  ASSERT_EQ(o.requests.size(), 1u);
  EXPECT_EQ(o.requests[0].target, "/");
}

TEST(HttpParser, UpgradeIsIgnoredAndParsingGoesOn) {
  Outcome o = Whole(kUpgradeIgnored);
  ASSERT_TRUE(o.ok) << o.status;
  ASSERT_EQ(o.requests.size(), 3u);
  EXPECT_EQ(o.requests[0].target, "/ws");
  EXPECT_EQ(o.requests[1].body, "hi");
  EXPECT_EQ(o.requests[2].target, "/after");
}

TEST(HttpParser, ChunkedThenPipelinedGet) {
  Outcome o = Whole(kChunkedThenGet);
  ASSERT_EQ(o.requests.size(), 2u);
  EXPECT_EQ(o.requests[0].body, "abc");
  EXPECT_EQ(o.requests[1].target, "/d");
}

TEST(HttpParser, AbsoluteFormAndAsteriskForm) {
  Outcome a = Whole(kAbsoluteForm);
  ASSERT_EQ(a.requests.size(), 1u);
  EXPECT_EQ(a.requests[0].path(), "/x");
  EXPECT_EQ(a.requests[0].query(), "y=1");
  EXPECT_EQ(a.requests[0].host(), "example.com");
  // The received Host is replaced, in place, by the target's authority.
  ASSERT_EQ(a.requests[0].headers.size(), 1u);
  EXPECT_EQ(a.requests[0].headers[0].name, "Host");
  EXPECT_EQ(a.requests[0].headers[0].value, "Example.com:81");
  Outcome s = Whole(kOptionsStar);
  ASSERT_EQ(s.requests.size(), 1u);
  EXPECT_EQ(s.requests[0].target, "*");
}

// RFC 9112 §3.2.2: the server MUST ignore Host and use the authority, so
// that the service and a proxy's upstream see the host the request was
// routed on; a request without Host gets one.
TEST(HttpParser, AbsoluteFormAuthorityBecomesTheHost) {
  Outcome a = Whole("GET http://public.example/ HTTP/1.1\r\nX: 1\r\nHost: admin.internal\r\n\r\n");
  ASSERT_EQ(a.requests.size(), 1u);
  EXPECT_EQ(a.requests[0].header("Host"), "public.example");
  EXPECT_EQ(a.requests[0].headers.size(), 2u);
  EXPECT_EQ(a.requests[0].headers[1].name, "Host");  // where it was
  Outcome v6 = Whole("GET http://[::1]:8080?q HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(v6.requests.size(), 1u);
  EXPECT_EQ(v6.requests[0].header("Host"), "[::1]:8080");
  Outcome old = Whole(kAbsoluteFormHttp10);
  ASSERT_EQ(old.requests.size(), 1u);
  ASSERT_EQ(old.requests[0].headers.size(), 1u);
  EXPECT_EQ(old.requests[0].headers[0].name, "Host");
  EXPECT_EQ(old.requests[0].headers[0].value, "H.example:8080");
  EXPECT_EQ(old.requests[0].host(), "h.example");
  // Origin-form keeps the Host it was sent.
  Outcome origin = Whole("GET / HTTP/1.1\r\nHost: admin.internal\r\n\r\n");
  ASSERT_EQ(origin.requests.size(), 1u);
  EXPECT_EQ(origin.requests[0].header("Host"), "admin.internal");
}

// RFC 9110 §5.5: a field value has no trailing OWS. Content-Length and
// Transfer-Encoding with a trailing HTAB frame the body as with none.
TEST(HttpParser, TrailingWhitespaceIsNotPartOfAValue) {
  Outcome o = Whole(kTrailingWhitespace);
  ASSERT_TRUE(o.ok) << o.status;
  ASSERT_EQ(o.requests.size(), 4u);
  EXPECT_EQ(o.requests[0].body, "hello");
  EXPECT_EQ(o.requests[0].header("Host"), "a");
  EXPECT_EQ(o.requests[0].header("Content-Length"), "5");
  EXPECT_EQ(o.requests[1].body, "abc");
  EXPECT_EQ(o.requests[1].header("Transfer-Encoding"), "chunked");
  EXPECT_EQ(o.requests[2].body, "hi");
  EXPECT_EQ(o.requests[2].header("X-Mid"), "a \t b");  // inner whitespace stays
  EXPECT_EQ(o.requests[2].header("X-Only-Ws"), "");
  EXPECT_EQ(o.requests[3].target, "/last");
  EXPECT_TRUE(o.requests[3].keep_alive);
  // Fed in pieces from buffers reused at once: held whitespace is kept by
  // the parser, not read back from an old buffer.
  const std::string in = "GET / HTTP/1.1\r\nHost: a\r\nX: a \t";
  const std::string rest = " \tb\t \r\n\r\n";
  for (size_t k = in.find("X:"); k <= in.size(); ++k) {
    RequestParser p;
    std::vector<HttpRequest> out;
    std::string buf = in.substr(0, k);
    ASSERT_TRUE(p.feed(buf, out));
    buf.assign(buf.size(), '#');
    buf = in.substr(k);
    ASSERT_TRUE(p.feed(buf, out));
    buf.assign(buf.size(), '#');
    buf = rest;
    ASSERT_TRUE(p.feed(buf, out));
    ASSERT_EQ(out.size(), 1u) << k;
    EXPECT_EQ(out[0].header("X"), "a \t \tb") << k;
  }
}

TEST(HttpParser, ChunkExtensionsAreCheckedAndDropped) {
  Outcome o = Whole(kChunkedExtensions);
  ASSERT_TRUE(o.ok) << o.status;
  ASSERT_EQ(o.requests.size(), 1u);
  EXPECT_EQ(o.requests[0].body, "hello world0123456789abcdefghij");
  EXPECT_EQ(o.requests[0].headers.size(), 2u);  // the trailer is dropped
}

TEST(HttpParser, FieldValuesKeepBytesAbove0x7F) {
  Outcome o = Whole(kHighBytesInValue);
  ASSERT_EQ(o.requests.size(), 1u);
  EXPECT_EQ(o.requests[0].header("X-Name"), "caf\xc3\xa9 \xff\x80");
}

TEST(HttpParser, OtherKnownMethodsAreParsed) {
  Outcome o = Whole(kOtherKnownMethods);
  ASSERT_EQ(o.requests.size(), 3u);
  EXPECT_EQ(o.requests[0].method, "PURGE");
  EXPECT_EQ(o.requests[1].method, "M-SEARCH");
  EXPECT_EQ(o.requests[2].method, "PROPFIND");
}

TEST(HttpParser, ExpectContinueMayBeAListMember) {
  Outcome o = Whole(kExpectContinueInList);
  ASSERT_EQ(o.requests.size(), 1u);
  EXPECT_TRUE(o.requests[0].expect_continue);
  EXPECT_EQ(o.requests[0].body, "hi");
  Outcome empty = Whole("GET / HTTP/1.1\r\nHost: a\r\nExpect:\r\n\r\n");
  ASSERT_EQ(empty.requests.size(), 1u);
  EXPECT_FALSE(empty.requests[0].expect_continue);
}

// "close" closes in any version and wherever it is in the list; HTTP/1.0
// stays open only with "keep-alive" (any case) and without "close".
TEST(HttpParser, ConnectionOptionsAreACaseInsensitiveList) {
  struct Case {
    const char* version;
    const char* fields;
    bool keep_alive;
  };
  const Case cases[] = {
      {"1.1", "", true},
      {"1.1", "Connection: close\r\n", false},
      {"1.1", "Connection: CLOSE\r\n", false},
      {"1.1", "Connection:close\r\n", false},
      {"1.1", "Connection: foo, Close\r\n", false},
      {"1.1", "Connection: close, foo\r\n", false},
      {"1.1", "Connection: keep-alive, close\r\n", false},
      {"1.1", "Connection: foo\r\nConnection: close\r\n", false},
      {"1.1", "Connection: closed\r\n", true},
      {"1.1", "Connection: foo\r\n", true},
      {"1.0", "", false},
      {"1.0", "Connection: keep-alive\r\n", true},
      {"1.0", "Connection: Keep-Alive\r\n", true},
      {"1.0", "Connection: foo,  keep-alive \r\n", true},
      {"1.0", "Connection: keep-alives\r\n", false},
      {"1.0", "Connection: keep-alive, close\r\n", false},
      {"1.0", "Connection: close, keep-alive\r\n", false},
      {"1.0", "Connection: keep-alive\r\nConnection: close\r\n", false},
      // OWS is SP and HTAB, around every option (llhttp trims only SP).
      {"1.1", "Connection: close\t\r\n", false},
      {"1.1", "Connection: \tclose\r\n", false},
      {"1.1", "Connection: foo,close\t\r\n", false},
      {"1.1", "Connection: close\t, foo\r\n", false},
      {"1.1", "Connection: foo\t,\tclose\t,bar\r\n", false},
      {"1.1", "Connection: foo\r\nConnection: \tCLOSE\t\r\n", false},
      {"1.1", "Connection: clo\tse\r\n", true},
      {"1.0", "Connection: keep-alive\t\r\n", true},
      {"1.0", "Connection: keep-alive\t, foo\r\n", true},
      {"1.0", "Connection: foo,\tkeep-alive\t\r\n", true},
      {"1.0", "Connection: keep-alive\t,close\t\r\n", false},
  };
  for (const Case& c : cases) {
    std::string in = std::string("GET / HTTP/") + c.version + "\r\nHost: a\r\n" + c.fields + "\r\n";
    Outcome o = Whole(in);
    ASSERT_EQ(o.requests.size(), 1u) << in;
    EXPECT_EQ(o.requests[0].keep_alive, c.keep_alive) << testing::PrintToString(in);
    ExpectSplitInvariant(in);
    // A request that keeps the connection is followed by the next one (llhttp
    // starts afresh: its own verdict does not close it); one that does not is
    // the last (the bytes after it are never parsed).
    Outcome two = Whole(in + "GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_TRUE(two.ok) << testing::PrintToString(in);
    EXPECT_EQ(two.requests.size(), c.keep_alive ? 2u : 1u) << testing::PrintToString(in);
  }
}

// Decision (RFC 9112 §6.3 allows folding identical values): a Content-Length
// list or a repeated line is rejected even when the values agree.
TEST(HttpParser, ContentLengthDecisions) {
  const std::string post = "POST / HTTP/1.1\r\nHost: a\r\n";
  EXPECT_EQ(Whole(post + "Content-Length: 5, 5\r\n\r\nhello").status, 400);
  EXPECT_EQ(Whole(post + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello").status, 400);
  EXPECT_EQ(Whole(post + "Content-Length: 5,5\r\n\r\nhello").status, 400);
  // Leading zeros are digits; OWS around the value is not part of it.
  Outcome zeros = Whole(post + "Content-Length: \t005 \r\n\r\nhello");
  ASSERT_EQ(zeros.requests.size(), 1u);
  EXPECT_EQ(zeros.requests[0].body, "hello");
  // Below 2^63 a value over the limit is too large (413); from 2^63 on it is
  // malformed (400).
  EXPECT_EQ(Whole(post + "Content-Length: 9223372036854775807\r\n\r\n").status, 413);
  EXPECT_EQ(Whole(post + "Content-Length: 9223372036854775808\r\n\r\n").status, 400);
}

// The verdict on a method is given by the byte that decides it: the SP
// after an unknown token (501), or the first byte no token has (400).
TEST(HttpParser, MethodVerdictComesWithTheByteThatDecidesIt) {
  RequestParser unknown;
  std::vector<HttpRequest> out;
  ASSERT_TRUE(unknown.feed("\r\nFO", out));
  EXPECT_TRUE(unknown.mid_request());
  ASSERT_TRUE(unknown.feed("O", out));
  EXPECT_FALSE(unknown.feed(" ", out));
  EXPECT_EQ(unknown.error_status(), 501);
  RequestParser bad;
  ASSERT_TRUE(bad.feed("FO", out));
  EXPECT_FALSE(bad.feed("(", out));
  EXPECT_EQ(bad.error_status(), 400);
  RequestParser long_token;
  ASSERT_TRUE(long_token.feed(std::string(100, 'Y'), out));
  EXPECT_FALSE(long_token.feed(" /", out));
  EXPECT_EQ(long_token.error_status(), 501);
  EXPECT_TRUE(out.empty());
}

// Extension bytes (";" on, after the size digits; CR and LF excluded) add up over
// the request and may reach max_header_bytes exactly.
TEST(HttpParser, ChunkExtensionBudgetIsCumulativeAndExact) {
  ParserLimits l;
  l.max_header_bytes = 64;
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string at_limit = head + "1;" + std::string(31, 'e') + "\r\nx\r\n1;" +
                               std::string(31, 'f') + "\r\ny\r\n0\r\n\r\n";
  Outcome ok = Whole(at_limit, l);
  ASSERT_EQ(ok.requests.size(), 1u) << ok.status;
  EXPECT_EQ(ok.requests[0].body, "xy");
  const std::string over = head + "1;" + std::string(31, 'e') + "\r\nx\r\n1;" +
                           std::string(32, 'f') + "\r\ny\r\n0\r\n\r\n";
  EXPECT_EQ(Whole(over, l).status, 413);
  ExpectSplitInvariant(over, l);
}

// Chunk-size lines without extensions cost nothing against that budget.
TEST(HttpParser, ManySmallChunksAreNotExtensionBytes) {
  std::string in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 20000; ++i) in += "1\r\nz\r\n";
  in += "0\r\n\r\n";
  Outcome o = Whole(in);
  ASSERT_TRUE(o.ok) << o.status;
  ASSERT_EQ(o.requests.size(), 1u);
  EXPECT_EQ(o.requests[0].body, std::string(20000, 'z'));
}

TEST(HttpParser, TargetOf8000OctetsIsAcceptedByDefault) {
  const std::string in = "GET /" + std::string(7999, 't') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  Outcome o = Whole(in);
  ASSERT_EQ(o.requests.size(), 1u) << o.status;
  EXPECT_EQ(o.requests[0].target.size(), 8000u);
  ExpectSplitInvariant(in, {}, 397);
}

TEST(HttpParser, BodyExactlyAtLimitIsAccepted) {
  ParserLimits l;
  l.max_body_bytes = 11;
  EXPECT_EQ(Whole(kPostLength, l).requests.size(), 1u);
  l.max_body_bytes = 21;
  EXPECT_EQ(Whole(kPostChunked, l).requests.size(), 1u);
}

class ValidSplits : public testing::TestWithParam<std::string> {};

TEST_P(ValidSplits, EverySplitGivesTheSameRequests) {
  Outcome whole = Whole(GetParam());
  ASSERT_TRUE(whole.ok) << whole.status << " " << GetParam();
  ASSERT_FALSE(whole.requests.empty());
  ExpectSplitInvariant(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Corpus, ValidSplits,
                         testing::Values(kGet, kPostLength, kPostChunked, kPipelined,
                                         kHttp10KeepAlive, kHttp10Close, kExpectContinue,
                                         kLeadingEmptyLines, kUpgradeIgnored, kChunkedThenGet,
                                         kAbsoluteForm, kOptionsStar, kChunkedExtensions,
                                         kHighBytesInValue, kOtherKnownMethods, kConnectionOptions,
                                         kExpectContinueInList, kTrailingWhitespace,
                                         kAbsoluteFormHttp10));

TEST(HttpParser, AllValidRequestsConcatenatedAndFedAtEverySplit) {
  std::string all = kGet + kPostLength + kPostChunked + kExpectContinue + kLeadingEmptyLines +
                    kUpgradeIgnored + kChunkedThenGet + kAbsoluteForm + kOptionsStar + kPipelined;
  Outcome whole = Whole(all);
  ASSERT_TRUE(whole.ok) << whole.status;
  EXPECT_EQ(whole.requests.size(), 15u);
  ExpectSplitInvariant(all);
}

// ---------------------------------------------------------------------------
// State queries

TEST(HttpParser, MidRequestAndWantsContinue) {
  RequestParser p;
  std::vector<HttpRequest> out;
  EXPECT_FALSE(p.mid_request());
  ASSERT_TRUE(p.feed("\r\n", out));
  EXPECT_FALSE(p.mid_request());  // an empty line is not part of a request
  ASSERT_TRUE(p.feed("P", out));
  EXPECT_TRUE(p.mid_request());
  EXPECT_FALSE(p.wants_continue());
  ASSERT_TRUE(
      p.feed("UT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n", out));
  EXPECT_FALSE(p.wants_continue());  // head not complete yet
  ASSERT_TRUE(p.feed("\r\n", out));
  EXPECT_TRUE(p.wants_continue());
  EXPECT_TRUE(p.mid_request());
  ASSERT_TRUE(p.feed("da", out));
  EXPECT_TRUE(p.wants_continue());
  ASSERT_TRUE(p.feed("ta", out));
  EXPECT_FALSE(p.wants_continue());
  EXPECT_FALSE(p.mid_request());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].expect_continue);
}

TEST(HttpParser, NoContinueWithoutBodyOrForHttp10) {
  RequestParser p;
  std::vector<HttpRequest> out;
  ASSERT_TRUE(p.feed("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", out));
  EXPECT_FALSE(p.wants_continue());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].expect_continue);
  ASSERT_TRUE(p.feed("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", out));
  EXPECT_FALSE(p.wants_continue());
  EXPECT_TRUE(p.mid_request());
}

TEST(HttpParser, BytesAfterConnectionCloseAreIgnored) {
  RequestParser p;
  std::vector<HttpRequest> out;
  EXPECT_TRUE(
      p.feed("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /x HTTP/1.1\r\n", out));
  EXPECT_TRUE(p.feed("garbage that is never parsed\n\n", out));
  EXPECT_EQ(out.size(), 1u);
  EXPECT_EQ(p.error_status(), 0);
  EXPECT_FALSE(p.mid_request());
}

TEST(HttpParser, RequestsBeforeAnErrorInTheSameFeedAreKept) {
  RequestParser p;
  std::vector<HttpRequest> out;
  EXPECT_FALSE(
      p.feed("GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /bad HTTP/1.1\r\nHost : a\r\n\r\n", out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].target, "/ok");
  EXPECT_EQ(p.error_status(), 400);
}

TEST(HttpParser, MovedParserKeepsWorking) {
  RequestParser a;
  std::vector<HttpRequest> out;
  ASSERT_TRUE(a.feed("GET / HTTP/1.1\r\nHo", out));
  RequestParser b(std::move(a));
  ASSERT_TRUE(b.feed("st: a\r\n\r\n", out));
  RequestParser c;
  c = std::move(b);
  ASSERT_TRUE(c.feed("GET /2 HTTP/1.1\r\nHost: a\r\n\r\n", out));
  EXPECT_EQ(out.size(), 2u);
}

TEST(HttpParser, IdleParserIsReleasedAndRecreated) {
  RequestParser p;
  std::vector<HttpRequest> out;
  ASSERT_TRUE(p.feed("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n", out));
  p.release_if_idle();
  EXPECT_FALSE(p.mid_request());
  ASSERT_TRUE(p.feed("GET /2 HTTP/1.1\r\nHo", out));
  p.release_if_idle();  // mid-request: kept
  EXPECT_TRUE(p.mid_request());
  ASSERT_TRUE(p.feed("st: a\r\n\r\n\r", out));
  p.release_if_idle();  // a CR of the next request's leading line: kept
  ASSERT_TRUE(p.feed("\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n", out));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1].target, "/2");
  EXPECT_EQ(out[2].target, "/3");
}

// ---------------------------------------------------------------------------
// Errors

struct ErrorCase {
  const char* name;
  std::string input;
  int status;
  ParserLimits limits = {};
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

ParserLimits Small() {
  ParserLimits l;
  l.max_header_bytes = 64;
  l.max_target_bytes = 16;
  l.max_body_bytes = 10;
  return l;
}

std::vector<ErrorCase> ErrorCorpus() {
  const std::string h = "Host: a\r\n";
  const std::string chunked = "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n";
  auto chunked_with = [&](const std::string& te) {
    return "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: " + te + "\r\n\r\n";
  };
  return {
      {"bare_lf_ending_header_line", "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400},
      {"bare_lf_ending_request_line", "GET / HTTP/1.1\n" + h + "\r\n", 400},
      {"bare_lf_as_final_empty_line", "GET / HTTP/1.1\r\n" + h + "\n", 400},
      {"bare_lf_as_leading_empty_line", "\nGET / HTTP/1.1\r\n" + h + "\r\n", 400},
      {"bare_cr_in_header", "GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", 400},
      {"space_before_colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
      {"tab_before_colon", "GET / HTTP/1.1\r\n" + h + "X\t: y\r\n\r\n", 400},
      {"obs_fold", "GET / HTTP/1.1\r\n" + h + "X: a\r\n  b\r\n\r\n", 400},
      {"obs_fold_tab", "GET / HTTP/1.1\r\n" + h + "X: a\r\n\tb\r\n\r\n", 400},
      {"space_before_first_header", "GET / HTTP/1.1\r\n " + h + "\r\n", 400},
      {"double_space_after_method", "GET  / HTTP/1.1\r\n" + h + "\r\n", 400},
      {"double_space_before_version", "GET /  HTTP/1.1\r\n" + h + "\r\n", 400},
      {"leading_space_in_request_line", " GET / HTTP/1.1\r\n" + h + "\r\n", 400},
      {"trailing_space_in_request_line", "GET / HTTP/1.1 \r\n" + h + "\r\n", 400},
      {"tab_in_request_line", "GET /a\tb HTTP/1.1\r\n" + h + "\r\n", 400},
      {"space_in_target", "GET /a b HTTP/1.1\r\n" + h + "\r\n", 400},
      {"http09_request_line", "GET /\r\n\r\n", 400},
      {"http09_request_line_with_headers", "GET /\r\n" + h + "\r\n", 400},
      {"rtsp_protocol", "GET / RTSP/1.0\r\n\r\n", 400},
      {"lowercase_protocol", "GET / http/1.1\r\n" + h + "\r\n", 400},
      {"protocol_wrong_at_its_fifth_byte", "GET / HTTP-1.1\r\n" + h + "\r\n", 400},
      {"protocol_https", "GET / HTTPS/1.1\r\n" + h + "\r\n", 400},
      {"protocol_cut_short", "GET / HTT\r\n" + h + "\r\n", 400},
      {"malformed_version", "GET / HTTP/11\r\n" + h + "\r\n", 400},
      {"version_with_extra_digit", "GET / HTTP/1.10\r\n" + h + "\r\n", 400},
      // A method that is a token but unknown (methods are case-sensitive) is
      // 501; a method with a byte no token has is 400.
      {"unknown_method", "FOO / HTTP/1.1\r\n" + h + "\r\n", 501},
      {"lowercase_method", "get / HTTP/1.1\r\n" + h + "\r\n", 501},
      {"known_method_prefix", "GE / HTTP/1.1\r\n" + h + "\r\n", 501},
      {"known_method_extended", "GETX / HTTP/1.1\r\n" + h + "\r\n", 501},
      {"method_token_of_symbols", "!#$%&'*+-.^_`|~ / HTTP/1.1\r\n" + h + "\r\n", 501},
      {"method_token_longer_than_any_known", std::string(40, 'X') + " / HTTP/1.1\r\n" + h + "\r\n",
       501},
      {"rtsp_method", "DESCRIBE / HTTP/1.1\r\n" + h + "\r\n", 501},
      {"rtsp_method_setup", "SETUP / HTTP/1.1\r\n" + h + "\r\n", 501},
      {"method_with_paren", "G(T / HTTP/1.1\r\n" + h + "\r\n", 400},
      {"method_with_at", "GE@T / HTTP/1.1\r\n" + h + "\r\n", 400},
      {"method_with_ctl", "GET\x01 / HTTP/1.1\r\n" + h + "\r\n", 400},
      {"method_with_high_byte", "G\xc3\x89T / HTTP/1.1\r\n" + h + "\r\n", 400},
      {"method_long_then_bad_byte", std::string(40, 'X') + "/ / HTTP/1.1\r\n" + h + "\r\n", 400},
      {"method_then_cr", "FOO\r\n" + h + "\r\n", 400},
      {"relative_target", "GET a/b HTTP/1.1\r\n" + h + "\r\n", 400},
      {"query_only_target", "GET ?x HTTP/1.1\r\n" + h + "\r\n", 400},
      {"asterisk_outside_options", "GET * HTTP/1.1\r\n" + h + "\r\n", 400},
      {"asterisk_with_path", "OPTIONS */x HTTP/1.1\r\n" + h + "\r\n", 400},
      {"authority_form_outside_connect", "GET a.example:80 HTTP/1.1\r\n" + h + "\r\n", 400},
      {"authority_form_options", "OPTIONS a.example:80 HTTP/1.1\r\n" + h + "\r\n", 400},
      {"absolute_form_empty_host", "GET http:///x HTTP/1.1\r\n" + h + "\r\n", 400},
      {"absolute_form_port_only", "GET http://:80/x HTTP/1.1\r\n" + h + "\r\n", 400},
      {"absolute_form_userinfo", "GET http://u:p@a/x HTTP/1.1\r\n" + h + "\r\n", 400},
      {"http10_two_hosts", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400},
      {"missing_host_http11", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400},
      {"two_hosts", "GET / HTTP/1.1\r\n" + h + "host: b\r\n\r\n", 400},
      {"invalid_host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
      // Host syntax (RFC 9110 §7.2): uri-host [ ":" port ] (valid_host).
      {"host_port_not_digits", "GET / HTTP/1.1\r\nHost: b.example:x\r\n\r\n", 400},
      {"host_two_ports", "GET / HTTP/1.1\r\nHost: b.example:1:2\r\n\r\n", 400},
      {"host_port_first", "GET / HTTP/1.1\r\nHost: x:b.example\r\n\r\n", 400},
      {"host_brackets_around_name", "GET / HTTP/1.1\r\nHost: [b.example]\r\n\r\n", 400},
      {"host_closing_bracket", "GET / HTTP/1.1\r\nHost: b.example]\r\n\r\n", 400},
      {"host_unclosed_ipv6", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
      {"host_port_six_digits", "GET / HTTP/1.1\r\nHost: b.example:000080\r\n\r\n", 400},
      {"host_port_above_65535", "GET / HTTP/1.1\r\nHost: b.example:65536\r\n\r\n", 400},
      {"host_port_without_host", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400},
      {"host_bad_pct_encoding", "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400},
      {"host_inner_tab", "GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n", 400},
      // An invalid Host is a 400 even when an absolute-form target overrides it.
      {"absolute_form_invalid_host_header",
       "GET http://a.example/ HTTP/1.1\r\nHost: b.example:x\r\n\r\n", 400},
      {"absolute_form_port_not_digits", "GET http://b.example:x/ HTTP/1.1\r\n" + h + "\r\n", 400},
      {"absolute_form_two_ports", "GET http://b.example:1:2/ HTTP/1.1\r\n" + h + "\r\n", 400},
      {"absolute_form_port_too_long", "GET http://b.example:123456/ HTTP/1.1\r\n" + h + "\r\n",
       400},
      {"absolute_form_bracketed_name", "GET http://[b.example]/ HTTP/1.1\r\n" + h + "\r\n", 400},
      // Only trailing whitespace leaves a value: inside one it still counts.
      {"cl_inner_tab", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5\t5\r\n\r\nhello", 400},
      {"cl_tab_then_letter", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5\tx\r\n\r\nhello", 400},
      // llhttp takes "chunked\t" for another coding: 501, as before the trim.
      {"te_chunked_tab_then_coding", chunked_with("chunked\t, gzip"), 501},
      {"te_tab_with_cl",
       "POST / HTTP/1.1\r\n" + h +
           "Transfer-Encoding: chunked\t\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
       400},
      {"cl_tab_twice",
       "POST / HTTP/1.1\r\n" + h + "Content-Length: 3\t\r\nContent-Length: 3\t\r\n\r\nabc", 400},
      {"invalid_header_name", "GET / HTTP/1.1\r\n" + h + "X(y): z\r\n\r\n", 400},
      {"header_name_with_slash", "GET / HTTP/1.1\r\n" + h + "X/Y: z\r\n\r\n", 400},
      {"header_name_with_high_byte", "GET / HTTP/1.1\r\n" + h + "X\xc3\xa9: z\r\n\r\n", 400},
      {"header_name_with_nul", "GET / HTTP/1.1\r\n" + h + std::string("X\0Y: z\r\n\r\n", 9), 400},
      {"empty_header_name", "GET / HTTP/1.1\r\n" + h + ": z\r\n\r\n", 400},
      {"empty_header_name_first", "GET / HTTP/1.1\r\n: z\r\n" + h + "\r\n", 400},
      {"header_without_colon", "GET / HTTP/1.1\r\n" + h + "NoColon\r\n\r\n", 400},
      {"nul_in_value", "GET / HTTP/1.1\r\n" + h + std::string("X: a\0b\r\n\r\n", 10), 400},
      {"ctl_in_value",
       "GET / HTTP/1.1\r\n" + h +
           "X: a\x01"
           "b\r\n\r\n",
       400},
      {"del_in_value",
       "GET / HTTP/1.1\r\n" + h +
           "X: a\x7f"
           "b\r\n\r\n",
       400},
      {"vertical_tab_in_value",
       "GET / HTTP/1.1\r\n" + h +
           "X: a\x0b"
           "b\r\n\r\n",
       400},
      {"bare_cr_inside_value", "GET / HTTP/1.1\r\n" + h + "X: a\rb\r\n\r\n", 400},
      {"cl_and_te",
       "POST / HTTP/1.1\r\n" + h +
           "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       400},
      {"te_and_cl",
       "POST / HTTP/1.1\r\n" + h +
           "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
       400},
      // Decision: repeated identical Content-Length lines and lists of
      // identical values are rejected, like differing ones (not folded).
      {"duplicate_cl",
       "POST / HTTP/1.1\r\n" + h + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
      {"cl_list_of_identical_values", "POST / HTTP/1.1\r\n" + h + "Content-Length: 3, 3\r\n\r\nabc",
       400},
      {"cl_list_of_differing_values", "POST / HTTP/1.1\r\n" + h + "Content-Length: 3, 4\r\n\r\nabc",
       400},
      {"cl_differing_lines",
       "POST / HTTP/1.1\r\n" + h + "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabc", 400},
      {"cl_same_value_other_spelling",
       "POST / HTTP/1.1\r\n" + h + "Content-Length: 3\r\nContent-Length: 03\r\n\r\nabc", 400},
      {"negative_cl", "POST / HTTP/1.1\r\n" + h + "Content-Length: -1\r\n\r\n", 400},
      {"plus_signed_cl", "POST / HTTP/1.1\r\n" + h + "Content-Length: +3\r\n\r\nabc", 400},
      {"non_numeric_cl", "POST / HTTP/1.1\r\n" + h + "Content-Length: abc\r\n\r\n", 400},
      {"hex_cl", "POST / HTTP/1.1\r\n" + h + "Content-Length: 0x3\r\n\r\nabc", 400},
      {"cl_with_inner_space", "POST / HTTP/1.1\r\n" + h + "Content-Length: 1 2\r\n\r\n", 400},
      {"empty_cl", "POST / HTTP/1.1\r\n" + h + "Content-Length:\r\n\r\n", 400},
      {"cl_2_pow_63", "POST / HTTP/1.1\r\n" + h + "Content-Length: 9223372036854775808\r\n\r\n",
       400},
      {"cl_above_2_pow_63",
       "POST / HTTP/1.1\r\n" + h + "Content-Length: 9223372036854775809\r\n\r\n", 400},
      {"cl_2_pow_64", "POST / HTTP/1.1\r\n" + h + "Content-Length: 18446744073709551616\r\n\r\n",
       400},
      {"cl_overflow", "POST / HTTP/1.1\r\n" + h + "Content-Length: 99999999999999999999999\r\n\r\n",
       400},
      {"bad_chunk_size", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\nxyz\r\n",
       400},
      {"chunked_not_last", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked, gzip\r\n\r\n",
       400},
      {"empty_te", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding:\r\n\r\n", 400},
      {"te_leading_comma", chunked_with(", chunked") + "0\r\n\r\n", 400},
      {"te_leading_comma_no_space", chunked_with(",chunked") + "0\r\n\r\n", 400},
      {"te_trailing_comma", chunked_with("chunked,") + "0\r\n\r\n", 400},
      {"te_doubled_comma", chunked_with("chunked,,chunked") + "0\r\n\r\n", 400},
      {"te_only_commas", chunked_with(" , ") + "0\r\n\r\n", 400},
      {"te_vertical_tab_before",
       chunked_with("\x0b"
                    "chunked") +
           "0\r\n\r\n",
       400},
      {"te_vertical_tab_after", chunked_with("chunked\x0b") + "0\r\n\r\n", 400},
      {"te_chunked_twice_in_a_list", chunked_with("chunked, chunked") + "0\r\n\r\n", 400},
      {"te_empty_line_then_chunked",
       "POST / HTTP/1.1\r\n" + h +
           "Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       400},
      {"te_chunked_with_cl_zero",
       "POST / HTTP/1.1\r\n" + h +
           "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n",
       400},
      {"te_identity_with_cl",
       "POST / HTTP/1.1\r\n" + h + "Content-Length: 3\r\nTransfer-Encoding: identity\r\n\r\nabc",
       400},
      {"te_space_in_header_name",
       "POST / HTTP/1.1\r\n" + h + "Transfer Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"chunked_twice",
       "POST / HTTP/1.1\r\n" + h +
           "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       400},
      {"chunk_data_not_followed_by_crlf", chunked + "5\r\nhelloXX0\r\n\r\n", 400},
      {"chunk_data_followed_by_bare_lf", chunked + "5\r\nhello\n0\r\n\r\n", 400},
      {"chunk_size_line_bare_lf", chunked + "5\nhello\r\n0\r\n\r\n", 400},
      {"chunk_size_line_cr_then_other_byte", chunked + "5\rXhello\r\n0\r\n\r\n", 400},
      {"last_chunk_line_bare_lf", chunked + "0\n\r\n", 400},
      {"chunk_size_empty", chunked + "\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_size_negative", chunked + "-5\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_size_0x_prefix", chunked + "0x5\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_size_plus", chunked + "+5\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_size_leading_space", chunked + " 5\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_size_trailing_space", chunked + "5 \r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_size_overflow", chunked + "10000000000000000\r\n", 400},
      {"chunk_size_too_many_digits", chunked + std::string(33, '0') + "5\r\nhello\r\n0\r\n\r\n",
       400},
      {"chunk_data_longer_than_size", chunked + "3\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_data_shorter_than_size", chunked + "7\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_empty_name", chunked + "5;=v\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_only_semicolon", chunked + "5;\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_bad_name_char", chunked + "5;a@b\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_bad_value_char", chunked + "5;a=b@c\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_empty_value", chunked + "5;a=\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_trailing_space", chunked + "5;a=b \r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_bare_lf", chunked + "5;a=b\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_name_bare_cr", chunked + "5;a\rb\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_nul", chunked + std::string("5;a=b\0\r\nhello\r\n0\r\n\r\n", 18), 400},
      {"chunk_ext_quoted_lf", chunked + "5;a=\"x\ny\"\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_quoted_unterminated", chunked + "5;a=\"x\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_quoted_pair_ctl", chunked + "5;a=\"x\\\x01\"\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_after_quoted", chunked + "5;a=\"x\"y\r\nhello\r\n0\r\n\r\n", 400},
      {"trailer_empty_name", chunked + "0\r\n: v\r\n\r\n", 400},
      {"trailer_nul", chunked + std::string("0\r\nT: a\0\r\n\r\n", 13), 400},
      {"trailer_obs_fold", chunked + "0\r\nT: 1\r\n u\r\n\r\n", 400},
      {"trailer_space_before_colon", chunked + "0\r\nT : 1\r\n\r\n", 400},
      {"trailer_bare_lf", chunked + "0\r\nT: 1\nU: 2\r\n\r\n", 400},
      {"trailers_end_with_bare_lf", chunked + "0\r\n\n", 400},
      {"trailers_end_with_bare_cr", chunked + "0\r\n\r\r\n", 400},
      {"te_in_http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"expect_unknown", "GET / HTTP/1.1\r\n" + h + "Expect: something\r\n\r\n", 417},
      {"expect_continue_and_unknown",
       "POST / HTTP/1.1\r\n" + h + "Expect: 100-continue, foo\r\nContent-Length: 1\r\n\r\nx", 417},
      {"expect_second_line_unknown",
       "GET / HTTP/1.1\r\n" + h + "Expect: 100-continue\r\nExpect: 200-ok\r\n\r\n", 417},
      {"expect_continue_with_parameter",
       "GET / HTTP/1.1\r\n" + h + "Expect: 100-continue;x=1\r\n\r\n", 417},
      {"expect_unknown_http10", "GET / HTTP/1.0\r\nExpect: something\r\n\r\n", 417},
      {"te_unknown_coding", chunked_with("xchunked") + "0\r\n\r\n", 501},
      {"te_identity", chunked_with("identity") + "0\r\n\r\n", 501},
      {"te_quoted_chunked", chunked_with("\"chunked\"") + "0\r\n\r\n", 501},
      {"te_chunked_with_parameter", chunked_with("chunked;q=1") + "0\r\n\r\n", 501},
      {"te_gzip", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip\r\n\r\n", 501},
      {"te_gzip_then_chunked",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
      {"te_gzip_header_then_chunked_header",
       "POST / HTTP/1.1\r\n" + h +
           "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       501},
      {"connect", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 501},
      {"http20", "GET / HTTP/2.0\r\n" + h + "\r\n", 505},
      {"http12", "GET / HTTP/1.2\r\n" + h + "\r\n", 505},
      {"http30", "GET / HTTP/3.0\r\n" + h + "\r\n", 505},
      {"http09_version", "GET / HTTP/0.9\r\n\r\n", 505},
      {"h2_preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
      {"cl_above_limit", "POST / HTTP/1.1\r\n" + h + "Content-Length: 1048577\r\n\r\n", 413},
      {"cl_above_small_limit", "POST / HTTP/1.1\r\n" + h + "Content-Length: 11\r\n\r\n", 413,
       Small()},
      {"chunked_above_limit",
       "POST / HTTP/1.1\r\n" + h +
           "Transfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n",
       413, Small()},
      {"single_chunk_above_limit",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n100001\r\n", 413},
      {"chunk_extensions_above_limit",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1;" + std::string(70, 'e') +
           "\r\n",
       413, Small()},
      {"target_above_limit", "GET /" + std::string(16, 'a') + " HTTP/1.1\r\n", 414, Small()},
      {"head_above_limit", "GET / HTTP/1.1\r\n" + h + "X: " + std::string(40, 'v') + "\r\n\r\n",
       431, Small()},
      {"many_headers_above_limit",
       "GET / HTTP/1.1\r\n" + h + "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\n\r\n",
       431, Small()},
      {"bare_cr_before_request_line", "\r\rGET / HTTP/1.1\r\n" + h + "\r\n", 400},
      {"crlf_lines_above_limit",
       [] {
         std::string s;
         for (int i = 0; i < 33; ++i) s += "\r\n";
         return s;
       }(),
       431, Small()},
      {"trailers_above_limit",
       "POST / HTTP/1.1\r\n" + h +
           "Transfer-Encoding: chunked\r\n\r\n0\r\nT: " + std::string(70, 't') + "\r\n\r\n",
       431, Small()},
  };
}

class Errors : public testing::TestWithParam<ErrorCase> {};

TEST_P(Errors, ExactStatusUnderEverySplit) {
  const ErrorCase& c = GetParam();
  Outcome whole = Whole(c.input, c.limits);
  EXPECT_FALSE(whole.ok);
  EXPECT_EQ(whole.status, c.status);
  EXPECT_TRUE(whole.requests.empty());
  ExpectSplitInvariant(c.input, c.limits);
}

TEST_P(Errors, FeedAfterErrorReturnsFalseAndProducesNothing) {
  const ErrorCase& c = GetParam();
  RequestParser p(c.limits);
  std::vector<HttpRequest> out;
  EXPECT_FALSE(p.feed(c.input, out));
  EXPECT_FALSE(p.error_reason().empty());
  EXPECT_FALSE(p.feed("GET / HTTP/1.1\r\nHost: a\r\n\r\n", out));
  EXPECT_FALSE(p.feed("", out));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(p.error_status(), c.status);
  EXPECT_FALSE(p.mid_request());
  EXPECT_FALSE(p.wants_continue());
}

INSTANTIATE_TEST_SUITE_P(Corpus, Errors, testing::ValuesIn(ErrorCorpus()),
                         [](const testing::TestParamInfo<ErrorCase>& i) { return i.param.name; });

TEST(HttpParser, ContentLengthAboveLimitRejectedBeforeAnyBody) {
  RequestParser p;
  std::vector<HttpRequest> out;
  EXPECT_TRUE(p.feed("PUT /big HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n", out));
  EXPECT_FALSE(p.feed("\r\n", out));  // the head's last byte decides it
  EXPECT_EQ(p.error_status(), 413);
  EXPECT_TRUE(out.empty());
}

TEST(HttpParser, OversizedChunkRejectedFromItsSizeLine) {
  ParserLimits l;
  l.max_body_bytes = 10;
  RequestParser p(l);
  std::vector<HttpRequest> out;
  ASSERT_TRUE(p.feed(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", out));
  EXPECT_FALSE(p.feed("6\r\n", out));
  EXPECT_EQ(p.error_status(), 413);
}

// A head of exactly `size` bytes (request line + headers + final CRLF).
std::string HeadOfSize(size_t size) {
  std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
  head += std::string(size - head.size() - 4, 'v');
  head += "\r\n\r\n";
  return head;
}

TEST(HttpParser, HeadLimitIsExactAndCountedAcrossFeeds) {
  ParserLimits l;  // default 16384
  std::string at_limit = HeadOfSize(l.max_header_bytes);
  std::string over = HeadOfSize(l.max_header_bytes + 1);
  ASSERT_EQ(at_limit.size(), 16384u);
  EXPECT_EQ(Whole(at_limit).requests.size(), 1u);
  EXPECT_EQ(Whole(over).status, 431);
  for (size_t piece : {1u, 7u, 100u, 4096u}) {
    std::vector<size_t> cuts;
    for (size_t i = piece; i < over.size(); i += piece) cuts.push_back(i);
    EXPECT_EQ(FeedCuts(at_limit, cuts).requests.size(), 1u) << piece;
    Outcome o = FeedCuts(over, cuts);
    EXPECT_EQ(o.status, 431) << piece;
    EXPECT_TRUE(o.requests.empty());
  }
  // Leading empty lines count too, so they cannot be sent forever.
  EXPECT_EQ(Whole("\r\n" + HeadOfSize(l.max_header_bytes - 2)).requests.size(), 1u);
  EXPECT_EQ(Whole("\r\n" + at_limit).status, 431);
  ExpectSplitInvariant(over, l, 97);
}

TEST(HttpParser, HeadLimitAppliesToEachPipelinedRequest) {
  ParserLimits l;
  std::string two = HeadOfSize(l.max_header_bytes) + HeadOfSize(l.max_header_bytes);
  Outcome o = Whole(two);
  EXPECT_TRUE(o.ok);
  EXPECT_EQ(o.requests.size(), 2u);
}

TEST(HttpParser, TargetLimitIsExact) {
  ParserLimits l;  // default 8192
  auto request = [](size_t target_size) {
    return "GET /" + std::string(target_size - 1, 'p') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  };
  Outcome ok = Whole(request(l.max_target_bytes));
  ASSERT_EQ(ok.requests.size(), 1u);
  EXPECT_EQ(ok.requests[0].target.size(), 8192u);
  EXPECT_EQ(Whole(request(l.max_target_bytes + 1)).status, 414);
  EXPECT_EQ(Bytewise(request(l.max_target_bytes + 1)).status, 414);
  ExpectSplitInvariant(request(l.max_target_bytes + 1), l, 61);
}

// Random byte edits of valid requests, under small and default limits: the
// verdict and the requests must not depend on how the bytes are split.
TEST(HttpParser, MutatedInputsGiveTheSameResultHoweverSplit) {
  const std::vector<std::string> corpus = {kGet,
                                           kPostLength,
                                           kPostChunked,
                                           kHttp10Close,
                                           kExpectContinue,
                                           kLeadingEmptyLines,
                                           kOptionsStar,
                                           kUpgradeIgnored,
                                           kChunkedExtensions,
                                           kConnectionOptions};
  const std::string alphabet = std::string(" \t\r\n:;,0123456789aAHTP/.-\"=?*#@[]\x7f\xff") + '\0';
  ParserLimits small;
  small.max_header_bytes = 120;
  small.max_target_bytes = 20;
  small.max_body_bytes = 12;
  std::mt19937 rng(20240601);
  for (int iteration = 0; iteration < 3000; ++iteration) {
    std::string in = corpus[rng() % corpus.size()] + corpus[rng() % corpus.size()];
    for (int edits = static_cast<int>(rng() % 4); edits > 0; --edits) {
      size_t pos = rng() % in.size();
      char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0:
          in[pos] = c;
          break;
        case 1:
          in.insert(in.begin() + static_cast<std::ptrdiff_t>(pos), c);
          break;
        default:
          in.erase(pos, 1);
      }
    }
    ParserLimits limits = iteration % 2 == 0 ? small : ParserLimits{};
    Outcome whole = Whole(in, limits);
    std::vector<size_t> cuts;
    for (size_t c = 1 + rng() % 7; c < in.size(); c += 1 + rng() % 7) cuts.push_back(c);
    Outcome split = FeedCuts(in, cuts, limits);
    Outcome bytes = Bytewise(in, limits);
    ASSERT_EQ(split.described, whole.described) << testing::PrintToString(in);
    ASSERT_EQ(split.status, whole.status) << testing::PrintToString(in);
    ASSERT_EQ(bytes.described, whole.described) << testing::PrintToString(in);
    ASSERT_EQ(bytes.status, whole.status) << testing::PrintToString(in);
  }
}

}  // namespace
}  // namespace ringhttpd::proto

// ---- events: what the network process streams from ----

namespace ringhttpd::proto {
namespace {

std::string Kinds(const RequestEvents& ev) {
  std::string s;
  for (const RequestEvent& e : ev.events) {
    s += e.kind == RequestEvent::Kind::head ? 'H' : e.kind == RequestEvent::Kind::body ? 'B' : 'E';
  }
  return s;
}

TEST(HttpParserEvents, HeadComesBeforeItsBodyAndTheBodyPointsIntoTheInput) {
  RequestParser parser;
  RequestEvents ev;
  const std::string first = "POST /u HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabcd";
  ASSERT_TRUE(parser.feed_events(first, ev));
  EXPECT_EQ(Kinds(ev), "HB");
  ASSERT_EQ(ev.heads.size(), 1u);
  EXPECT_EQ(ev.heads[0].target, "/u");
  // No copy of the head either: its target is a view into what was fed.
  EXPECT_EQ(ev.heads[0].target.data(), first.data() + 5);
  EXPECT_TRUE(ev.heads[0].keep_alive);
  EXPECT_EQ(ev.events[0].length, 10u);
  EXPECT_EQ(ev.events[1].piece, "abcd");
  // No copy: the piece is a view into what was fed.
  EXPECT_EQ(ev.events[1].piece.data(), first.data() + first.size() - 4);
  EXPECT_TRUE(parser.mid_request());
  ev.clear();
  ASSERT_TRUE(parser.feed_events("efghijGET / HTTP/1.1\r\nHost: t\r\n\r\n", ev));
  EXPECT_EQ(Kinds(ev), "BEHE");
  EXPECT_EQ(ev.events[0].piece, "efghij");
  EXPECT_EQ(ev.events[1].length, 10u);  // the end says the whole body's length
  EXPECT_EQ(ev.completed, 2u);
  EXPECT_EQ(ev.heads.size(), 1u);
}

TEST(HttpParserEvents, ChunkedBodyIsUnknownLengthAndArrivesWithoutFraming) {
  RequestParser parser;
  RequestEvents ev;
  ASSERT_TRUE(parser.feed_events(
      "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n",
      ev));
  EXPECT_EQ(Kinds(ev), "HBB");
  EXPECT_EQ(ev.events[0].length, kUnknownBodyLength);
  EXPECT_EQ(ev.events[1].piece, "abc");
  EXPECT_EQ(ev.events[2].piece, "de");
  ev.clear();
  ASSERT_TRUE(parser.feed_events("0\r\nTrailer: dropped\r\n\r\n", ev));
  EXPECT_EQ(Kinds(ev), "E");
  EXPECT_EQ(ev.events[0].length, 5u);
}

TEST(HttpParserEvents, TheBodyLimitStillAppliesWhenNothingIsCollected) {
  ParserLimits limits;
  limits.max_body_bytes = 8;
  RequestParser parser(limits);
  RequestEvents ev;
  EXPECT_FALSE(
      parser.feed_events("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
                         "chunked\r\n\r\n5\r\nabcde\r\n5\r\nfghij\r\n",
                         ev));
  EXPECT_EQ(parser.error_status(), 413);
  EXPECT_EQ(Kinds(ev), "HB");  // the piece within the limit, then the failure
}

TEST(HttpParserEvents, ConsumedStopsAfterTheFirstRequestEnds) {
  RequestParser parser;
  RequestEvents ev;
  const std::string two = "GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n";
  size_t used = 0;
  ASSERT_TRUE(parser.feed_events(two, ev, &used));
  EXPECT_EQ(Kinds(ev), "HE");
  EXPECT_EQ(used, two.size() / 2);
}

}  // namespace
}  // namespace ringhttpd::proto

namespace ringhttpd::proto {
namespace {

// Heads are views into what was fed (one copy, into the ring, later): the
// target, names and values of a head that arrived whole point into the
// input, and its method is a static name, not a copy.
TEST(HttpParserEvents, AWholeHeadIsViewsIntoTheInput) {
  RequestParser parser;
  RequestEvents ev;
  const std::string input = "GET /a/b?c HTTP/1.1\r\nHost: h\r\nX-Long: some value  \r\n\r\n";
  ASSERT_TRUE(parser.feed_events(input, ev));
  ASSERT_EQ(ev.heads.size(), 1u);
  const RequestHead& h = ev.heads[0];
  auto inside = [&](std::string_view v) {
    return v.data() >= input.data() && v.data() + v.size() <= input.data() + input.size();
  };
  EXPECT_EQ(h.method, "GET");
  EXPECT_FALSE(inside(h.method));
  EXPECT_TRUE(inside(h.target));
  ASSERT_EQ(h.headers.size(), 2u);
  for (const HeaderView& f : h.headers) {
    EXPECT_TRUE(inside(f.name));
    EXPECT_TRUE(inside(f.value));
  }
  EXPECT_EQ(h.headers[1].value, "some value");  // trimmed in place
}

// A head cut by the end of a feed keeps what it has in its own storage: the
// caller may reuse its buffer at once. Every split point, each feed from a
// buffer scribbled over right after, gives the head the whole input gives
// (the network process reads each time into the same buffer).
TEST(HttpParserEvents, AHeadCutAcrossFeedsOutlivesEachFeedsBuffer) {
  const std::string input =
      "PATCH /some/longer/target?with=query HTTP/1.1\r\nHost: example.com\r\n"
      "X-A: alpha\r\nX-Empty:\r\nX-B:  beta gamma \r\nContent-Length: 3\r\n\r\nxyz";
  RequestParser whole_parser;
  std::vector<HttpRequest> whole;
  ASSERT_TRUE(whole_parser.feed(input, whole));
  ASSERT_EQ(whole.size(), 1u);
  const size_t head_end = input.find("\r\n\r\n") + 4;
  for (size_t cut = 1; cut < head_end; ++cut) {
    for (size_t second = cut; second <= head_end; second += 7) {
      RequestParser parser;
      RequestEvents ev;
      std::string buffer;
      const size_t bounds[] = {0, cut, second, input.size()};
      for (size_t i = 0; i + 1 < std::size(bounds); ++i) {
        buffer.assign(input, bounds[i], bounds[i + 1] - bounds[i]);
        ASSERT_TRUE(parser.feed_events(buffer, ev)) << cut << " " << second;
        if (!ev.heads.empty()) ev.heads.back().own();  // as the network process keeps it
        std::fill(buffer.begin(), buffer.end(), '#');
      }
      ASSERT_EQ(ev.heads.size(), 1u) << cut << " " << second;
      const HttpRequest got = ev.heads[0].to_request();
      EXPECT_EQ(got.method, whole[0].method);
      EXPECT_EQ(got.target, whole[0].target) << cut << " " << second;
      ASSERT_EQ(got.headers.size(), whole[0].headers.size()) << cut << " " << second;
      for (size_t h = 0; h < got.headers.size(); ++h) {
        EXPECT_EQ(got.headers[h].name, whole[0].headers[h].name) << cut << " " << second;
        EXPECT_EQ(got.headers[h].value, whole[0].headers[h].value) << cut << " " << second;
      }
    }
  }
}

// The same one byte per feed with a head larger than the storage's first
// allocation: the storage grows many times, and views move with it.
TEST(HttpParserEvents, AHeadFedByteByByteSurvivesItsStorageGrowing) {
  std::string input = "GET /" + std::string(300, 't') + " HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 40; ++i) {
    input += "X-Field-" + std::to_string(i) + ": value number " + std::to_string(i) + "\r\n";
  }
  input += "\r\n";
  RequestParser parser;
  RequestEvents ev;
  std::string byte;
  for (char c : input) {
    byte.assign(1, c);
    ASSERT_TRUE(parser.feed_events(byte, ev));
    byte[0] = '#';
  }
  ASSERT_EQ(ev.heads.size(), 1u);
  const RequestHead& h = ev.heads[0];
  EXPECT_EQ(h.target, "/" + std::string(300, 't'));
  ASSERT_EQ(h.headers.size(), 41u);
  EXPECT_EQ(h.header("Host"), "h");
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(h.header("X-Field-" + std::to_string(i)), "value number " + std::to_string(i));
  }
}

// own() after the fact: a head parsed whole, then owned, no longer reads
// the input.
TEST(HttpParserEvents, AnOwnedHeadNoLongerReadsTheInput) {
  RequestParser parser;
  RequestEvents ev;
  std::string input = "DELETE /x HTTP/1.1\r\nHost: a\r\nB: c\r\n\r\n";
  ASSERT_TRUE(parser.feed_events(input, ev));
  ASSERT_EQ(ev.heads.size(), 1u);
  RequestHead head = std::move(ev.heads[0]);
  head.own();
  std::fill(input.begin(), input.end(), '#');
  RequestHead moved = std::move(head);  // a move keeps the owned bytes in place
  EXPECT_TRUE(head.target.empty());     // and leaves the source empty, safe to own()
  EXPECT_TRUE(head.headers.empty());
  head.own();
  EXPECT_EQ(head.storage_capacity(), 0u);
  EXPECT_EQ(moved.method, "DELETE");
  EXPECT_EQ(moved.target, "/x");
  EXPECT_EQ(moved.header("host"), "a");
  EXPECT_EQ(moved.header("B"), "c");
  EXPECT_EQ(moved.host(), "a");
  EXPECT_EQ(moved.path(), "/x");
}

// A request handed back with recycle() lends its buffers to the next one
// and nothing else: the next request has exactly its own method, target and
// headers, whether it was already parsed (pipelined) or comes later.
TEST(HttpParser, ARecycledRequestLeavesNothingInTheNext) {
  RequestParser parser;
  RequestEvents ev;
  ASSERT_TRUE(parser.feed_events(
      "POST /first/long/target?x=1 HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nX-Two: 2\r\n"
      "Content-Length: 0\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\n\r\n",
      ev));
  ASSERT_EQ(ev.heads.size(), 2u);
  parser.recycle(std::move(ev.heads[0]));
  EXPECT_EQ(ev.heads[1].method, "GET");
  EXPECT_EQ(ev.heads[1].target, "/b");
  ASSERT_EQ(ev.heads[1].headers.size(), 1u);
  parser.recycle(std::move(ev.heads[1]));
  for (int round = 0; round < 3; ++round) {
    ev.clear();
    ASSERT_TRUE(parser.feed_events("HEAD /c HTTP/1.1\r\nAccept: x\r\nHost: c\r\n\r\n", ev));
    ASSERT_EQ(ev.heads.size(), 1u);
    const RequestHead& r = ev.heads[0];
    EXPECT_EQ(r.method, "HEAD");
    EXPECT_EQ(r.target, "/c");
    EXPECT_EQ(r.version_minor, 1);
    EXPECT_TRUE(r.keep_alive);
    ASSERT_EQ(r.headers.size(), 2u);
    EXPECT_EQ(r.headers[0].name, "Accept");
    EXPECT_EQ(r.headers[1].value, "c");
    parser.recycle(std::move(ev.heads[0]));
  }
}

// The buffers really are reused: the request that begins after a recycle
// gets the recycled header list, with its capacity.
TEST(HttpParser, TheRequestAfterARecycleTakesItsBuffers) {
  RequestParser parser;
  RequestEvents ev;
  ASSERT_TRUE(
      parser.feed_events("GET /a HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"
                         "E: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\nI: 9\r\n\r\n",
                         ev));
  ASSERT_EQ(ev.heads.size(), 1u);
  const size_t lent = ev.heads[0].headers.capacity();
  ASSERT_GE(lent, 10u);  // more than a fresh head's room
  parser.recycle(std::move(ev.heads[0]));
  ev.clear();
  // /x began before the recycle; /y begins when /x ends, on the lent list.
  ASSERT_TRUE(parser.feed_events(
      "GET /x HTTP/1.1\r\nHost: x\r\n\r\nGET /y HTTP/1.1\r\nHost: y\r\n\r\n", ev));
  ASSERT_EQ(ev.heads.size(), 2u);
  EXPECT_EQ(ev.heads[1].headers.size(), 1u);
  EXPECT_EQ(ev.heads[1].headers.capacity(), lent);
  EXPECT_LT(ev.heads[0].headers.capacity(), lent);
}

// Pipelined requests are all parsed from one read before the first is
// recycled: each request of the next batch takes a list the previous batch
// gave back (not only the first one), so a steady pipelined stream does not
// allocate a header list per request.
TEST(HttpParser, EachRequestOfAPipelinedBatchTakesARecycledList) {
  RequestParser parser;
  RequestEvents ev;
  std::string many_headers = "GET /a HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 12; ++i) many_headers += "X-" + std::to_string(i) + ": v\r\n";
  many_headers += "\r\n";
  std::string batch;
  for (int i = 0; i < 4; ++i) batch += many_headers;
  ASSERT_TRUE(parser.feed_events(batch, ev));
  ASSERT_EQ(ev.heads.size(), 4u);
  std::set<const HeaderView*> lent;
  for (RequestHead& h : ev.heads) {
    lent.insert(h.headers.data());
    parser.recycle(std::move(h));
  }
  ev.clear();
  batch.clear();
  for (int i = 0; i < 4; ++i) batch += "GET /b HTTP/1.1\r\nHost: b\r\n\r\n";
  ASSERT_TRUE(parser.feed_events(batch, ev));
  ASSERT_EQ(ev.heads.size(), 4u);
  // The first began when the last of the previous batch ended, before the
  // recycling; the three after it each took one of the lent lists.
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(lent.count(ev.heads[i].headers.data()), 1u) << i;
    EXPECT_EQ(ev.heads[i].headers.size(), 1u);
    EXPECT_EQ(ev.heads[i].header("Host"), "b");
  }
}
}  // namespace
}  // namespace ringhttpd::proto
