// Handler types for the test build only: "hang" keeps every request and
// never answers (the Responder is held, so no 500 either) unless the path
// starts with /fast; "crash" aborts the process on a path starting with
// /crash, answers /inject and /badname with a header no server may write
// as given, and answers others with its pid.
#pragma once

#include <string>
#include <string_view>

namespace ringhttpd::testing {

void add_test_handlers();
// "stream" (stream_handler.cc): streamed responses and a (slow) body sink.
void add_stream_handler();
// "lifecycle" (lifecycle_handler.cc): a request that blocks its process, one
// held until a file exists, one that exits the process.
void add_lifecycle_handler();

// The value of `key` in a query string ("a=1&b=2"), or "" when absent.
std::string query_value(std::string_view query, std::string_view key);

}  // namespace ringhttpd::testing
