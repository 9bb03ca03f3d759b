/*
 * Tiny preemptive kernel for a Cortex-M4F (see kern.h).
 *
 * Context switch: PendSV (lowest priority) saves r4-r11 and EXC_RETURN on
 * the outgoing thread's PSP, plus s16-s31 when EXC_RETURN bit 4 is clear
 * (the thread had an FP context; the hardware reserved room for s0-s15 and
 * FPSCR and stacks them lazily, triggered by our VSTM). kern_switch() picks
 * the next thread; the same steps in reverse restore it.
 *
 * Scheduling: the highest-priority ready thread runs; equal priorities
 * share the CPU in KERN_SLICE_MS slices (SysTick). Thread lists are a plain
 * array scanned under PRIMASK: there are only a few threads.
 */
#include <errno.h>
#include <string.h>

#include "board.h"
#include "kern.h"

#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define ICSR_PENDSVSET (1u << 28)
#define SCB_SHPR3 (*(volatile uint32_t *)0xE000ED20u)

#define STACK_PAINT 0xA5A5A5A5u
#define STACK_CANARY 0x5AFEC0DEu
#define EXC_RETURN_THREAD_PSP 0xFFFFFFFDu
#define XPSR_THUMB 0x01000000u
/* Hardware frame r0-r3, r12, lr, pc, xpsr + our r4-r11, EXC_RETURN. */
#define HW_FRAME_WORDS 8u
#define SW_FRAME_WORDS 9u
#define MIN_STACK_WORDS 64u

enum kern_state { T_UNUSED, T_READY, T_SLEEPING, T_BLOCKED, T_DEAD };

static struct kern_thread *threads[KERN_MAX_THREADS];
static unsigned thread_count;
static struct kern_thread *volatile current;
static volatile bool started;
static uint32_t slice_left;
static volatile uint32_t switch_count;

static struct kern_thread idle_thread;
static uint64_t idle_stack[96];
/* Save area of the boot context (main), which is never resumed. */
static uint64_t boot_save[32];

static inline uint32_t
irq_save(void)
{
	uint32_t primask;

	__asm volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
	return primask;
}

static inline void
irq_restore(uint32_t primask)
{
	__asm volatile("msr primask, %0" ::"r"(primask) : "memory");
}

static inline void
pend_switch(void)
{
	SCB_ICSR = ICSR_PENDSVSET;
}

static void
thread_exit(void)
{
	uint32_t p = irq_save();

	current->state = T_DEAD;
	pend_switch();
	irq_restore(p);
	for (;;)
		board_wait_for_interrupt();
}

static void
thread_trampoline(struct kern_thread *t)
{
	t->entry(t->arg);
	thread_exit();
}

/* Paint the stack and lay out a first context that "returns" into the
   trampoline in thread mode on the PSP, without an FP frame. */
static void
frame_init(struct kern_thread *t)
{
	uint32_t *sp = t->stack + t->stack_words;

	for (size_t i = 0; i < t->stack_words; i++)
		t->stack[i] = STACK_PAINT;
	t->stack[0] = STACK_CANARY;
	sp -= HW_FRAME_WORDS;
	memset(sp, 0, HW_FRAME_WORDS * sizeof(*sp));
	sp[0] = (uint32_t)(uintptr_t)t;                           /* r0 */
	sp[5] = (uint32_t)(uintptr_t)thread_exit;                 /* lr */
	sp[6] = (uint32_t)(uintptr_t)thread_trampoline & ~1u;     /* pc */
	sp[7] = XPSR_THUMB;
	sp -= SW_FRAME_WORDS;
	memset(sp, 0, SW_FRAME_WORDS * sizeof(*sp));
	sp[8] = EXC_RETURN_THREAD_PSP;
	t->sp = sp;
}

int
kern_thread_create(struct kern_thread *t, const char *name, uint8_t prio,
		   void (*entry)(void *), void *arg, void *stack, size_t stack_bytes)
{
	uint32_t p;

	if (((uintptr_t)stack & 7u) || stack_bytes / 4 < MIN_STACK_WORDS || !entry)
		return -EINVAL;
	memset(t, 0, sizeof(*t));
	t->name = name;
	t->prio = prio;
	t->entry = entry;
	t->arg = arg;
	t->stack = stack;
	t->stack_words = (stack_bytes / 8) * 2; /* keep the top 8-byte aligned */
	frame_init(t);
	p = irq_save();
	if (thread_count == KERN_MAX_THREADS) {
		irq_restore(p);
		return -ENOMEM;
	}
	threads[thread_count++] = t;
	t->state = T_READY;
	if (started && t->prio > current->prio)
		pend_switch();
	irq_restore(p);
	return 0;
}

static unsigned
index_of(const struct kern_thread *t)
{
	for (unsigned i = 0; i < thread_count; i++)
		if (threads[i] == t)
			return i;
	return 0;
}

/* Highest priority ready thread; ties go to the one after `current`. */
static struct kern_thread *
pick_next(void)
{
	struct kern_thread *best = NULL;
	unsigned start = current ? index_of(current) + 1 : 0;

	for (unsigned k = 0; k < thread_count; k++) {
		struct kern_thread *t = threads[(start + k) % thread_count];

		if (t->state == T_READY && (!best || t->prio > best->prio))
			best = t;
	}
	return best; /* the idle thread is always ready */
}

static bool
other_ready_at(uint8_t prio)
{
	for (unsigned i = 0; i < thread_count; i++)
		if (threads[i] != current && threads[i]->state == T_READY
		    && threads[i]->prio >= prio)
			return true;
	return false;
}

/* Called from PendSV with interrupts off: store the outgoing stack
   pointer, return the incoming one. */
__attribute__((used)) uint32_t *
kern_switch(uint32_t *sp)
{
	struct kern_thread *next;

	if (current) {
		current->sp = sp;
		if (current->stack[0] != STACK_CANARY) {
			board_debug_puts("kern: stack overflow in thread ");
			board_debug_puts(current->name);
			board_debug_puts("\n");
			board_exit(71);
		}
	}
	next = pick_next();
	if (next != current)
		switch_count++;
	current = next;
	slice_left = KERN_SLICE_MS;
	return next->sp;
}

__attribute__((naked)) void
kern_pendsv_irq(void)
{
	__asm volatile(
		"cpsid i\n"
		"mrs r0, psp\n"
		"tst lr, #0x10\n"
		"it eq\n"
		"vstmdbeq r0!, {s16-s31}\n"
		"stmdb r0!, {r4-r11, lr}\n"
		"bl kern_switch\n"
		"ldmia r0!, {r4-r11, lr}\n"
		"tst lr, #0x10\n"
		"it eq\n"
		"vldmiaeq r0!, {s16-s31}\n"
		"msr psp, r0\n"
		"isb\n"
		"cpsie i\n"
		"bx lr\n");
}

/* SysTick, every ms: wake timed-out sleepers and waiters, rotate slices. */
static void
kern_tick(uint32_t now)
{
	uint32_t p = irq_save();
	bool resched = false;

	if (!current) {
		irq_restore(p);
		return;
	}
	for (unsigned i = 0; i < thread_count; i++) {
		struct kern_thread *t = threads[i];

		if ((t->state == T_SLEEPING || t->state == T_BLOCKED) && t->has_deadline
		    && (int32_t)(now - t->wake_at) >= 0) {
			t->state = T_READY;
			t->wait_rc = -ETIMEDOUT;
			t->wait_obj = NULL;
			t->has_deadline = false;
			if (t->prio > current->prio)
				resched = true;
		}
	}
	if (slice_left && --slice_left == 0) {
		slice_left = KERN_SLICE_MS;
		if (other_ready_at(current->prio))
			resched = true;
	}
	if (resched || current->state != T_READY)
		pend_switch();
	irq_restore(p);
}

static void
idle_main(void *arg)
{
	(void)arg;
	for (;;)
		board_wait_for_interrupt();
}

void
kern_start(void)
{
	kern_thread_create(&idle_thread, "idle", 0, idle_main, NULL, idle_stack,
			   sizeof(idle_stack));
	/* PendSV and SysTick at the lowest priority: the UART IRQ preempts them. */
	SCB_SHPR3 |= (0xFFu << 16) | (0xFFu << 24);
	board_set_tick_hook(kern_tick);
	/* The first PendSV "saves" the boot context here and never comes back. */
	__asm volatile("msr psp, %0\n isb" ::"r"(boot_save + 32) : "memory");
	started = true;
	pend_switch();
	__asm volatile("cpsie i\n isb" ::: "memory");
	for (;;)
		board_wait_for_interrupt();
}

bool
kern_running(void)
{
	return started;
}

struct kern_thread *
kern_self(void)
{
	return current;
}

/* Block the current thread (interrupts are off; `p` restores them). */
static int
block_current(uint32_t p, uint8_t state, const void *obj, uint32_t timeout_ms)
{
	struct kern_thread *self = current;

	self->state = state;
	self->wait_obj = obj;
	self->wait_rc = 0;
	self->has_deadline = timeout_ms != KERN_FOREVER;
	self->wake_at = board_now_ms() + timeout_ms;
	pend_switch();
	irq_restore(p); /* PendSV runs here; we continue once woken */
	return self->wait_rc;
}

void
kern_sleep_ms(uint32_t ms)
{
	uint32_t p, start;

	if (!started) {
		start = board_now_ms();
		while ((uint32_t)(board_now_ms() - start) < ms)
			board_wait_for_interrupt();
		return;
	}
	if (ms == 0) {
		kern_yield();
		return;
	}
	p = irq_save();
	block_current(p, T_SLEEPING, NULL, ms);
}

void
kern_yield(void)
{
	uint32_t p = irq_save();

	if (started && other_ready_at(current->prio))
		pend_switch();
	irq_restore(p);
}

void
kern_sem_init(struct kern_sem *s, uint32_t initial, uint32_t limit)
{
	s->limit = limit ? limit : 1;
	s->count = initial < s->limit ? initial : s->limit;
}

int
kern_sem_take(struct kern_sem *s, uint32_t timeout_ms)
{
	uint32_t p = irq_save();

	if (s->count) {
		s->count--;
		irq_restore(p);
		return 0;
	}
	if (timeout_ms == 0 || !started) {
		irq_restore(p);
		return -EAGAIN;
	}
	return block_current(p, T_BLOCKED, s, timeout_ms);
}

/* Highest-priority thread blocked on `obj` (NULL if none). */
static struct kern_thread *
first_waiter(const void *obj)
{
	struct kern_thread *best = NULL;

	for (unsigned i = 0; i < thread_count; i++) {
		struct kern_thread *t = threads[i];

		if (t->state == T_BLOCKED && t->wait_obj == obj && (!best || t->prio > best->prio))
			best = t;
	}
	return best;
}

static void
make_ready(struct kern_thread *t)
{
	t->state = T_READY;
	t->wait_obj = NULL;
	t->wait_rc = 0;
	t->has_deadline = false;
	if (!current || t->prio > current->prio)
		pend_switch();
}

void
kern_sem_give(struct kern_sem *s)
{
	uint32_t p = irq_save();
	struct kern_thread *w = first_waiter(s);

	if (w)
		make_ready(w);
	else if (s->count < s->limit)
		s->count++;
	irq_restore(p);
}

void
kern_sem_reset(struct kern_sem *s)
{
	s->count = 0;
}

void
kern_mutex_init(struct kern_mutex *m)
{
	m->owner = NULL;
	m->depth = 0;
}

void
kern_mutex_lock(struct kern_mutex *m)
{
	uint32_t p = irq_save();

	if (!started) {
		m->depth++;
		irq_restore(p);
		return;
	}
	if (!m->owner || m->owner == current) {
		if (!m->owner) {
			m->owner = current;
			current->locks_held++;
		}
		m->depth++;
		irq_restore(p);
		return;
	}
	/* kern_mutex_unlock hands the mutex over before waking us */
	block_current(p, T_BLOCKED, m, KERN_FOREVER);
}

void
kern_mutex_unlock(struct kern_mutex *m)
{
	uint32_t p = irq_save();
	struct kern_thread *w;

	if (!started) {
		if (m->depth)
			m->depth--;
		irq_restore(p);
		return;
	}
	if (m->owner != current || m->depth == 0) {
		irq_restore(p); /* not ours: ignore */
		return;
	}
	if (--m->depth == 0) {
		current->locks_held--;
		w = first_waiter(m);
		m->owner = w;
		if (w) {
			m->depth = 1;
			w->locks_held++;
			make_ready(w);
		}
	}
	irq_restore(p);
}

int
kern_thread_restart(struct kern_thread *t)
{
	uint32_t p = irq_save();

	if (t == current) {
		irq_restore(p);
		return -EINVAL;
	}
	if (t->locks_held) {
		irq_restore(p);
		return -EBUSY;
	}
	t->wait_obj = NULL;
	t->has_deadline = false;
	t->wait_rc = 0;
	frame_init(t);
	t->state = T_READY;
	if (started && t->prio > current->prio)
		pend_switch();
	irq_restore(p);
	return 0;
}

void
kern_stack_repaint(struct kern_thread *t)
{
	uint32_t p = irq_save();

	/* a thread that is not running uses nothing below its saved SP */
	if (t != current && t->sp) {
		for (size_t i = 1; i < t->stack_words && &t->stack[i] < t->sp - 16; i++)
			t->stack[i] = STACK_PAINT;
	}
	irq_restore(p);
}

uint32_t
kern_stack_free(const struct kern_thread *t)
{
	size_t i = 1;

	while (i < t->stack_words && t->stack[i] == STACK_PAINT)
		i++;
	return (uint32_t)(i * sizeof(uint32_t));
}

void *
kern_stack_limit(void)
{
	return current ? current->stack : NULL;
}

int
kern_thread_id(void)
{
	return current ? (int)index_of(current) + 1 : 1;
}

uint32_t
kern_switches(void)
{
	return switch_count;
}
