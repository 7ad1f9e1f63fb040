// ringhttpd_testbin: the real server plus the test-only handler types.
#include "master/cli.h"
#include "tests/support/test_handlers.h"

int main(int argc, char** argv) {
  ringhttpd::testing::add_test_handlers();
  return ringhttpd::master::run_cli(argc, argv);
}
