// ringhttpd's entry point (the command line is master/cli.cc).
#include "master/cli.h"

int main(int argc, char** argv) { return ringhttpd::master::run_cli(argc, argv); }
