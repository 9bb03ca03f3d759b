/*
 * SYNTAX-CHECK SHIM, not Zephyr: see ../README.md. Only what the port sources use, with the real
 * header's build-time checks (semaphore limits) and config guards (k_thread_stack_space_get
 * exists only with CONFIG_INIT_STACKS and CONFIG_THREAD_STACK_INFO), and ARMv7-M's MPU stack
 * guards, carved out of the declared stack size (so sizeof() of a stack object is what it costs
 * in RAM, and less than that is usable).
 */
#ifndef SHIM_ZEPHYR_KERNEL_H
#define SHIM_ZEPHYR_KERNEL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zephyr/sys/util.h>
#include <zephyr/toolchain.h>

typedef struct {
	int64_t ticks;
} k_timeout_t;
#define K_NO_WAIT ((k_timeout_t){ .ticks = 0 })
#define K_FOREVER ((k_timeout_t){ .ticks = -1 })
#define K_MSEC(ms) ((k_timeout_t){ .ticks = (int64_t)(ms) })

/* thread options */
#define K_ESSENTIAL (BIT(0))
#define K_FP_IDX 1
#define K_FP_REGS (BIT(K_FP_IDX))

struct k_thread {
	struct {
		uintptr_t start;
		size_t size;
	} stack_info;
};
typedef struct k_thread *k_tid_t;
struct z_thread_stack_element {
	char data;
};
typedef struct z_thread_stack_element k_thread_stack_t;
typedef void (*k_thread_entry_t)(void *p1, void *p2, void *p3);

/*
 * ARMv7-M, as Zephyr's include/zephyr/arch/arm/arch.h: thread stacks reserve nothing beyond
 * their declared size (ARCH_THREAD_STACK_RESERVED 0: "on arm, all MPU guards are carve-outs").
 * With CONFIG_MPU_STACK_GUARD the guard is taken from the start of the declared size when the
 * thread is created: 32 bytes, or 128 (CONFIG_MPU_STACK_GUARD_MIN_SIZE_FLOAT) for a K_FP_REGS
 * thread with FPU sharing; the stack object is aligned to the guard's size (the ARMv7-M MPU needs
 * power-of-two regions). So sizeof() of a stack object is its RAM cost (plus alignment padding),
 * and a thread created on it can use the declared size less its guard.
 */
#define SHIM_MAX(a, b) ((a) > (b) ? (a) : (b))
#if defined(CONFIG_MPU_STACK_GUARD)
#define SHIM_MPU_GUARD 32
#if defined(CONFIG_FPU) && defined(CONFIG_FPU_SHARING)
#define SHIM_MPU_GUARD_FLOAT 128
#else
#define SHIM_MPU_GUARD_FLOAT 0
#endif
#else
#define SHIM_MPU_GUARD 0
#define SHIM_MPU_GUARD_FLOAT 0
#endif
#define SHIM_STACK_OBJ_ALIGN SHIM_MAX(8, SHIM_MAX(SHIM_MPU_GUARD, SHIM_MPU_GUARD_FLOAT))
#define K_THREAD_STACK_RESERVED 0
#define K_THREAD_STACK_LEN(size)                                                                   \
	((((size) + SHIM_STACK_OBJ_ALIGN - 1) / SHIM_STACK_OBJ_ALIGN) * SHIM_STACK_OBJ_ALIGN)
#define K_THREAD_STACK_DEFINE(sym, size)                                                           \
	struct z_thread_stack_element __aligned(SHIM_STACK_OBJ_ALIGN) sym[K_THREAD_STACK_LEN(size)]
#define K_THREAD_STACK_ARRAY_DEFINE(sym, nmemb, size)                                              \
	struct z_thread_stack_element __aligned(SHIM_STACK_OBJ_ALIGN)                              \
		sym[nmemb][K_THREAD_STACK_LEN(size)]
#define K_THREAD_STACK_SIZEOF(sym) (sizeof(sym) - K_THREAD_STACK_RESERVED)

k_tid_t k_thread_create(struct k_thread *new_thread, k_thread_stack_t *stack, size_t stack_size,
			k_thread_entry_t entry, void *p1, void *p2, void *p3, int prio,
			uint32_t options, k_timeout_t delay);
void k_thread_abort(k_tid_t thread);
k_tid_t k_current_get(void);
int k_thread_name_set(k_tid_t thread, const char *str);
#if defined(CONFIG_INIT_STACKS) && defined(CONFIG_THREAD_STACK_INFO)
int k_thread_stack_space_get(const struct k_thread *thread, size_t *unused_ptr);
#endif

struct k_sem {
	unsigned int count, limit;
};
#define K_SEM_MAX_LIMIT UINT_MAX
#define K_SEM_DEFINE(name, initial_count, count_limit)                                             \
	struct k_sem name = { (initial_count), (count_limit) };                                    \
	BUILD_ASSERT(((count_limit) != 0) && ((initial_count) <= (count_limit)) &&                 \
		     ((count_limit) <= K_SEM_MAX_LIMIT))
int k_sem_init(struct k_sem *sem, unsigned int initial_count, unsigned int limit);
int k_sem_take(struct k_sem *sem, k_timeout_t timeout);
void k_sem_give(struct k_sem *sem);
void k_sem_reset(struct k_sem *sem);

struct k_mutex {
	struct k_thread *owner;
	uint32_t lock_count;
};
#define K_MUTEX_DEFINE(name) struct k_mutex name = { 0 }
int k_mutex_lock(struct k_mutex *mutex, k_timeout_t timeout);
int k_mutex_unlock(struct k_mutex *mutex);

struct k_spinlock {
	int unused; /* empty on uniprocessor builds without validation */
};
typedef struct z_spinlock_key {
	int key;
} k_spinlock_key_t;
k_spinlock_key_t k_spin_lock(struct k_spinlock *l);
void k_spin_unlock(struct k_spinlock *l, k_spinlock_key_t key);

/* zephyr/sys/atomic.h (included by kernel.h) */
typedef long atomic_t;
typedef atomic_t atomic_val_t;
atomic_val_t atomic_inc(atomic_t *target);
atomic_val_t atomic_dec(atomic_t *target);
atomic_val_t atomic_get(const atomic_t *target);
atomic_val_t atomic_set(atomic_t *target, atomic_val_t value);

uint32_t k_uptime_get_32(void);
int32_t k_msleep(int32_t ms);

#endif
