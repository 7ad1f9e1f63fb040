// HTTP/1.1 conformance of the real binary (RFC 9112 / RFC 9110, issue #8):
// a table of raw byte sequences, each sent on a fresh connection, with the
// statuses expected in order and whether the server then closes. Framing
// doubt (Content-Length, Transfer-Encoding, chunk lines, field syntax) must
// give one error answer and a close, so that a smuggled second request is
// never answered; valid pipelined requests must all be answered, in order.
// A subset is also sent split in two writes at every byte boundary.
//
// Two servers serve the table: one with the default limits and one with
// smaller ones (max_header_bytes 8192, max_body_bytes 64) for 413 and 431.
// (8192 is the default max_target_bytes, which may not exceed the head
// limit; so the small config needs no max_target_bytes key.)
// Routes: host "abs.example" -> 202 (to see which host a request routes on),
// "/created" -> 201, "/echo" -> the echo service, "/" -> 200.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/integration/server_harness.h"

namespace ringhttpd::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Waits: for each expected response, for the close, and for an unexpected
// extra response or close on a connection that should stay open.
constexpr auto kResponseWait = 2s;
constexpr auto kExtraWait = 200ms;
constexpr auto kOpenCheckWait = 100ms;
constexpr auto kSplitPause = 2ms;  // between the two writes of a split

constexpr bool kClosed = true;
constexpr bool kOpen = false;

enum class Limits { kDefault, kSmall };

std::string config(Limits limits) {
  json network = {{"processes", 1}};
  if (limits == Limits::kSmall) {
    network["max_header_bytes"] = 8192;
    network["max_body_bytes"] = 64;
  }
  return json{
      {"listeners", {{{"address", "127.0.0.1"}, {"port", 0}}}},
      {"network", network},
      {"services", {{{"name", "app"}, {"type", "echo"}, {"processes", 1}}}},
      {"routes",
       {{{"host", "abs.example"}, {"path", "/"}, {"respond", {{"status", 202}, {"body", "abs\n"}}}},
        {{"path", "/created"}, {"respond", {{"status", 201}, {"body", "created\n"}}}},
        {{"path", "/echo"}, {"service", "app"}},
        {{"path", "/"}, {"respond", {{"status", 200}, {"body", "hello\n"}}}}}},
      {"log", {{"level", "info"}}},
  }
      .dump();
}

struct Case {
  const char* name;
  std::string bytes;
  std::vector<int> statuses;  // every response, in order
  bool closed;                // the server closes after them
  Limits limits = Limits::kDefault;
  unsigned head_mask = 0;  // bit i: response i answers a HEAD (no body bytes)
};

std::string Printable(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes.substr(0, 400)) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (bytes.size() > 400) out += "... (" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name << ": " << Printable(c.bytes); }

// ---------------------------------------------------------------------------
// Request builders

const std::string kHost = "Host: t\r\n";

std::string Get(const std::string& target, const std::string& fields = "") {
  return "GET " + target + " HTTP/1.1\r\n" + kHost + fields + "\r\n";
}

std::string Post(const std::string& target, const std::string& fields, const std::string& body) {
  return "POST " + target + " HTTP/1.1\r\n" + kHost + fields + "\r\n" + body;
}

std::string Chunked(const std::string& te, const std::string& body) {
  return Post("/echo", "Transfer-Encoding: " + te + "\r\n", body);
}

// A request line with any method, target and version, Host included.
std::string Line(const std::string& request_line, const std::string& fields = kHost) {
  return request_line + "\r\n" + fields + "\r\n";
}

// Any GET line with the given fields: for field syntax cases.
std::string WithFields(const std::string& fields) { return "GET / HTTP/1.1\r\n" + fields + "\r\n"; }

// prefix + n copies of c (+ suffix), built by appending.
std::string Repeat(std::string prefix, size_t n, char c, std::string_view suffix = "") {
  prefix.append(n, c);
  prefix.append(suffix);
  return prefix;
}

// The request a smuggler hopes the server will see as a second one.
const std::string kSmuggled = Get("/created");

// ---------------------------------------------------------------------------
// The table

std::vector<Case> ValidCases() {
  return {
      {"get_origin_form", Get("/"), {200}, kOpen},
      {"get_service_path", Get("/echo/x?y=1"), {200}, kOpen},
      {"post_content_length_echo", Post("/echo", "Content-Length: 5\r\n", "hello"), {200}, kOpen},
      {"post_content_length_leading_zeros",
       Post("/echo", "Content-Length: 005\r\n", "hello"),
       {200},
       kOpen},
      {"post_chunked_with_trailers",
       Chunked("chunked", "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\nX-More: 2\r\n\r\n"),
       {200},
       kOpen},
      {"post_chunked_extensions",
       Chunked(
           "chunked",
           "5 ; a = b ;c; d=\"\"\r\nhello\r\n6;q=\"a \\\"quoted\\\" \\\\ \xc3\xa9\"\r\n world\r\n"
           "000A;x\r\n0123456789\r\n0;last=\"y\"\r\n\r\n"),
       {200},
       kOpen},
      {"post_chunked_odd_case_coding", Chunked("ChUnKeD", "3\r\nabc\r\n0\r\n\r\n"), {200}, kOpen},
      {"pipelined_in_order",
       Get("/created") + Get("/echo") + Line("GET / HTTP/1.1", "Host: abs.example\r\n") +
           Post("/echo", "Content-Length: 3\r\n", "abc") + Get("/created"),
       {201, 200, 202, 200, 201},
       kOpen},
      {"pipelined_ten_mixed",
       [] {
         std::string s;
         for (int i = 0; i < 5; ++i) s += Get("/echo/" + std::to_string(i)) + Get("/created");
         return s;
       }(),
       {200, 201, 200, 201, 200, 201, 200, 201, 200, 201},
       kOpen},
      {"pipelined_chunked_then_get",
       Chunked("chunked", "3\r\nabc\r\n0\r\n\r\n") + Get("/created"),
       {200, 201},
       kOpen},
      {"leading_empty_lines", "\r\n\r\n" + Get("/"), {200}, kOpen},
      {"http10_closes_by_default", Line("GET / HTTP/1.0", "") + Get("/created"), {200}, kClosed},
      {"http10_keep_alive",
       Line("GET / HTTP/1.0", "Connection: keep-alive\r\n") +
           Line("GET /created HTTP/1.0", "Connection: Keep-Alive\r\n"),
       {200, 201},
       kOpen},
      {"http10_keep_alive_in_a_list",
       Line("GET / HTTP/1.0", "Connection: foo, KEEP-ALIVE \r\n") + Get("/created"),
       {200, 201},
       kOpen},
      {"http10_keep_alive_then_default_closes",
       Line("GET / HTTP/1.0", "Connection: keep-alive\r\n") + Line("GET /created HTTP/1.0", "") +
           Get("/"),
       {200, 201},
       kClosed},
      {"http10_keep_alive_and_close",
       Line("GET / HTTP/1.0", "Connection: keep-alive, close\r\n") + Get("/created"),
       {200},
       kClosed},
      {"http11_close_in_a_list",
       Get("/", "Connection: foo, Close\r\n") + Get("/created"),
       {200},
       kClosed},
      {"http11_close_upper_case",
       Get("/", "Connection: CLOSE\r\n") + Get("/created"),
       {200},
       kClosed},
      {"http11_close_on_second_line",
       Get("/", "Connection: foo\r\nConnection: close\r\n") + Get("/created"),
       {200},
       kClosed},
      {"http11_closed_is_not_close",
       Get("/", "Connection: closed\r\n") + Get("/created"),
       {200, 201},
       kOpen},
      {"head_then_get_no_stray_bytes",
       Line("HEAD / HTTP/1.1") + Get("/created"),
       {200, 201},
       kOpen,
       Limits::kDefault,
       0b1},
      {"head_service_then_get",
       Line("HEAD /echo HTTP/1.1") + Get("/created"),
       {200, 201},
       kOpen,
       Limits::kDefault,
       0b1},
      {"target_of_8000_octets", Get(Repeat("/echo/", 7994, 't')), {200}, kOpen},
      {"field_value_bytes_above_0x7f",
       Get("/echo", "X-Name: caf\xc3\xa9 \xff\x80\r\n"),
       {200},
       kOpen},
      {"absolute_form_overrides_host",
       Line("GET http://abs.example/x HTTP/1.1", "Host: other.example\r\n"),
       {202},
       kOpen},
      {"absolute_form_other_host_wins",
       Line("GET http://other.example/x HTTP/1.1", "Host: abs.example\r\n"),
       {200},
       kOpen},
      {"host_header_port_ignored",
       Line("GET / HTTP/1.1", "Host: abs.example:8080\r\n"),
       {202},
       kOpen},
      {"http10_without_host", Line("GET / HTTP/1.0", ""), {200}, kClosed},
      {"absolute_form_without_host_http10",
       Line("GET http://abs.example/x HTTP/1.0", "") + Get("/created"),
       {202},
       kClosed},
      {"host_ipv6_literal_with_port", Line("GET / HTTP/1.1", "Host: [::1]:8080\r\n"), {200}, kOpen},
      {"host_empty_port", Line("GET / HTTP/1.1", "Host: abs.example:\r\n"), {202}, kOpen},
      {"host_empty_value", Line("GET / HTTP/1.1", "Host:\r\n"), {200}, kOpen},
      // Trailing OWS (SP and HTAB) is not part of a field value (RFC 9110 §5.5).
      {"cl_trailing_tab",
       Post("/echo", "Content-Length: 5\t\r\n", "hello") + Get("/created"),
       {200, 201},
       kOpen},
      {"te_trailing_tab",
       Chunked("chunked\t", "3\r\nabc\r\n0\r\n\r\n") + Get("/created"),
       {200, 201},
       kOpen},
      {"host_trailing_tab", Line("GET / HTTP/1.1", "Host: abs.example\t\r\n"), {202}, kOpen},
      {"http11_close_trailing_tab",
       Get("/", "Connection: close\t\r\n") + Get("/created"),
       {200},
       kClosed},
      {"http11_close_in_a_list_trailing_tab",
       Get("/", "Connection: foo,close\t\r\n") + Get("/created"),
       {200},
       kClosed},
      {"http11_close_tab_before_comma",
       Get("/", "Connection: close\t, foo\r\n") + Get("/created"),
       {200},
       kClosed},
      {"http10_keep_alive_trailing_tab",
       Line("GET / HTTP/1.0", "Connection: keep-alive\t\r\n") + Get("/created"),
       {200, 201},
       kOpen},
      {"http10_keep_alive_tab_before_comma",
       Line("GET / HTTP/1.0", "Connection: keep-alive\t, foo\r\n") + Get("/created"),
       {200, 201},
       kOpen},
      // Accepted by the parser; no route serves "*".
      {"options_asterisk_form", Line("OPTIONS * HTTP/1.1"), {200}, kOpen},
      {"known_method_purge", Line("PURGE / HTTP/1.1"), {200}, kOpen},
      {"known_method_delete_service", Line("DELETE /echo HTTP/1.1"), {200}, kOpen},
      {"expect_continue_without_body", Get("/", "Expect: 100-continue\r\n"), {200}, kOpen},
      {"small_body_at_limit",
       Post("/echo", "Content-Length: 64\r\n", std::string(64, 'b')),
       {200},
       kOpen,
       Limits::kSmall},
  };
}

// Content-Length and Transfer-Encoding, and attempts to smuggle a request
// past a peer that frames the bytes differently: one error answer, a close,
// and never an answer to kSmuggled.
std::vector<Case> FramingCases() {
  return {
      {"cl_non_numeric",
       Post("/echo", "Content-Length: abc\r\n", "abc") + kSmuggled,
       {400},
       kClosed},
      {"cl_plus_sign", Post("/echo", "Content-Length: +3\r\n", "abc") + kSmuggled, {400}, kClosed},
      {"cl_negative", Post("/echo", "Content-Length: -3\r\n", "abc") + kSmuggled, {400}, kClosed},
      {"cl_empty", Post("/echo", "Content-Length:\r\n", "") + kSmuggled, {400}, kClosed},
      {"cl_above_2_pow_63",
       Post("/echo", "Content-Length: 9223372036854775809\r\n", ""),
       {400},
       kClosed},
      {"cl_2_pow_64_wraps_to_zero",
       Post("/echo", "Content-Length: 18446744073709551616\r\n", "") + kSmuggled,
       {400},
       kClosed},
      {"cl_differing_lines",
       Post("/echo", "Content-Length: 3\r\nContent-Length: 8\r\n", "abc") + kSmuggled,
       {400},
       kClosed},
      // Decision: identical values, as a list or repeated, are rejected too.
      {"cl_list_of_identical_values",
       Post("/echo", "Content-Length: 3, 3\r\n", "abc"),
       {400},
       kClosed},
      {"cl_repeated_identical_lines",
       Post("/echo", "Content-Length: 3\r\nContent-Length: 3\r\n", "abc"),
       {400},
       kClosed},
      {"cl_list_of_differing_values",
       Post("/echo", "Content-Length: 0, 3\r\n", "abc") + kSmuggled,
       {400},
       kClosed},
      {"te_final_coding_not_chunked", Chunked("gzip", "abc"), {501}, kClosed},
      {"te_chunked_then_gzip", Chunked("chunked, gzip", "0\r\n\r\n"), {400}, kClosed},
      {"te_unknown_coding", Chunked("xchunked", "0\r\n\r\n"), {501}, kClosed},
      {"te_chunked_twice_in_a_list", Chunked("chunked, chunked", "0\r\n\r\n"), {400}, kClosed},
      {"te_chunked_twice_on_two_lines",
       Post("/echo", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"),
       {400},
       kClosed},
      {"te_leading_comma", Chunked(", chunked", "0\r\n\r\n") + kSmuggled, {400}, kClosed},
      {"te_vertical_tab",
       Chunked("\x0b"
               "chunked",
               "0\r\n\r\n") +
           kSmuggled,
       {400},
       kClosed},
      {"te_empty", Chunked("", "0\r\n\r\n"), {400}, kClosed},
      {"te_in_http10",
       "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       {400},
       kClosed},
      {"smuggle_cl_te",
       Post("/echo", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n") +
           kSmuggled,
       {400},
       kClosed},
      {"smuggle_te_cl",
       Post("/echo", "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
            "5c\r\n" + kSmuggled + "\r\n0\r\n\r\n") +
           kSmuggled,
       {400},
       kClosed},
      {"smuggle_te_space_before_colon",
       Post("/echo", "Content-Length: 5\r\nTransfer-Encoding : chunked\r\n", "0\r\n\r\n") +
           kSmuggled,
       {400},
       kClosed},
      {"smuggle_te_leading_comma_with_cl",
       Post("/echo", "Content-Length: 5\r\nTransfer-Encoding: , chunked\r\n", "0\r\n\r\n") +
           kSmuggled,
       {400},
       kClosed},
      {"smuggle_te_obs_fold",
       Post("/echo", "Content-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n", "0\r\n\r\n") +
           kSmuggled,
       {400},
       kClosed},
      {"smuggle_te_vertical_tab_with_cl",
       Post("/echo", "Content-Length: 5\r\nTransfer-Encoding: chunked\x0b\r\n", "0\r\n\r\n") +
           kSmuggled,
       {400},
       kClosed},
      {"smuggle_chunk_size_cr_then_byte",
       Chunked("chunked", "5\rXhello\r\n0\r\n\r\n") + kSmuggled,
       {400},
       kClosed},
      {"smuggle_chunk_size_bare_lf",
       Chunked("chunked", "5\nhello\r\n0\r\n\r\n") + kSmuggled,
       {400},
       kClosed},
      {"smuggle_chunk_data_longer_than_size",
       Chunked("chunked", "3\r\nabc" + kSmuggled + "\r\n0\r\n\r\n"),
       {400},
       kClosed},
      {"smuggle_chunk_size_overflow",
       Chunked("chunked", "10000000000000003\r\nabc\r\n0\r\n\r\n") + kSmuggled,
       {400},
       kClosed},
      {"smuggle_chunk_size_invalid",
       Chunked("chunked", "3x\r\nabc\r\n0\r\n\r\n") + kSmuggled,
       {400},
       kClosed},
      {"smuggle_chunk_size_negative",
       Chunked("chunked", "-3\r\nabc\r\n0\r\n\r\n") + kSmuggled,
       {400},
       kClosed},
      {"smuggle_chunk_extension_bare_lf",
       Chunked("chunked", "3;a=b\nabc\r\n0\r\n\r\n") + kSmuggled,
       {400},
       kClosed},
      {"smuggle_chunk_extension_empty_name",
       Chunked("chunked", "3;=b\r\nabc\r\n0\r\n\r\n") + kSmuggled,
       {400},
       kClosed},
      {"smuggle_last_chunk_bare_lf", Chunked("chunked", "0\n\r\n") + kSmuggled, {400}, kClosed},
      {"smuggle_trailer_bare_lf",
       Chunked("chunked", "0\r\nT: 1\n\r\n") + kSmuggled,
       {400},
       kClosed},
      {"smuggle_after_a_valid_request",
       Get("/") +
           Post("/echo", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n") +
           kSmuggled,
       {200, 400},
       kClosed},
      {"smuggle_bare_lf_line_endings", "GET / HTTP/1.1\nHost: t\n\n" + kSmuggled, {400}, kClosed},
      {"smuggle_bare_cr_hides_te",
       Post("/echo", "X: a\rTransfer-Encoding: chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n") +
           kSmuggled,
       {400},
       kClosed},
  };
}

std::vector<Case> FieldCases() {
  return {
      // Host = uri-host [ ":" port ] (RFC 9110 §7.2); anything else is 400
      // (RFC 9112 §3.2), never a request routed on part of it.
      {"host_port_not_digits", Line("GET / HTTP/1.1", "Host: abs.example:x\r\n"), {400}, kClosed},
      {"host_two_ports", Line("GET / HTTP/1.1", "Host: abs.example:1:2\r\n"), {400}, kClosed},
      {"host_port_first", Line("GET / HTTP/1.1", "Host: x:abs.example\r\n"), {400}, kClosed},
      {"host_brackets_around_name",
       Line("GET / HTTP/1.1", "Host: [abs.example]\r\n"),
       {400},
       kClosed},
      {"host_closing_bracket", Line("GET / HTTP/1.1", "Host: abs.example]\r\n"), {400}, kClosed},
      {"host_unclosed_ipv6", Line("GET / HTTP/1.1", "Host: [::1\r\n"), {400}, kClosed},
      {"host_port_too_long",
       Line("GET / HTTP/1.1", "Host: abs.example:123456\r\n"),
       {400},
       kClosed},
      {"absolute_form_with_invalid_host_header",
       Line("GET http://abs.example/ HTTP/1.1", "Host: abs.example:x\r\n"),
       {400},
       kClosed},
      // Whitespace inside a framing value still makes it invalid.
      {"smuggle_cl_inner_tab",
       Post("/echo", "Content-Length: 5\t5\r\n", "hello") + kSmuggled,
       {400},
       kClosed},
      {"smuggle_te_trailing_tab_with_cl",
       Post("/echo", "Transfer-Encoding: chunked\t\r\nContent-Length: 5\r\n", "0\r\n\r\n") +
           kSmuggled,
       {400},
       kClosed},
      {"field_space_before_colon", WithFields("Host : t\r\n"), {400}, kClosed},
      {"field_tab_before_colon", WithFields(kHost + "X\t: y\r\n"), {400}, kClosed},
      {"field_whitespace_before_first_line", WithFields(" " + kHost), {400}, kClosed},
      {"field_obs_fold", WithFields(kHost + "X: a\r\n b\r\n"), {400}, kClosed},
      {"field_empty_name", WithFields(kHost + ": y\r\n"), {400}, kClosed},
      {"field_nul_in_value", WithFields(kHost + std::string("X: a\0b\r\n", 8)), {400}, kClosed},
      {"field_ctl_in_value",
       WithFields(kHost + "X: a\x01"
                          "b\r\n"),
       {400},
       kClosed},
      {"field_del_in_value",
       WithFields(kHost + "X: a\x7f"
                          "b\r\n"),
       {400},
       kClosed},
      {"field_bare_cr_in_value", WithFields(kHost + "X: a\rb\r\n"), {400}, kClosed},
      {"field_invalid_name_char", WithFields(kHost + "X(y): z\r\n"), {400}, kClosed},
      {"field_name_byte_above_0x7f", WithFields(kHost + "X\xc3\xa9: z\r\n"), {400}, kClosed},
      {"field_bare_lf_ending", WithFields(kHost + "X: y\n"), {400}, kClosed},
      {"field_without_colon", WithFields(kHost + "NoColon\r\n"), {400}, kClosed},
      {"host_missing_in_http11", WithFields("X: y\r\n"), {400}, kClosed},
      {"host_repeated", WithFields(kHost + kHost), {400}, kClosed},
      {"host_repeated_in_http10", "GET / HTTP/1.0\r\nHost: t\r\nHost: u\r\n\r\n", {400}, kClosed},
      {"host_invalid", WithFields("Host: a/b\r\n"), {400}, kClosed},
      {"expect_unknown", Get("/", "Expect: something\r\n"), {417}, kClosed},
      {"expect_continue_and_unknown",
       Post("/echo", "Expect: 100-continue, foo\r\nContent-Length: 3\r\n", "abc"),
       {417},
       kClosed},
  };
}

std::vector<Case> RequestLineCases() {
  return {
      {"line_double_space_after_method", Line("GET  / HTTP/1.1"), {400}, kClosed},
      {"line_double_space_before_version", Line("GET /  HTTP/1.1"), {400}, kClosed},
      {"line_leading_space", Line(" GET / HTTP/1.1"), {400}, kClosed},
      {"line_trailing_space", Line("GET / HTTP/1.1 "), {400}, kClosed},
      {"line_tab_separator", Line("GET\t/ HTTP/1.1"), {400}, kClosed},
      {"method_unknown_token", Line("FOO / HTTP/1.1"), {501}, kClosed},
      {"method_lower_case", Line("get / HTTP/1.1"), {501}, kClosed},
      {"method_long_token", Line(std::string(40, 'Z') + " / HTTP/1.1"), {501}, kClosed},
      {"method_rtsp_only", Line("DESCRIBE / HTTP/1.1"), {501}, kClosed},
      {"method_not_a_token", Line("G(T / HTTP/1.1"), {400}, kClosed},
      {"method_connect_authority_form",
       Line("CONNECT t:443 HTTP/1.1", "Host: t:443\r\n"),
       {501},
       kClosed},
      {"target_authority_form_outside_connect", Line("GET t:80 HTTP/1.1"), {400}, kClosed},
      {"target_asterisk_outside_options", Line("GET * HTTP/1.1"), {400}, kClosed},
      {"target_asterisk_with_path", Line("OPTIONS */x HTTP/1.1"), {400}, kClosed},
      {"target_relative", Line("GET a/b HTTP/1.1"), {400}, kClosed},
      {"target_absolute_empty_host", Line("GET http:///x HTTP/1.1"), {400}, kClosed},
      {"target_absolute_userinfo", Line("GET http://u@abs.example/ HTTP/1.1"), {400}, kClosed},
      {"target_absolute_port_not_digits",
       Line("GET http://abs.example:x/ HTTP/1.1"),
       {400},
       kClosed},
      {"target_absolute_bracketed_name",
       Line("GET http://[abs.example]/ HTTP/1.1"),
       {400},
       kClosed},
      {"http09_simple_request", "GET /\r\n\r\n", {400}, kClosed},
      {"version_lower_case_protocol", Line("GET / http/1.1"), {400}, kClosed},
      {"version_malformed", Line("GET / HTTP/11"), {400}, kClosed},
      {"version_0_9", Line("GET / HTTP/0.9", ""), {505}, kClosed},
      {"version_2_0", Line("GET / HTTP/2.0"), {505}, kClosed},
      {"version_3_0", Line("GET / HTTP/3.0"), {505}, kClosed},
      {"h2_connection_preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {505}, kClosed},
  };
}

std::vector<Case> LimitCases() {
  return {
      {"target_over_8192_octets", Get(Repeat("/", 9000, 'u')), {414}, kClosed},
      {"head_over_16384_octets", Get("/", Repeat("X-Big: ", 17000, 'h', "\r\n")), {431}, kClosed},
      {"small_head_over_limit",
       Get("/", Repeat("X-Big: ", 8200, 'h', "\r\n")),
       {431},
       kClosed,
       Limits::kSmall},
      {"small_content_length_over_limit",
       Post("/echo", "Content-Length: 65\r\n", std::string(65, 'b')) + kSmuggled,
       {413},
       kClosed,
       Limits::kSmall},
      {"small_chunked_body_over_limit",
       Chunked("chunked", Repeat("40\r\n", 64, 'b', "\r\n1\r\nb\r\n0\r\n\r\n")),
       {413},
       kClosed,
       Limits::kSmall},
      {"small_chunk_extensions_over_limit",
       Chunked("chunked", Repeat("1;", 8200, 'e', "\r\nb\r\n0\r\n\r\n")),
       {413},
       kClosed,
       Limits::kSmall},
  };
}

std::vector<Case> AllCases() {
  std::vector<Case> all;
  for (auto part : {ValidCases, FramingCases, FieldCases, RequestLineCases, LimitCases}) {
    for (Case& c : part()) all.push_back(std::move(c));
  }
  return all;
}

// Valid and smuggling cases replayed split in two writes.
const char* const kSplitNames[] = {
    "pipelined_in_order",
    "post_chunked_extensions",
    "http10_keep_alive",
    "head_then_get_no_stray_bytes",
    "post_content_length_echo",
    "method_unknown_token",
    "smuggle_cl_te",
    "smuggle_te_cl",
    "smuggle_te_leading_comma_with_cl",
    "smuggle_chunk_size_cr_then_byte",
    "smuggle_after_a_valid_request",
    "cl_trailing_tab",
    "te_trailing_tab",
    "http11_close_trailing_tab",
    "http10_keep_alive_trailing_tab",
    "smuggle_te_trailing_tab_with_cl",
};

// A case that keeps the connection open gets a final "Connection: close"
// request, so that its end is seen at once rather than after a wait.
Case EndingInClose(Case c) {
  if (c.closed) return c;
  c.bytes += Get("/created", "Connection: close\r\n");
  c.statuses.push_back(201);
  c.closed = kClosed;
  return c;
}

std::vector<Case> SplitCases() {
  std::vector<Case> out;
  for (const char* name : kSplitNames) {
    for (const Case& c : AllCases()) {
      if (std::string_view(c.name) == name) out.push_back(EndingInClose(c));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Running a case

struct Observed {
  std::vector<int> statuses;
  bool closed = false;
};

std::string Describe(const std::vector<int>& statuses, bool closed) {
  std::string s = "[";
  for (size_t i = 0; i < statuses.size(); ++i) s += (i ? ", " : "") + std::to_string(statuses[i]);
  return s + (closed ? "] then close" : "] and still open");
}

// Sends `parts` (a pause between them) on a fresh connection, then reads
// responses until the peer closes or nothing more comes.
Observed RunCase(int port, const Case& c, const std::vector<std::string>& parts) {
  Observed o;
  Client client(port);
  if (!client.connected()) return o;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) std::this_thread::sleep_for(kSplitPause);
    client.send(parts[i]);  // may fail once the server has answered and closed
  }
  while (o.statuses.size() <= c.statuses.size() + 1) {
    const size_t i = o.statuses.size();
    const bool expected = i < c.statuses.size();
    const auto wait = expected || c.closed ? kResponseWait : kExtraWait;
    const auto r = client.read_response(std::chrono::duration_cast<std::chrono::milliseconds>(wait),
                                        i < 32 && ((c.head_mask >> i) & 1u) != 0);
    if (!r) break;
    o.statuses.push_back(r->status);
  }
  o.closed = client.closed_by_peer(c.closed ? std::chrono::milliseconds(kResponseWait)
                                            : std::chrono::milliseconds(kOpenCheckWait));
  return o;
}

// The two servers, started once per test suite.
class Conformance : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    default_server_ = std::make_unique<Server>(config(Limits::kDefault));
    small_server_ = std::make_unique<Server>(config(Limits::kSmall));
  }
  static void TearDownTestSuite() {
    default_server_.reset();
    small_server_.reset();
  }

 protected:
  static Server& server(Limits limits) {
    return limits == Limits::kSmall ? *small_server_ : *default_server_;
  }
  void SetUp() override {
    ASSERT_TRUE(default_server_->ready()) << default_server_->log();
    ASSERT_TRUE(small_server_->ready()) << small_server_->log();
  }

 private:
  static inline std::unique_ptr<Server> default_server_;
  static inline std::unique_ptr<Server> small_server_;
};

class ConformanceTable : public Conformance, public ::testing::WithParamInterface<Case> {};

TEST_P(ConformanceTable, StatusesAndClose) {
  const Case& c = GetParam();
  const Observed o = RunCase(server(c.limits).port(), c, {c.bytes});
  EXPECT_EQ(o.statuses, c.statuses)
      << "sent: " << Printable(c.bytes) << "\nexpected " << Describe(c.statuses, c.closed)
      << ", got " << Describe(o.statuses, o.closed);
  EXPECT_EQ(o.closed, c.closed) << "sent: " << Printable(c.bytes) << "\nexpected "
                                << Describe(c.statuses, c.closed) << ", got "
                                << Describe(o.statuses, o.closed);
}

INSTANTIATE_TEST_SUITE_P(, ConformanceTable, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

class ConformanceSplit : public Conformance, public ::testing::WithParamInterface<Case> {};

TEST_P(ConformanceSplit, SameOutcomeAtEveryTwoWaySplit) {
  const Case& c = GetParam();
  for (size_t k = 1; k < c.bytes.size(); ++k) {
    const Observed o =
        RunCase(server(c.limits).port(), c, {c.bytes.substr(0, k), c.bytes.substr(k)});
    ASSERT_TRUE(o.statuses == c.statuses && o.closed == c.closed)
        << "split after byte " << k << " of " << c.bytes.size() << ": "
        << Printable(c.bytes.substr(0, k)) << " | " << Printable(c.bytes.substr(k)) << "\nexpected "
        << Describe(c.statuses, c.closed) << ", got " << Describe(o.statuses, o.closed);
  }
}

INSTANTIATE_TEST_SUITE_P(, ConformanceSplit, ::testing::ValuesIn(SplitCases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

TEST(ConformanceCorpus, TableIsLargeAndNamesAreUnique) {
  const std::vector<Case> all = AllCases();
  EXPECT_GE(all.size(), 80u);
  std::set<std::string> names;
  for (const Case& c : all) EXPECT_TRUE(names.insert(c.name).second) << c.name;
  EXPECT_EQ(SplitCases().size(), std::size(kSplitNames));
}

// ---------------------------------------------------------------------------
// Beyond statuses

// HEAD gets the header fields GET gets (Date aside) and no body; the GET
// pipelined after it parses, so no stray body byte was sent.
TEST_F(Conformance, HeadHasTheFieldsOfGetAndNoBody) {
  for (const std::string target : {"/created", "/echo/h"}) {
    Client c(server(Limits::kDefault).port());
    ASSERT_TRUE(c.send(Get(target) + Line("HEAD " + target + " HTTP/1.1") + Get(target)));
    auto get = c.read_response(kResponseWait);
    auto head = c.read_response(kResponseWait, true);
    auto again = c.read_response(kResponseWait);
    ASSERT_TRUE(get && head && again) << target;
    EXPECT_EQ(head->status, get->status);
    EXPECT_EQ(head->body, "");
    EXPECT_EQ(again->body.size(), get->body.size());
    get->headers.erase("date");
    head->headers.erase("date");
    if (target == "/echo/h") {
      // The echo body names the method: "HEAD" is one byte longer.
      EXPECT_EQ(std::stoul(head->headers["content-length"]), get->body.size() + 1);
      head->headers.erase("content-length");
      get->headers.erase("content-length");
    }
    EXPECT_EQ(head->headers, get->headers) << target;
  }
}

// An error answered to a HEAD request carries no body either (the 414 body
// would otherwise be read as the start of the next response).
TEST_F(Conformance, AnErrorAnsweredToHeadHasNoBody) {
  Client c(server(Limits::kDefault).port());
  ASSERT_TRUE(c.send("HEAD /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto text = c.read_until_close(kResponseWait);
  ASSERT_TRUE(text);
  EXPECT_EQ(text->rfind("HTTP/1.1 414 ", 0), 0u) << *text;
  EXPECT_NE(text->find("Content-Length: 17\r\n"), std::string::npos) << *text;
  EXPECT_EQ(text->substr(text->find("\r\n\r\n") + 4), "") << "body bytes after the head";
}

TEST_F(Conformance, FieldValueBytesAbove0x7FReachTheService) {
  Client c(server(Limits::kDefault).port());
  ASSERT_TRUE(c.send(Get("/echo", "X-Name: caf\xc3\xa9 \xc3\xbc\r\n")));
  auto r = c.read_response(kResponseWait);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["headers"]["X-Name"], "caf\xc3\xa9 \xc3\xbc");
}

TEST_F(Conformance, TargetOf8000OctetsReachesTheService) {
  const std::string target = Repeat("/echo/", 7994, 't');
  ASSERT_EQ(target.size(), 8000u);
  Client c(server(Limits::kDefault).port());
  ASSERT_TRUE(c.send(Get(target)));
  auto r = c.read_response(kResponseWait);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["path"], target);
}

// RFC 9112 §3.2.2: with an absolute-form target the Host field is ignored;
// the service sees the target's authority as its Host, the one the request
// was routed on, and not the one the client sent.
TEST_F(Conformance, AbsoluteFormAuthorityIsTheHostTheServiceSees) {
  Client c(server(Limits::kDefault).port());
  ASSERT_TRUE(
      c.send(Line("GET http://public.example:8080/echo/x HTTP/1.1", "Host: admin.internal\r\n")));
  auto r = c.read_response(kResponseWait);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  const json echo = json::parse(r->body);
  EXPECT_EQ(echo["headers"]["Host"], "public.example:8080") << r->body;
  // HTTP/1.0 without Host: the service gets one.
  Client old(server(Limits::kDefault).port());
  ASSERT_TRUE(old.send(Line("GET http://public.example/echo HTTP/1.0", "")));
  auto o = old.read_response(kResponseWait);
  ASSERT_TRUE(o);
  ASSERT_EQ(o->status, 200);
  EXPECT_EQ(json::parse(o->body)["headers"]["Host"], "public.example") << o->body;
}

TEST_F(Conformance, ChunkedBodyWithExtensionsIsDecoded) {
  Client c(server(Limits::kDefault).port());
  ASSERT_TRUE(c.send(
      Chunked("chunked", "5;a=\"x\\\"y\"\r\nhello\r\n6 ; b\r\n world\r\n0\r\nT: 1\r\n\r\n")));
  auto r = c.read_response(kResponseWait);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["body_length"], 11);
}

}  // namespace
}  // namespace ringhttpd::testing
