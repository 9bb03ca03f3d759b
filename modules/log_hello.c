/* Exercises the text natives: log(ptr, len) and uart_print(ptr). */
#include "wasmbed.h"

static const char greeting[] = "hello from wasm \"quoted\"";
static const char line[] = "[wasm] uart hello";

WB_EXPORT("log_hello") int log_hello(void)
{
	wb_log(greeting, (int)sizeof(greeting) - 1);
	return (int)sizeof(greeting) - 1;
}

WB_EXPORT("print_hello") void print_hello(void) { uart_print(line); }

/* Hands the agent a pointer far outside linear memory: the native must reject it. */
WB_EXPORT("log_bad_ptr") void log_bad_ptr(void) { wb_log((const char *)0x7ffffff0, 64); }

WB_EXPORT("app_main") int app_main(void)
{
	print_hello();
	return log_hello();
}
