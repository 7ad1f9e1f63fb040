// Which header fields a proxy passes on, and the ones it adds: shared by
// the request path (proxy.cc) and connections taken over (tunnel.cc), so
// both drop the same hop-by-hop fields and say the same of this hop.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "proto/http_request.h"

namespace ringhttpd::worker {

// Hop-by-hop fields (RFC 9110 7.6.1): never forwarded either way. Framing
// is ours on each side; X-Forwarded-* are replaced by ours.
inline bool hop_by_hop(std::string_view name) {
  for (std::string_view h :
       {"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
        "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length"}) {
    if (proto::iequals(name, h)) return true;
  }
  return false;
}

// Names listed in a Connection header are hop-by-hop too (but never Host: a
// client cannot take it away from the upstream that way).
inline bool listed_in_connection(const std::vector<proto::Header>& headers, std::string_view name) {
  if (proto::iequals(name, "Host")) return false;
  for (const proto::Header& h : headers) {
    if (!proto::iequals(h.name, "Connection")) continue;
    std::string_view v = h.value;
    while (!v.empty()) {
      const size_t comma = v.find(',');
      std::string_view token = v.substr(0, comma);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
        token.remove_prefix(1);
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t'))
        token.remove_suffix(1);
      if (proto::iequals(token, name)) return true;
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return false;
}

// A request field whose name has an underscore is dropped (nginx's default,
// underscores_in_headers off): CGI, WSGI and PHP-FPM map "_" and "-" to the
// same variable, so "X_Forwarded_For" or "Transfer_Encoding" would reach an
// application as the field this proxy replaces or frames itself.
inline bool underscore_name(std::string_view name) {
  return name.find('_') != std::string_view::npos;
}

// ---- this hop, told to the upstream ----
//
// The client's own fields of these names are replaced by ours:
//   X-Forwarded-For    the client's list (every line, in order), then the client
//   X-Forwarded-Proto  http
//   X-Forwarded-Host   the Host the client sent (when it sent one)
//   Forwarded          RFC 7239: the client's elements (every line that parses
//                      as RFC 7239's syntax, in order), then ours:
//                      for=<client>;host=<its Host>;proto=http
// so an application behind sees the client whichever convention it reads.
inline bool forwarding_field(std::string_view name) {
  return proto::iequals(name, "X-Forwarded-For") || proto::iequals(name, "X-Forwarded-Proto") ||
         proto::iequals(name, "X-Forwarded-Host") || proto::iequals(name, "Forwarded");
}

inline bool is_tchar(char ch) {
  constexpr std::string_view kTchar = "!#$%&'*+-.^_`|~";
  return std::isalnum(static_cast<unsigned char>(ch)) || kTchar.find(ch) != kTchar.npos;
}

// Whether `v` is a Forwarded field value (RFC 7239 4): elements separated
// by commas, each of pairs `token=value` separated by ';', a value a token
// or a quoted-string (empty elements and pairs allowed, as a list's syntax
// allows; spaces around ';' too). A line that is not (an unclosed quote,
// a stray character) is not passed on: joined before ours, it could make
// ours read as part of a client's element, or a client's as the last one.
inline bool forwarded_syntax_ok(std::string_view v) {
  size_t i = 0;
  const size_t n = v.size();
  const auto ows = [&] {
    while (i < n && (v[i] == ' ' || v[i] == '\t')) ++i;
  };
  for (;;) {
    for (;;) {  // one element: its pairs
      ows();
      if (i < n && is_tchar(v[i])) {
        while (i < n && is_tchar(v[i])) ++i;
        if (i == n || v[i] != '=') return false;
        ++i;
        if (i < n && v[i] == '"') {
          for (++i;; ++i) {
            if (i >= n) return false;
            if (v[i] == '"') break;
            if (v[i] == '\\' && ++i >= n) return false;
          }
          ++i;
        } else {
          const size_t start = i;
          while (i < n && is_tchar(v[i])) ++i;
          if (i == start) return false;
        }
        ows();
      }
      if (i == n || v[i] != ';') break;
      ++i;
    }
    if (i == n) return true;
    if (v[i] != ',') return false;
    ++i;
  }
}

// A Forwarded parameter's value (RFC 7239 4): as a token when it is one,
// else quoted, with '"' and '\' escaped.
inline void append_forwarded_value(std::string& o, std::string_view v) {
  const bool token = !v.empty() && std::all_of(v.begin(), v.end(), is_tchar);
  if (token) {
    o += v;
    return;
  }
  o += '"';
  for (char ch : v) {
    if (ch == '"' || ch == '\\') o += '\\';
    o += ch;
  }
  o += '"';
}

// The client's address as a Forwarded node (RFC 7239 6): an IPv6 address
// in brackets (so quoted), "unknown" when not known.
inline void append_forwarded_node(std::string& o, std::string_view client) {
  if (client.empty()) {
    o += "unknown";
  } else if (client.find(':') != std::string_view::npos) {
    o += "\"[";
    o += client;
    o += "]\"";
  } else {
    o += client;
  }
}

// The elements of a comma-separated list field (RFC 9110 5.6.1), trimmed;
// empty elements skipped. Calls `each` until it returns false.
template <typename F>
inline void for_each_element(std::string_view v, F each) {
  while (!v.empty()) {
    const size_t comma = v.find(',');
    std::string_view e = v.substr(0, comma);
    while (!e.empty() && (e.front() == ' ' || e.front() == '\t')) e.remove_prefix(1);
    while (!e.empty() && (e.back() == ' ' || e.back() == '\t')) e.remove_suffix(1);
    if (!e.empty() && !each(e)) return;
    if (comma == std::string_view::npos) return;
    v.remove_prefix(comma + 1);
  }
}

// The lines of this hop (the table above), each ending in CRLF. `client`:
// the client's address as text ("" when not known).
inline void append_forwarding(std::string& o, const proto::HttpRequest& req,
                              std::string_view client) {
  const std::string_view host = req.header("Host");
  // The client's lines of `name` (repeated lines are one list, RFC 9110
  // 5.3), each followed by ", ", ours to come after them.
  const auto client_list = [&](std::string_view name, bool (*ok)(std::string_view)) {
    for (const proto::Header& h : req.headers) {
      if (!proto::iequals(h.name, name) || h.value.empty() || !ok(h.value)) continue;
      o += h.value;
      o += ", ";
    }
  };
  // X-Forwarded-For's elements one by one: empty ones (a line "" or ",")
  // are dropped, not passed on as ", , ".
  o += "X-Forwarded-For: ";
  for (const proto::Header& h : req.headers) {
    if (!proto::iequals(h.name, "X-Forwarded-For")) continue;
    for_each_element(h.value, [&o](std::string_view e) {
      o += e;
      o += ", ";
      return true;
    });
  }
  o += client.empty() ? "unknown" : client;
  o += "\r\nX-Forwarded-Proto: http\r\n";
  if (!host.empty()) {
    o += "X-Forwarded-Host: ";
    o += host;
    o += "\r\n";
  }
  o += "Forwarded: ";
  client_list("Forwarded", forwarded_syntax_ok);
  o += "for=";
  append_forwarded_node(o, client);
  if (!host.empty()) {
    o += ";host=";
    append_forwarded_value(o, host);
  }
  o += ";proto=http\r\n";
}

// llhttp gives a response header's name and value in pieces (a read may
// cut either): these gather them into `headers`. `in_value` says whether the
// last piece was a value (a name piece then starts the next header).
inline void gather_name(std::vector<proto::Header>& headers, bool& in_value,
                        std::string_view piece) {
  if (in_value || headers.empty()) headers.emplace_back();
  in_value = false;
  headers.back().name.append(piece);
}
// False for a value before any name (llhttp never gives one).
inline bool gather_value(std::vector<proto::Header>& headers, bool& in_value,
                         std::string_view piece) {
  if (headers.empty()) return false;
  in_value = true;
  headers.back().value.append(piece);
  return true;
}

}  // namespace ringhttpd::worker
