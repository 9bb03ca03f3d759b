/* Internal state of the POSIX port (one simulated board). */
#ifndef WASMBED_POSIX_PORT_H
#define WASMBED_POSIX_PORT_H

#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>

#include "agent.h"

enum posix_link_kind { LINK_STDIO, LINK_TCP, LINK_PTY };

/** One worker thread per slot; replaced after a forced stop. */
struct posix_worker {
	struct posix_port *port;
	unsigned slot;
	pthread_t thread;
	bool running;
	sem_t job;
	sigjmp_buf jmp;
	volatile sig_atomic_t abort;
	volatile sig_atomic_t exited;
	void *stack;
	size_t stack_size;
	/* the worker's frame while it waits for a job: stack_reset paints below it */
	volatile char *idle_frame;
};

/** Everything of one simulated board. */
struct posix_port {
	struct agent agent;
	struct agent_config cfg;
	enum posix_link_kind link;
	const char *listen_addr;
	char listen_buf[280];  /* this board's address when --boards > 1 */
	char board_buf[64];    /* this board's name when --boards > 1 */
	unsigned baud;         /* the speed the UART runs at now (pacing); 0: instant */
	bool test_baud_wrong;  /* --test-baud-wrong: BAUD lands at half the asked rate */
	unsigned boot_baud;    /* --baud: a switch back to it always lands right */
	unsigned pending_asked; /* the rate BAUD asked for (log) */
	unsigned pending_baud; /* applied by the next posix_link_write, once its line has left */
	bool reply_bytewise;   /* --reply-bytewise: one write() per reply byte, Nagle on */
	bool lazy_workers;     /* --boards > 1: a slot's worker thread starts with its first job */
	pthread_t cmd_thread;  /* --boards > 1: this board's command loop */
	pthread_mutex_t lock;    /* core lock */
	pthread_mutex_t rx_lock; /* held around agent_rx() */
	pthread_mutex_t out_lock;
	int out_fd; /* current link for output, -1 when no client */
	bool tx_stalled; /* the peer stopped reading: output is dropped until it reads again */
	struct timespec rx_wire, tx_wire; /* --baud: when each direction of the wire is next free */
	pthread_mutex_t wake_lock;
	pthread_cond_t wake_cond;
	bool woken;
	struct posix_worker workers[AGENT_MAX_SLOTS];
	void *pool;
	const char *identity_file; /* --identity-file, or NULL */
	char identity_buf[4096];   /* this board's file under --state-dir */
	uint8_t identity_seed[32]; /* wiped once the agent holds the key */
	/* signed modules (posix_sig.c) */
	uint8_t trusted_keys[AGENT_TRUSTED_KEYS_MAX][32];
	bool sig_mode_set;
	const char *floor_file;
};

/* posix_link.c */
/** Set up the link and start its reader thread; prints `listening on`/`pty` lines. */
int posix_link_start(struct posix_port *p);
/** Write bytes to the current link, paced by the baud rate. */
void posix_link_write(struct posix_port *p, const char *buf, size_t len);
/** Port op: switch the simulated UART's speed (pacing), now or once the next line has left. */
int posix_set_baud(void *ctx, uint32_t baud, bool after_next_line);
/** The speeds BAUD offers (with --baud). */
extern const uint32_t posix_baud_rates[];
extern const unsigned posix_baud_rate_count;

/* posix_jobs.c */
/** Create the worker threads of all slots. */
int posix_workers_start(struct posix_port *p);
/** Port op: queue the job of `slot`. */
void posix_job_start(void *ctx, unsigned slot);
/** Port op: abandon the job of `slot` (signal + siglongjmp, then a fresh worker). */
int posix_job_abort(void *ctx, unsigned slot);
/** Port op: unused bytes of the slot worker's stack. */
uint32_t posix_stack_free(void *ctx, unsigned slot);
/* posix_sig.c */
/** A signing option (--trusted-key, --trusted-keys, --signatures, --floor-file): 1 taken, 0 not
 * one of them, -1 bad (message printed). */
int posix_sig_option(struct posix_port *p, const char *flag, const char *value);
/** After all options: defaults and checks. 0 or -1 (message printed). */
int posix_sig_finish_args(struct posix_port *p, unsigned boards);
/** After agent_init: the minimum versions from --floor-file. 0 or -1 (message printed). */
int posix_sig_restore(struct posix_port *p);
/** Port op floor_saved: persist the minimum versions to --floor-file. */
void posix_sig_floor_saved(void *ctx, const char *id, uint32_t ver);
/* posix_mem.c */
/** Serve module linear memory from `pool` (before WAMR starts; see posix_mem.c). */
void posix_mem_use_pool(void *pool, uint32_t size);

/** Port op: a new module takes the slot: repaint the idle worker's unused stack. */
void posix_stack_reset(void *ctx, unsigned slot);
/** Block (true) or unblock the abort signal in the calling thread. */
void posix_block_abort_signal(bool block);

/* posix_identity.c */
/**
 * The board's identity seed from `path` (64 hex digits, mode 0600), created from getrandom()
 * if the file does not exist. 0, or -1 after printing why.
 */
int posix_identity_load(const char *path, uint8_t seed[32]);

/* posix_main.c */
/** Port op: wake the command loop. */
void posix_wake(void *ctx);
/** Diagnostics to stderr. */
void posix_log(void *ctx, const char *msg);

#endif
