/* SYNTAX-CHECK SHIM, not Zephyr: see ../README.md. Only what the port sources use. */
#ifndef SHIM_ZEPHYR_KERNEL_H
#define SHIM_ZEPHYR_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zephyr/toolchain.h>

typedef struct {
	int64_t ticks;
} k_timeout_t;
#define K_NO_WAIT ((k_timeout_t){ .ticks = 0 })
#define K_FOREVER ((k_timeout_t){ .ticks = -1 })
#define K_MSEC(ms) ((k_timeout_t){ .ticks = (int64_t)(ms) })

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

#define K_THREAD_STACK_DEFINE(sym, size) struct z_thread_stack_element __aligned(8) sym[size]
#define K_THREAD_STACK_ARRAY_DEFINE(sym, nmemb, size) \
	struct z_thread_stack_element __aligned(8) sym[nmemb][size]
#define K_THREAD_STACK_SIZEOF(sym) sizeof(sym)

k_tid_t k_thread_create(struct k_thread *new_thread, k_thread_stack_t *stack, size_t stack_size,
			k_thread_entry_t entry, void *p1, void *p2, void *p3, int prio,
			uint32_t options, k_timeout_t delay);
void k_thread_abort(k_tid_t thread);
int k_thread_name_set(k_tid_t thread, const char *str);
int k_thread_stack_space_get(const struct k_thread *thread, size_t *unused_ptr);

struct k_sem {
	unsigned int count, limit;
};
#define K_SEM_DEFINE(name, initial, max) struct k_sem name = { (initial), (max) }
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

uint32_t k_uptime_get_32(void);
int32_t k_msleep(int32_t ms);

#endif
