/*
 * A tiny preemptive kernel for the bare-metal port (no RTOS available):
 * a handful of static threads with fixed priorities, SysTick-driven time
 * slicing among equal priorities, PendSV context switch (hard-float aware:
 * s16-s31 are saved when the thread has an FP context, EXC_RETURN bit 4
 * clear; s0-s15 are lazily stacked by the hardware), sleep, counting
 * semaphores (give is ISR-safe), recursive mutexes, and abort+restart of a
 * thread (the forced stop of a job).
 *
 * Everything the scheduler touches is guarded by PRIMASK. Threads run in
 * privileged thread mode on their own stack (PSP); handlers use the main
 * stack (MSP).
 *
 * Before kern_start() the mutex and semaphore calls work without blocking
 * (lock/unlock only count), so code shared with the single-threaded smoke
 * firmware (WAMR's platform layer) can use them unconditionally.
 */
#ifndef BAREMETAL_KERN_H
#define BAREMETAL_KERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Timeout value: wait forever. */
#define KERN_FOREVER UINT32_MAX
/** Most threads the kernel can hold (idle included). */
#define KERN_MAX_THREADS 6
/** Time slice among ready threads of equal priority (ms). */
#define KERN_SLICE_MS 5

struct kern_thread {
	uint32_t *sp; /* saved PSP; must stay first (PendSV reads it) */
	uint8_t prio; /* higher runs first */
	uint8_t state;
	int8_t wait_rc;
	bool has_deadline;
	uint32_t wake_at;
	const void *wait_obj;
	unsigned locks_held;
	void (*entry)(void *arg);
	void *arg;
	uint32_t *stack;
	size_t stack_words;
	const char *name;
};

struct kern_sem {
	volatile uint32_t count;
	uint32_t limit;
};

struct kern_mutex {
	struct kern_thread *owner;
	unsigned depth;
};

/**
 * Create a thread (before or after kern_start). `stack` must be 8-byte
 * aligned; it is painted so kern_stack_free() can measure use. Returns 0 or
 * a negative errno.
 */
int kern_thread_create(struct kern_thread *t, const char *name, uint8_t prio,
		       void (*entry)(void *), void *arg, void *stack, size_t stack_bytes);

/** Start scheduling (creates the idle thread). Never returns. */
void kern_start(void) __attribute__((noreturn));

/** Whether kern_start() has run. */
bool kern_running(void);

/** The calling thread (NULL before kern_start or in a handler's view of boot). */
struct kern_thread *kern_self(void);

/** Block the calling thread for about `ms` milliseconds (0: just yield). */
void kern_sleep_ms(uint32_t ms);

/** Let another ready thread of the same priority run. */
void kern_yield(void);

/** Counting semaphore, `limit` >= 1 caps the count. */
void kern_sem_init(struct kern_sem *s, uint32_t initial, uint32_t limit);
/** Take one count, waiting up to `timeout_ms`. 0 or -ETIMEDOUT (-EAGAIN if 0 ms). */
int kern_sem_take(struct kern_sem *s, uint32_t timeout_ms);
/** Give one count (threads and ISRs). */
void kern_sem_give(struct kern_sem *s);
/** Drop all counts. */
void kern_sem_reset(struct kern_sem *s);

/** Recursive mutex (thread context only). */
void kern_mutex_init(struct kern_mutex *m);
void kern_mutex_lock(struct kern_mutex *m);
void kern_mutex_unlock(struct kern_mutex *m);

/**
 * Abandon whatever `t` was doing and restart it at its entry function with
 * a fresh stack. Refused with -EBUSY while `t` holds a mutex (the caller
 * retries: the holder releases it soon), -EINVAL for the calling thread.
 */
int kern_thread_restart(struct kern_thread *t);

/** Bytes of `t`'s stack never written so far. */
uint32_t kern_stack_free(const struct kern_thread *t);

/** Repaint the unused part of a thread's stack (not the running one): stack_free restarts. */
void kern_stack_repaint(struct kern_thread *t);

/** Lowest address of the calling thread's stack (NULL before kern_start). */
void *kern_stack_limit(void);

/** Small id of the calling thread (1 before kern_start). */
int kern_thread_id(void);

/** Context switches so far (diagnostics). */
uint32_t kern_switches(void);

#endif /* BAREMETAL_KERN_H */
