/* Spins forever without calling any native: only a forced stop can end it. */
#include "wasmbed.h"

static volatile unsigned counter;

WB_EXPORT("busy_loop") void busy_loop(void)
{
	for (;;)
		counter++;
}

WB_EXPORT("app_main") void app_main(void) { busy_loop(); }
