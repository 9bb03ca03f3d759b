/*
 * Job threads of the POSIX port: one worker per slot. A forced stop sends the worker SIGUSR2;
 * the handler siglongjmps out of WAMR to the worker's base, the thread ends and a fresh worker
 * replaces it (as the legacy firmware aborts and recreates its Zephyr thread). The core lock
 * blocks the signal, so a worker is never abandoned while it holds agent state; a WAMR mutex
 * (the pool allocator's, the runtime's lists) or a memory.grow defers it until the worker is
 * out of it (the wrappers below), as the bare-metal port does for locks: a worker abandoned
 * inside the pool allocator would leave the pool locked and wedge the board at its next
 * allocation.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "wasm_export.h"

#include "posix_port.h"

#define ABORT_SIGNAL SIGUSR2
#define WORKER_STACK (512 * 1024)
#define STACK_PAINT 0xA5
#define ABORT_WAIT_MS 2000
/* stack_reset leaves this much below the idle worker's frame alone (its sem_wait frames) */
#define IDLE_FRAMES_MAX (16 * 1024)

static __thread struct posix_worker *tls_worker;
/* WAMR sections (mutexes, memory.grow) this thread is in, and an abort that arrived meanwhile */
static __thread volatile sig_atomic_t wamr_sections;
static __thread volatile sig_atomic_t abort_deferred;

static void on_abort_signal(int sig)
{
	struct posix_worker *w = tls_worker;

	(void)sig;
	if (!w || !w->abort)
		return;
	if (wamr_sections) {
		abort_deferred = 1; /* defer_leave() leaves instead */
		return;
	}
	siglongjmp(w->jmp, 1);
}

/* Leaving a section in which the abort had to wait: go now, with nothing held. */
static void defer_leave(void)
{
	struct posix_worker *w = tls_worker;

	wamr_sections = wamr_sections - 1;
	if (!wamr_sections && abort_deferred && w && w->abort) {
		abort_deferred = 0;
		siglongjmp(w->jmp, 1);
	}
}

/*
 * Wrapped at link time (sim/build.rs: -Wl,--wrap=...): WAMR's platform mutexes, and memory.grow
 * (between the pool's realloc and the instance taking the new block no lock is held, but an
 * abandoned worker there would leave the instance pointing at freed memory). The count goes up
 * before and down after, so a signal in between always sees it and defers.
 */
int __real_os_mutex_lock(void *mutex);
int __real_os_mutex_unlock(void *mutex);
bool __real_wasm_enlarge_memory(void *inst, uint32_t pages);
bool __real_wasm_enlarge_memory_with_idx(void *inst, uint32_t pages, uint32_t idx);
int __wrap_os_mutex_lock(void *mutex);
int __wrap_os_mutex_unlock(void *mutex);
bool __wrap_wasm_enlarge_memory(void *inst, uint32_t pages);
bool __wrap_wasm_enlarge_memory_with_idx(void *inst, uint32_t pages, uint32_t idx);

int __wrap_os_mutex_lock(void *mutex)
{
	wamr_sections = wamr_sections + 1;
	return __real_os_mutex_lock(mutex);
}

int __wrap_os_mutex_unlock(void *mutex)
{
	int rc = __real_os_mutex_unlock(mutex);

	defer_leave();
	return rc;
}

bool __wrap_wasm_enlarge_memory(void *inst, uint32_t pages)
{
	bool ok;

	wamr_sections = wamr_sections + 1;
	ok = __real_wasm_enlarge_memory(inst, pages);
	defer_leave();
	return ok;
}

bool __wrap_wasm_enlarge_memory_with_idx(void *inst, uint32_t pages, uint32_t idx)
{
	bool ok;

	wamr_sections = wamr_sections + 1;
	ok = __real_wasm_enlarge_memory_with_idx(inst, pages, idx);
	defer_leave();
	return ok;
}

void posix_block_abort_signal(bool block)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, ABORT_SIGNAL);
	pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

static void *worker_main(void *arg)
{
	struct posix_worker *w = arg;
	struct agent *a = &w->port->agent;

	tls_worker = w;
	wamr_sections = 0;
	abort_deferred = 0;
	wasm_runtime_init_thread_env();
	if (sigsetjmp(w->jmp, 1)) {
		/* abandoned mid-job: leave without touching WAMR or the agent again */
		w->exited = 1;
		return NULL;
	}
	posix_block_abort_signal(false);
	w->idle_frame = __builtin_frame_address(0);
	for (;;) {
		while (sem_wait(&w->job) != 0 && errno == EINTR)
			;
		agent_job_run(a, w->slot);
	}
	return NULL;
}

static int worker_spawn(struct posix_worker *w)
{
	pthread_attr_t attr;
	int rc;

	if (!w->stack) {
		w->stack_size = WORKER_STACK;
		w->stack = mmap(NULL, w->stack_size, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (w->stack == MAP_FAILED) {
			w->stack = NULL;
			return -ENOMEM;
		}
	}
	memset(w->stack, STACK_PAINT, w->stack_size);
	w->idle_frame = NULL;
	w->abort = 0;
	w->exited = 0;
	pthread_attr_init(&attr);
	pthread_attr_setstack(&attr, w->stack, w->stack_size);
	rc = pthread_create(&w->thread, &attr, worker_main, w);
	pthread_attr_destroy(&attr);
	w->running = rc == 0;
	return -rc;
}

int posix_workers_start(struct posix_port *p)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_abort_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(ABORT_SIGNAL, &sa, NULL);
	for (unsigned i = 0; i < p->agent.cfg.slots; i++) {
		struct posix_worker *w = &p->workers[i];
		int rc;

		w->port = p;
		w->slot = i;
		sem_init(&w->job, 0, 0);
		if (p->lazy_workers)
			continue; /* posix_job_start spawns it */
		rc = worker_spawn(w);
		if (rc)
			return rc;
	}
	return 0;
}

void posix_job_start(void *ctx, unsigned slot)
{
	struct posix_port *p = ctx;
	struct posix_worker *w = &p->workers[slot];

	if (!w->running && worker_spawn(w) != 0) {
		posix_log(p, "cannot start a worker thread: the job stays queued");
		return;
	}
	sem_post(&w->job);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int posix_job_abort(void *ctx, unsigned slot)
{
	struct posix_port *p = ctx;
	struct posix_worker *w = &p->workers[slot];
	unsigned waited = 0;

	if (!w->running)
		return -ESRCH;
	w->abort = 1;
	while (!w->exited) {
		if (waited % 100 == 0)
			pthread_kill(w->thread, ABORT_SIGNAL);
		if (waited >= ABORT_WAIT_MS) {
			posix_log(p, "forced stop: worker did not leave WAMR in time");
			return -ETIMEDOUT;
		}
		sleep_ms(5);
		waited += 5;
	}
	pthread_join(w->thread, NULL);
	w->running = false;
	/* a pending job post belongs to the abandoned run */
	while (sem_trywait(&w->job) == 0)
		;
	return worker_spawn(w);
}

uint32_t posix_stack_free(void *ctx, unsigned slot)
{
	struct posix_port *p = ctx;
	struct posix_worker *w = &p->workers[slot];
	const unsigned char *s = w->stack;
	const uint64_t paint = 0x0101010101010101ull * STACK_PAINT;
	size_t i = 0;

	if (!s)
		return WORKER_STACK; /* worker not started yet (--boards): nothing used */
	/* word by word first (the stack is page aligned): STATUS scans ~1 MiB otherwise */
	while (i + 8 <= w->stack_size && *(const uint64_t *)(const void *)(s + i) == paint)
		i += 8;
	while (i < w->stack_size && s[i] == STACK_PAINT)
		i++;
	return (uint32_t)i;
}

void posix_stack_reset(void *ctx, unsigned slot)
{
	struct posix_port *p = ctx;
	struct posix_worker *w = &p->workers[slot];
	char *base = w->stack;
	volatile char *idle = w->idle_frame;

	/* the worker is idle (no job on its slot): everything well below its waiting frame is free */
	if (!base || !idle || idle - base <= IDLE_FRAMES_MAX)
		return;
	memset(base, STACK_PAINT, (size_t)(idle - base) - IDLE_FRAMES_MAX);
}
