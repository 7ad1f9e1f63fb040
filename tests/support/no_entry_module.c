/* A test-only shared object without the ringhttpd_module_v1 symbol: the
 * server must refuse it as "not a ringhttpd module". */
int not_a_ringhttpd_module(void);
int not_a_ringhttpd_module(void) { return 0; }
