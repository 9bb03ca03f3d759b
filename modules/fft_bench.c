/*
 * 1024-point complex radix-2 decimation-in-time FFT benchmark, no libc.
 *
 * fft_init() builds the twiddle table (own sine/cosine) and the test signal
 *   x[n] = cos(2*pi*5n/N) + 0.5*sin(2*pi*37n/N).
 * fft_bench(iters) transforms a fresh copy of the signal `iters` times and returns a checksum of
 * the last spectrum: the sum over all bins of round(|re| + |im|). For this signal the exact
 * spectrum has N/2 = 512 at bins 5 and N-5 and N/4 = 256 at bins 37 and N-37, so the checksum is
 * 1536 whenever the FFT is correct (round-off on the empty bins rounds to 0). Returns -1 when
 * iters <= 0.
 */
#include "wasmbed.h"

#define FFT_N 1024
#define FFT_LOG2N 10
#define PI 3.14159265358979323846

static float tw_re[FFT_N / 2];
static float tw_im[FFT_N / 2];
static float signal_re[FFT_N];
static float work[2 * FFT_N]; /* interleaved re, im */
static int initialised;

/* Taylor series, |x| <= pi/2: terms to x^21 give double precision. */
static double sin_small(double x)
{
	double term = x, sum = x, x2 = x * x;
	for (int k = 1; k <= 10; k++) {
		term *= -x2 / (double)((2 * k) * (2 * k + 1));
		sum += term;
	}
	return sum;
}

/* sin(2*pi*k/N) for any integer k, by reduction to the first quadrant. */
static double sin_index(int k)
{
	int q;
	k %= FFT_N;
	if (k < 0)
		k += FFT_N;
	q = k / (FFT_N / 4);
	k %= FFT_N / 4;
	switch (q) {
	case 0:
		return sin_small(2.0 * PI * k / FFT_N);
	case 1:
		return sin_small(2.0 * PI * (FFT_N / 4 - k) / FFT_N);
	case 2:
		return -sin_small(2.0 * PI * k / FFT_N);
	default:
		return -sin_small(2.0 * PI * (FFT_N / 4 - k) / FFT_N);
	}
}

static double cos_index(int k) { return sin_index(k + FFT_N / 4); }

static unsigned bit_reverse(unsigned v)
{
	unsigned r = 0;
	for (int i = 0; i < FFT_LOG2N; i++) {
		r = (r << 1) | (v & 1u);
		v >>= 1;
	}
	return r;
}

WB_EXPORT("fft_init") void fft_init(void)
{
	for (int k = 0; k < FFT_N / 2; k++) {
		tw_re[k] = (float)cos_index(k);
		tw_im[k] = (float)-sin_index(k);
	}
	for (int n = 0; n < FFT_N; n++) {
		signal_re[n] = (float)(cos_index(5 * n) + 0.5 * sin_index(37 * n));
	}
	initialised = 1;
}

static void fft_run(float *x)
{
	for (unsigned i = 0; i < FFT_N; i++) {
		unsigned j = bit_reverse(i);
		if (j > i) {
			float tr = x[2 * i], ti = x[2 * i + 1];
			x[2 * i] = x[2 * j];
			x[2 * i + 1] = x[2 * j + 1];
			x[2 * j] = tr;
			x[2 * j + 1] = ti;
		}
	}
	for (unsigned len = 2; len <= FFT_N; len <<= 1) {
		unsigned half = len / 2, step = FFT_N / len;
		for (unsigned start = 0; start < FFT_N; start += len) {
			for (unsigned k = 0; k < half; k++) {
				float wr = tw_re[k * step], wi = tw_im[k * step];
				float *a = &x[2 * (start + k)], *b = &x[2 * (start + k + half)];
				float br = b[0] * wr - b[1] * wi;
				float bi = b[0] * wi + b[1] * wr;
				b[0] = a[0] - br;
				b[1] = a[1] - bi;
				a[0] += br;
				a[1] += bi;
			}
		}
	}
}

static float absf(float v) { return v < 0.0f ? -v : v; }

WB_EXPORT("fft_bench") int fft_bench(int iters)
{
	int checksum = 0;
	if (iters <= 0)
		return -1;
	if (!initialised)
		fft_init();
	for (int it = 0; it < iters; it++) {
		for (int n = 0; n < FFT_N; n++) {
			work[2 * n] = signal_re[n];
			work[2 * n + 1] = 0.0f;
		}
		fft_run(work);
	}
	for (int k = 0; k < FFT_N; k++)
		checksum += (int)(absf(work[2 * k]) + absf(work[2 * k + 1]) + 0.5f);
	return checksum;
}

WB_EXPORT("app_main") int app_main(void) { return fft_bench(1); }
