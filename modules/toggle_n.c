/* Toggles the LED n times (one second each); returns the number of toggles done. */
#include "wasmbed.h"

WB_EXPORT("toggle_n") int toggle_n(int n)
{
	int i;
	for (i = 0; i < n; i++)
		gpio_toggle();
	return i;
}
