// Response heads: reason phrases, framing rules and the byte layout of the
// status line and headers the network process writes.
#include "proto/http_response.h"

#include <charconv>
#include <cstdio>
#include <ctime>

namespace ringhttpd::proto {

// The IANA HTTP Status Code Registry's phrases (RFC 9110 section 15, and
// RFC 2518 102, RFC 8297 103, RFC 4918 207/423/424, RFC 5842 208/508,
// RFC 3229 226, RFC 8470 425, RFC 6585 428/511, RFC 7725 451, RFC 2295 506,
// RFC 2774 510). 418 is reserved there ("(Unused)", RFC 9110 15.5.19) and
// given the phrase of RFC 2324 that servers and clients know it by; 306 is
// reserved without one, and the codes not registered (427, 509, ...) are
// "Unknown". A switch: the compiler makes it a jump table.
std::string_view reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 102:
      return "Processing";
    case 103:
      return "Early Hints";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 205:
      return "Reset Content";
    case 206:
      return "Partial Content";
    case 207:
      return "Multi-Status";
    case 208:
      return "Already Reported";
    case 226:
      return "IM Used";
    case 300:
      return "Multiple Choices";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 305:
      return "Use Proxy";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 418:
      return "I'm a teapot";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Content";
    case 423:
      return "Locked";
    case 424:
      return "Failed Dependency";
    case 425:
      return "Too Early";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 451:
      return "Unavailable For Legal Reasons";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    case 506:
      return "Variant Also Negotiates";
    case 507:
      return "Insufficient Storage";
    case 508:
      return "Loop Detected";
    case 510:
      return "Not Extended";
    case 511:
      return "Network Authentication Required";
    default:
      return "Unknown";
  }
}

bool valid_header_field(std::string_view name, std::string_view value) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!is_tchar(c)) return false;
  }
  for (unsigned char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

bool is_framing_header(std::string_view name) {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "connection") || iequals(name, "date") || iequals(name, "server") ||
         iequals(name, "keep-alive");
}

bool response_has_body(std::string_view method, int status) {
  return method != "HEAD" && status >= 200 && status != 204 && status != 304;
}

namespace {

template <typename H>
void append_head(std::string& out, int status, const std::vector<H>& headers,
                 uint64_t content_length, bool keep_alive, std::string_view date, bool http10) {
  char digits[24];
  out += "HTTP/1.1 ";
  out.append(digits, std::to_chars(digits, digits + sizeof digits, status).ptr);
  out += ' ';
  out += reason_phrase(status);
  out += "\r\nServer: ringhttpd\r\nDate: ";
  out += date;
  out += "\r\n";
  for (const H& h : headers) {
    if (is_framing_header(h.name)) continue;
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  // 304 would have to state the length of the representation it stands for,
  // which the writer does not know: no Content-Length (RFC 9110 8.6).
  if (status >= 200 && status != 204 && status != 304 && content_length == kUnknownBodyLength) {
    if (!http10) out += "Transfer-Encoding: chunked\r\n";
  } else if (status >= 200 && status != 204 && status != 304) {
    out += "Content-Length: ";
    out.append(digits, std::to_chars(digits, digits + sizeof digits, content_length).ptr);
    out += "\r\n";
  }
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
}

}  // namespace

void append_response_head(std::string& out, int status, const std::vector<Header>& headers,
                          uint64_t content_length, bool keep_alive, std::string_view date,
                          bool http10) {
  append_head(out, status, headers, content_length, keep_alive, date, http10);
}

void append_response_head(std::string& out, int status, const std::vector<HeaderView>& headers,
                          uint64_t content_length, bool keep_alive, std::string_view date,
                          bool http10) {
  append_head(out, status, headers, content_length, keep_alive, date, http10);
}

std::string make_simple_response(int status, bool keep_alive, std::string_view date,
                                 std::string_view content_type, std::string_view body,
                                 bool head_only, std::string_view extra_headers) {
  std::string text;
  if (body.empty() && status >= 400) {
    text = std::to_string(status) + " " + std::string(reason_phrase(status)) + "\n";
    body = text;
  }
  std::vector<Header> headers;
  if (!body.empty()) headers.push_back({"Content-Type", std::string(content_type)});
  std::string out;
  out.reserve(160 + body.size() + extra_headers.size());
  append_response_head(out, status, headers, body.size(), keep_alive, date);
  if (!extra_headers.empty()) out.insert(out.size() - 2, extra_headers);
  if (!head_only) out += body;
  return out;
}

std::string http_date(int64_t unix_seconds) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::optional<int64_t> parse_http_date(std::string_view value) {
  // strptime's names are the C locale's: no process of ours sets another.
  static constexpr const char* kFormats[] = {
      "%a, %d %b %Y %H:%M:%S GMT",  // IMF-fixdate
      "%A, %d-%b-%y %H:%M:%S GMT",  // RFC 850
      "%a %b %e %H:%M:%S %Y",       // asctime
  };
  constexpr size_t kLongest = 64;  // the longest form is 33 bytes: room for spaces
  if (value.empty() || value.size() > kLongest) return std::nullopt;
  const std::string text(value);  // strptime wants a terminated string
  for (const char* format : kFormats) {
    struct tm tm {};
    const char* end = ::strptime(text.c_str(), format, &tm);
    if (end != nullptr && *end == '\0') return static_cast<int64_t>(::timegm(&tm));
  }
  return std::nullopt;
}

}  // namespace ringhttpd::proto
