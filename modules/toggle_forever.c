/* Toggles the LED once a second until the agent asks this slot to stop (cooperative stop). */
#include "wasmbed.h"

WB_EXPORT("toggle_forever") int toggle_forever(void)
{
	int toggles = 0;
	do {
		gpio_toggle();
		toggles++;
	} while (!should_stop());
	return toggles;
}

WB_EXPORT("app_main") int app_main(void) { return toggle_forever(); }
