/*
 * Native C baseline of the execution benchmark: the same fft_bench.c and calls.c the modules
 * are built from, compiled for the host (clang -O2). Usage: native ITERS_FFT ITERS_CALLS.
 * Prints "fft_ns_per_iter=<f> fft_checksum=<n> calls_ns_per_call=<f> calls_checksum=<n>".
 */
#define WASMBED_MODULE_H /* skip the wasm-only export/import attributes */
#define WB_EXPORT(name)
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fft_bench.c"
#include "calls.c"

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	int nf = argc > 1 ? atoi(argv[1]) : 1000;
	int nc = argc > 2 ? atoi(argv[2]) : 10000000;
	volatile int sink;
	double t0, t1, t2;
	int f, c;

	fft_init();
	sink = fft_bench(1); /* warm up */
	t0 = now_ns();
	f = fft_bench(nf);
	t1 = now_ns();
	c = calls(nc);
	t2 = now_ns();
	(void)sink;
	printf("fft_ns_per_iter=%.1f fft_checksum=%d calls_ns_per_call=%.3f calls_checksum=%d\n",
	       (t1 - t0) / nf, f, (t2 - t1) / nc, c);
	return 0;
}
