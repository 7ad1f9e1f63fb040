// Owns the normal form of a request path, the form routes are matched
// against (as nginx matches locations): percent-decoded once, dot-segments
// removed (RFC 3986 §5.2.4), runs of slashes merged into one. Pure (no
// I/O, no state), so it is tested directly (tests/unit/normalize_path_test.cc).
//
// Decisions (docs/configuration.md, "routes"):
//  * A ".." that would climb above the root ("/../x", "/a/../../x") is 400;
//    RFC 3986 would clamp it at the root, nginx refuses it, and so do we.
//  * An invalid escape ("%zz", "%4", a "%" at the end) is 400.
//  * An escape decoding to NUL ("%00") is 400.
//  * "%2F" is decoded like any other escape and is then a separator
//    ("/a%2Fb" is "/a/b"), as in nginx; likewise "%2E" is a '.', so
//    "/%2E%2E/x" is a ".." segment. Decoding happens once: "%2541" is "%41".
//  * A trailing slash is kept ("/a/" stays "/a/"; "/a/." and "/a/b/.." end
//    in "/" too).
//  * A path that does not start with '/' (a CONNECT authority) is left as it
//    is: no route path can match it anyway.
//
// The common case -- no '%', no "//", no "." or ".." segment -- is answered
// by one scan of the path, without copying it: the result is the input
// itself. Only a path that needs work is written into `scratch`, whose
// capacity the caller keeps from one request to the next.
#pragma once

#include <string>
#include <string_view>

namespace ringhttpd::proto {

struct NormalizedPath {
  // The normal form: `path` itself, or a view of `scratch`; valid while both
  // are. Empty when `status` is not 0.
  std::string_view path;
  int status = 0;  // 0, or the status the request gets (400)
};

// Whether `path` is already in normal form (the quick scan: no '%', no
// empty segment inside, no "." or ".." segment).
bool path_is_normal(std::string_view path);

// The normal form of `path` (a request-target's path, without its query).
NormalizedPath normalize_path(std::string_view path, std::string& scratch);

}  // namespace ringhttpd::proto
