// HttpRequest accessors: header lookup and the routing views of the
// request-target (path, query, host). They only read the parsed strings; all
// validation happens in the parser (proto/http_parser.cc), so these never
// fail -- odd input just yields an odd-but-bounded view.
#include "proto/http_request.h"

#include <cstddef>

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

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerAscii(a[i]) != LowerAscii(b[i])) return false;
  }
  return true;
}

std::string_view HttpRequest::header(std::string_view name) const {
  for (const Header& h : headers) {
    if (iequals(h.name, name)) return h.value;
  }
  return {};
}

std::string_view HttpRequest::path() const {
  std::string_view rest = PathAndQuery(target);
  rest = rest.substr(0, rest.find('?'));
  if (rest.empty() && IsAbsoluteForm(target)) return "/";
  return rest;
}

std::string_view HttpRequest::query() const {
  std::string_view rest = PathAndQuery(target);
  size_t q = rest.find('?');
  return q == rest.npos ? std::string_view() : rest.substr(q + 1);
}

std::string HttpRequest::host() const {
  std::string_view authority = IsAbsoluteForm(target) ? Authority(target) : header("Host");
  std::string out(StripUserinfoAndPort(authority));
  for (char& c : out) c = LowerAscii(c);
  return out;
}

}  // namespace ringhttpd::proto
