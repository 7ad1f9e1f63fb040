// The request types' accessors: header lookup and the routing views of the
// request-target (path, query, host), and RequestHead's storage (own()). The
// accessors only read the parsed bytes; all validation happens in the parser
// (proto/http_parser.cc), so they never fail -- odd input just yields an
// odd-but-bounded view.
#include "proto/http_request.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ringhttpd::proto {
namespace {

constexpr std::string_view kSchemeSep = "://";

char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// absolute-form ("http://host/x") as opposed to origin-form ("/x") or "*".
bool IsAbsoluteForm(std::string_view target) {
  return !target.empty() && target.front() != '/' && target.find(kSchemeSep) != target.npos;
}

// The authority of an absolute-form target ("user@host:port").
std::string_view Authority(std::string_view target) {
  std::string_view rest = target.substr(target.find(kSchemeSep) + kSchemeSep.size());
  return rest.substr(0, rest.find_first_of("/?#"));
}

// The part of the target after the authority ("/x?y#f"); the whole target for
// origin-form and "*". The fragment is dropped.
std::string_view PathAndQuery(std::string_view target) {
  if (IsAbsoluteForm(target)) {
    std::string_view rest = target.substr(target.find(kSchemeSep) + kSchemeSep.size());
    size_t cut = rest.find_first_of("/?#");
    target = cut == rest.npos ? std::string_view() : rest.substr(cut);
  }
  return target.substr(0, target.find('#'));
}

// "host:port" -> "host", "[::1]:80" -> "[::1]", "user@host" -> "host".
std::string_view StripUserinfoAndPort(std::string_view authority) {
  size_t at = authority.rfind('@');
  if (at != authority.npos) authority.remove_prefix(at + 1);
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    return close == authority.npos ? authority : authority.substr(0, close + 1);
  }
  return authority.substr(0, authority.find(':'));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsHexDigit(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// unreserved / sub-delims (RFC 3986 §2.2, §2.3).
bool IsUnreservedOrSubDelim(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c)) return true;
  return std::string_view("-._~!$&'()*+,;=").find(c) != std::string_view::npos;
}

// reg-name = *( unreserved / pct-encoded / sub-delims ); IPv4address is one.
bool IsRegName(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (s.size() - i < 3 || !IsHexDigit(s[i + 1]) || !IsHexDigit(s[i + 2])) return false;
      i += 2;
    } else if (!IsUnreservedOrSubDelim(s[i])) {
      return false;
    }
  }
  return true;
}

// h16 = 1*4HEXDIG
bool IsH16(std::string_view s) {
  return !s.empty() && s.size() <= 4 && std::all_of(s.begin(), s.end(), IsHexDigit);
}

// dec-octet = "0" / "1"-"9" DIGIT / ... / "25" "0"-"5": no leading zero, <= 255.
bool IsDecOctet(std::string_view s) {
  if (s.empty() || s.size() > 3 || !std::all_of(s.begin(), s.end(), IsDigit)) return false;
  if (s.size() > 1 && s.front() == '0') return false;
  int value = 0;
  for (char c : s) value = value * 10 + (c - '0');
  return value <= 255;
}

bool IsIPv4(std::string_view s) {
  for (int i = 0; i < 3; ++i) {
    const size_t dot = s.find('.');
    if (dot == s.npos || !IsDecOctet(s.substr(0, dot))) return false;
    s.remove_prefix(dot + 1);
  }
  return IsDecOctet(s);
}

// The 16-bit pieces of a ":"-separated run of h16 ("" has none); the last
// may be an IPv4address (two pieces) when `ipv4_last`. -1 if malformed.
int H16Pieces(std::string_view s, bool ipv4_last) {
  if (s.empty()) return 0;
  for (int n = 0;; ++n) {
    const size_t colon = s.find(':');
    const std::string_view piece = s.substr(0, colon);
    if (colon == s.npos) {
      if (ipv4_last && IsIPv4(piece)) return n + 2;
      return IsH16(piece) ? n + 1 : -1;
    }
    if (!IsH16(piece)) return -1;
    s.remove_prefix(colon + 1);
  }
}

// IPv6address (RFC 3986 §3.2.2): eight pieces, or fewer around one "::".
bool IsIPv6(std::string_view s) {
  const size_t gap = s.find("::");
  if (gap == s.npos) return H16Pieces(s, true) == 8;
  const std::string_view tail = s.substr(gap + 2);
  if (tail.find("::") != tail.npos) return false;
  const int before = H16Pieces(s.substr(0, gap), false);
  const int after = H16Pieces(tail, true);
  return before >= 0 && after >= 0 && before + after <= 7;
}

// IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
bool IsIPvFuture(std::string_view s) {
  if (s.size() < 4 || (s.front() != 'v' && s.front() != 'V')) return false;
  const size_t dot = s.find('.');
  if (dot == s.npos || dot < 2 || dot + 1 == s.size()) return false;
  const std::string_view version = s.substr(1, dot - 1);
  const std::string_view rest = s.substr(dot + 1);
  return std::all_of(version.begin(), version.end(), IsHexDigit) &&
         std::all_of(rest.begin(), rest.end(),
                     [](char c) { return c == ':' || IsUnreservedOrSubDelim(c); });
}

// port = *DIGIT, here at most 5 digits and at most 65535 (see valid_host).
bool IsPort(std::string_view s) {
  if (s.empty()) return true;
  if (s.size() > 5 || !std::all_of(s.begin(), s.end(), IsDigit)) return false;
  uint32_t port = 0;
  for (char c : s) port = port * 10 + static_cast<uint32_t>(c - '0');
  return port <= 65535;
}

}  // namespace

bool valid_host(std::string_view value) {
  if (value.empty()) return true;
  if (value.size() > kMaxHostBytes) return false;
  std::string_view rest;
  if (value.front() == '[') {
    const size_t close = value.find(']');
    if (close == value.npos) return false;
    const std::string_view literal = value.substr(1, close - 1);
    if (!IsIPv6(literal) && !IsIPvFuture(literal)) return false;
    rest = value.substr(close + 1);
  } else {
    const size_t colon = value.find(':');
    const std::string_view host = value.substr(0, colon);
    if (host.empty() || !IsRegName(host)) return false;
    rest = colon == value.npos ? std::string_view() : value.substr(colon);
  }
  if (rest.empty()) return true;
  return rest.front() == ':' && IsPort(rest.substr(1));
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerAscii(a[i]) != LowerAscii(b[i])) return false;
  }
  return true;
}

template <typename H>
std::string_view find_header(const std::vector<H>& headers, std::string_view name) {
  for (const H& h : headers) {
    if (iequals(h.name, name)) return h.value;
  }
  return {};
}

std::string_view HttpRequest::header(std::string_view name) const {
  return find_header(headers, name);
}

std::string_view origin_form(std::string_view target) { return PathAndQuery(target); }

std::string_view target_path(std::string_view target) {
  std::string_view rest = PathAndQuery(target);
  rest = rest.substr(0, rest.find('?'));
  if (rest.empty() && IsAbsoluteForm(target)) return "/";
  return rest;
}

std::string_view target_query(std::string_view target) {
  std::string_view rest = PathAndQuery(target);
  size_t q = rest.find('?');
  return q == rest.npos ? std::string_view() : rest.substr(q + 1);
}

std::string request_host(std::string_view target, std::string_view host_header) {
  std::string_view authority = IsAbsoluteForm(target) ? Authority(target) : host_header;
  std::string out(StripUserinfoAndPort(authority));
  for (char& c : out) c = LowerAscii(c);
  return out;
}

// ---- RequestHead ----

std::string_view RequestHead::header(std::string_view name) const {
  return find_header(headers, name);
}

RequestHead::RequestHead(RequestHead&& other) noexcept { *this = std::move(other); }

RequestHead& RequestHead::operator=(RequestHead&& other) noexcept {
  if (this == &other) return *this;
  method = other.method;
  target = other.target;
  version_major = other.version_major;
  version_minor = other.version_minor;
  headers = std::move(other.headers);  // the views in it move with their storage
  keep_alive = other.keep_alive;
  expect_continue = other.expect_continue;
  upgrade = other.upgrade;
  storage_ = std::move(other.storage_);  // a vector's move keeps its buffer in place
  used_ = other.used_;
  other.clear();
  other.storage_.clear();
  return *this;
}

bool RequestHead::in_storage(std::string_view v) const {
  // Compared as integers: views into other buffers are not ordered with it.
  const auto p = reinterpret_cast<uintptr_t>(v.data());
  const auto base = reinterpret_cast<uintptr_t>(storage_.data());
  return !storage_.empty() && p >= base && p + v.size() <= base + used_;
}

// Grows the storage to hold `bytes` more; views into the old buffer move
// with their bytes.
void RequestHead::reserve_storage(size_t bytes) {
  if (used_ + bytes <= storage_.size()) return;
  std::vector<char> bigger(std::max({used_ + bytes, 2 * storage_.size(), size_t{256}}));
  if (used_ > 0) std::memcpy(bigger.data(), storage_.data(), used_);
  auto rebase = [&](std::string_view& v) {
    if (v.empty() || !in_storage(v)) return;
    v = std::string_view(bigger.data() + (v.data() - storage_.data()), v.size());
  };
  rebase(target);
  for (HeaderView& h : headers) {
    rebase(h.name);
    rebase(h.value);
  }
  storage_ = std::move(bigger);
}

void RequestHead::append_owned(std::string_view& field, std::string_view more) {
  reserve_storage(more.size());  // may move `field` along with the storage
  char* at = storage_.data() + used_;
  if (!more.empty()) std::memcpy(at, more.data(), more.size());
  used_ += more.size();
  field = field.empty() ? std::string_view(at, more.size())
                        : std::string_view(field.data(), field.size() + more.size());
}

void RequestHead::own() {
  size_t borrowed = 0;
  auto measure = [&](std::string_view v) {
    if (!v.empty() && !in_storage(v)) borrowed += v.size();
  };
  measure(target);
  for (const HeaderView& h : headers) {
    measure(h.name);
    measure(h.value);
  }
  if (borrowed == 0) return;
  reserve_storage(borrowed);  // one growth: the copies below never move it again
  auto copy = [&](std::string_view& v) {
    if (v.empty() || in_storage(v)) return;
    std::string_view bytes = v;
    v = {};
    append_owned(v, bytes);
  };
  copy(target);
  for (HeaderView& h : headers) {
    copy(h.name);
    copy(h.value);
  }
}

void RequestHead::clear() {
  method = {};
  target = {};
  version_major = version_minor = 1;
  headers.clear();
  keep_alive = true;
  expect_continue = false;
  used_ = 0;
}

HttpRequest RequestHead::to_request() const {
  HttpRequest r;
  r.method = method;
  r.target = target;
  r.version_major = version_major;
  r.version_minor = version_minor;
  r.headers.reserve(headers.size());
  for (const HeaderView& h : headers)
    r.headers.push_back({std::string(h.name), std::string(h.value)});
  r.keep_alive = keep_alive;
  r.expect_continue = expect_continue;
  return r;
}

}  // namespace ringhttpd::proto
