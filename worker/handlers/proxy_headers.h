// Which header fields a proxy passes on: shared by the request path
// (proxy.cc) and connections taken over (tunnel.cc), so both drop the same
// hop-by-hop fields.
#pragma once

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
