// The echo handler (see echo.h). The JSON is written directly into the
// response body rather than built as a document tree: echo is the service
// path's benchmark, and a tree costs more than the rest of the service
// process's work per request. Bytes that are not valid UTF-8 (in the body or
// headers) become U+FFFD; body_length is exact.
#include "worker/handlers/echo.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

namespace ringhttpd::worker {
namespace {

// Length of the valid UTF-8 sequence at the start of `s`, or 0 if invalid.
size_t utf8_sequence(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf)
    n = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    n = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    n = 4, cp = c & 0x07;
  else
    return 0;
  if (s.size() < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(i) & 0x3f);
  }
  const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  const bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
  return overlong || surrogate || cp > 0x10ffff ? 0 : n;
}

// Bytes copied as they are inside a JSON string: printable ASCII but the
// quote and the backslash.
constexpr std::array<bool, 256> kPlain = [] {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c < 0x80; ++c) plain[static_cast<size_t>(c)] = c != '"' && c != '\\';
  return plain;
}();

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (kPlain[c]) {
      const size_t start = i;
      while (i < s.size() && kPlain[static_cast<unsigned char>(s[i])]) ++i;
      out.append(s.data() + start, i - start);
      continue;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      ++i;
    } else if (const size_t n = utf8_sequence(s.substr(i)); n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xef\xbf\xbd";  // U+FFFD for an invalid byte
      ++i;
    }
  }
  out += '"';
}

// `key` is one of this file's literal keys (nothing to escape).
void append_key(std::string& out, std::string_view key) {
  out += '"';
  out += key;
  out += "\":";
}

void append_member(std::string& out, std::string_view key, std::string_view value) {
  append_key(out, key);
  append_json_string(out, value);
  out += ',';
}

void append_number(std::string& out, std::string_view key, uint64_t value) {
  append_key(out, key);
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  out.append(digits, end);
  out += ',';
}

// A member whose name came from the request (escaped like its value).
void append_field(std::string& out, std::string_view name, std::string_view value) {
  append_json_string(out, name);
  out += ':';
  append_json_string(out, value);
  out += ',';
}

// Headers as one object, in the order names first appear; repeated names
// (exact spelling) are joined by ", " in request order. Same-name headers are
// grouped by sorting their indices by name, not by scanning the list once per
// header (quadratic: 32k fields held a service process for seconds) and not
// by a hash map (std::hash is unseeded, so a client could send names that all
// collide and make it quadratic again): the sort is O(n log n) whatever the
// names are.
// The index arrays are the caller's, kept from request to request.
void append_headers(std::string& out, const std::vector<proto::Header>& headers,
                    EchoScratch& scratch) {
  constexpr size_t kNone = static_cast<size_t>(-1);
  const size_t n = headers.size();
  std::vector<size_t>& order = scratch.order;
  order.resize(n);
  std::iota(order.begin(), order.end(), size_t{0});
  // Within one name the indices stay in request order (the tie-break; a
  // stable sort would allocate a buffer on every call).
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const int c = headers[a].name.compare(headers[b].name);
    return c < 0 || (c == 0 && a < b);
  });
  std::vector<size_t>& next_same = scratch.next_same;  // next header with this name, or kNone
  next_same.assign(n, kNone);
  std::vector<uint8_t>& repeated = scratch.repeated;  // an earlier header has this name
  repeated.assign(n, 0);
  for (size_t k = 1; k < n; ++k) {
    if (headers[order[k]].name == headers[order[k - 1]].name) {
      next_same[order[k - 1]] = order[k];
      repeated[order[k]] = 1;
    }
  }
  out += "\"headers\":{";
  std::string& joined = scratch.joined;
  for (size_t i = 0; i < n; ++i) {
    if (repeated[i]) continue;
    if (next_same[i] == kNone) {  // the usual case: no copy of the value
      append_field(out, headers[i].name, headers[i].value);
      continue;
    }
    joined = headers[i].value;
    for (size_t j = next_same[i]; j != kNone; j = next_same[j]) {
      joined += ", ";
      joined += headers[j].value;
    }
    append_field(out, headers[i].name, joined);
  }
  if (out.back() == ',') out.pop_back();
  out += "},";
}

}  // namespace

// This process's part of every answer, written once.
EchoHandler::EchoHandler(ServiceIdentity identity) : identity_(std::move(identity)) {
  service_json_ = ",\"service\":{";
  append_key(service_json_, "name");
  append_json_string(service_json_, identity_.service);
  service_json_ += ',';
  append_number(service_json_, "pid", identity_.pid);
  append_number(service_json_, "generation", identity_.generation);
  append_number(service_json_, "index", identity_.index);
  service_json_.back() = '}';
  service_json_ += "}\n";
}

void EchoHandler::handle(ServiceRequest request, std::unique_ptr<Responder> responder) {
  const proto::HttpRequest& req = request.http;
  const proto::RequestOrigin& from = request.origin;
  std::string out;
  out.reserve(512 + req.target.size() + req.body.size() + req.headers.size() * 48);
  out += '{';
  append_member(out, "method", req.method);
  append_member(out, "path", req.path());
  append_member(out, "query", req.query());
  char version[8];
  char* end = std::to_chars(version, version + 3, req.version_major).ptr;
  *end++ = '.';
  end = std::to_chars(end, end + 3, req.version_minor).ptr;
  append_member(out, "version", std::string_view(version, static_cast<size_t>(end - version)));
  append_headers(out, req.headers, scratch_);
  append_number(out, "body_length", req.body.size());
  append_member(out, "body", req.body);
  out += "\"network\":{";
  append_number(out, "pid", from.network_pid);
  append_number(out, "generation", from.generation);
  append_number(out, "index", from.network_index);
  out.back() = '}';
  out += service_json_;
  proto::HttpResponse response;
  response.headers.push_back({"Content-Type", "application/json"});
  response.body = std::move(out);
  responder->respond(std::move(response));
}

}  // namespace ringhttpd::worker
