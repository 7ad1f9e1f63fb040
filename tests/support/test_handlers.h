// Handler types for the test build only: "hang" keeps every request and
// never answers (the Responder is held, so no 500 either) unless the path
// starts with /fast; "crash" aborts the process on a path starting with
// /crash and answers others like a tiny echo.
#pragma once

namespace ringhttpd::testing {

void add_test_handlers();

}  // namespace ringhttpd::testing
