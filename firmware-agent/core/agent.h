/*
 * Wasmbed agent core: the portable, OS-free part of the device agent.
 *
 * The core implements the whole line protocol (docs/PROTOCOL.md, v1 = legacy FW-B3, plus the v2
 * extensions) on top of WAMR. A port supplies only IO through `struct agent_port_ops`: bytes out,
 * a millisecond clock, the LED, sleeping, job signalling and locking. See PORTING.md.
 *
 * Contexts:
 *  - RX context (UART ISR or reader thread): agent_rx() only.
 *  - Command context (one thread, or the bare-metal main loop): agent_init(), agent_hello(),
 *    agent_poll().
 *  - Job context (one worker thread per slot, or the main loop): agent_job_run(),
 *    agent_job_aborted(), and the WAMR natives.
 * All state lives in one `struct agent`; there is no other mutable global state in the core
 * (WAMR itself keeps process-wide state: one WAMR runtime per process).
 */
#ifndef WASMBED_AGENT_H
#define WASMBED_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Longest accepted command line (bytes, without the terminator). */
#define AGENT_LINE_MAX 255
/** Longest line the agent emits (bytes, including the '\n'). */
#define AGENT_TX_MAX 1024
/** Compile-time upper bound of slots; `agent_config.slots` picks the number in use. */
#define AGENT_MAX_SLOTS 8
/** Depth of the completed-line queue between RX and command context. */
#define AGENT_RXQ_DEPTH 8
/** Longest module_id (bytes). */
#define AGENT_ID_MAX 31
/** Longest function name (bytes). */
#define AGENT_FUNC_MAX 63
/** Maximum i32 arguments passed to START. */
#define AGENT_MAX_ARGS 4

/** Trusted module-signing keys a device holds at most (docs/SECURITY.md "Signed modules"). */
#define AGENT_TRUSTED_KEYS_MAX 4
/** Module ids with a minimum version (anti-rollback) the agent remembers at most. */
#define AGENT_FLOORS_MAX 8

/** Module signatures (agent_config.sig_mode; INFO `sig=`). */
enum agent_sig_mode {
	AGENT_SIG_OFF = 0,  /**< no SIG/MINVER commands, no INFO sig= (firmware without the feature) */
	AGENT_SIG_OPTIONAL, /**< unsigned LOADs load; a signed one must verify */
	AGENT_SIG_REQUIRED, /**< every LOAD (v1 and v2) must carry a valid signature */
};

/** Returned by `job_abort` when the job cannot be abandoned synchronously (polled ports). */
#define AGENT_ABORT_DEFERRED 1

/** What a port provides. Every function receives `ctx`. Optional members may be NULL. */
struct agent_port_ops {
	/** Write one complete line (ends with '\n') to the link. Called with the core lock held. */
	void (*write)(void *ctx, const char *line, size_t len);
	/** Monotonic milliseconds (wraps at 2^32; the core compares wrap-safely). */
	uint32_t (*now_ms)(void *ctx);
	/** Drive the LED (1 = on, 0 = off). Optional. */
	void (*led_set)(void *ctx, int on);
	/**
	 * Sleep about `ms` milliseconds in job context. Natives call it in slices of at most 20 ms.
	 * A polled single-threaded port must keep calling agent_poll() while it waits.
	 */
	void (*sleep_ms)(void *ctx, uint32_t ms);
	/** Wake the command context (a line or payload completed). May be called from agent_rx(). */
	void (*wake)(void *ctx);
	/**
	 * A job was queued on `slot`: the port must later call agent_job_run(a, slot) in job
	 * context (threaded: post the slot worker; polled: run it from the main loop).
	 */
	void (*job_start)(void *ctx, unsigned slot);
	/**
	 * Forcibly abandon the job running on `slot` (the WAMR call must never return into the
	 * core). Called in command context without the core lock. Return 0 once the job no longer
	 * runs, AGENT_ABORT_DEFERRED if the port will abandon it later and then call
	 * agent_job_aborted(), or a negative errno if it failed.
	 */
	int (*job_abort)(void *ctx, unsigned slot);
	/** Core lock: serialises state between command and job contexts (no-op when polled). */
	void (*lock)(void *ctx);
	/** Releases the core lock. */
	void (*unlock)(void *ctx);
	/** RX critical section: agent_rx() must not run between rx_lock() and rx_unlock(). */
	void (*rx_lock)(void *ctx);
	/** Ends the RX critical section. */
	void (*rx_unlock)(void *ctx);
	/** Free bytes of the slot worker's stack (STATUS `stack_free=`). Optional. */
	uint32_t (*stack_free)(void *ctx, unsigned slot);
	/**
	 * A new module takes the slot (its worker is idle): restart the stack's low-water mark so
	 * that `stack_free` is this module's own figure. Optional.
	 */
	void (*stack_reset)(void *ctx, unsigned slot);
	/** Diagnostic text (not protocol), e.g. to stderr. Optional. */
	void (*log)(void *ctx, const char *msg);
	/**
	 * Every command line, exactly as it is about to be executed (without terminator). Optional;
	 * tests and the fuzzer check with it that only complete lines outside any payload run.
	 */
	void (*trace_command)(void *ctx, const char *line, size_t len);
	/**
	 * An AOT module's machine code was just written into the pool (after a successful load,
	 * before any of it runs): make it visible to instruction fetch. On a CPU with caches
	 * (Cortex-M7) clean the data cache and invalidate the instruction cache, at least over the
	 * pool. Command context. Optional (cache-less MCUs, hosts with coherent caches).
	 */
	void (*code_sync)(void *ctx);
	/**
	 * The minimum version of module `id` rose to `ver` (a signed LOAD with a higher ver= was
	 * accepted, or MINVER): persist it if the port can, and restore it at boot with
	 * agent_sig_floor_restore(). Command context. Optional (RAM only).
	 */
	void (*floor_saved)(void *ctx, const char *id, uint32_t ver);
	/**
	 * Reprogram the UART to `baud` (8N1) (docs/PROTOCOL.md "Baud switching"). With
	 * `after_next_line` the switch happens right after the last bit of the next line written
	 * (the BAUD_OK the core writes next) has left the wire, else at once (the core's own
	 * revert). Command context, core lock held. Return 0, or a negative errno if the UART
	 * cannot run at `baud` (the core then answers BAUD_ERR code=FAILED). Optional: without it
	 * (or without cfg.baud_rates) the agent does not offer BAUD.
	 */
	int (*set_baud)(void *ctx, uint32_t baud, bool after_next_line);
};

/** Static description and limits of the board. */
struct agent_config {
	const char *board;      /**< HELLO device_id= and INFO board= */
	const char *rtos;       /**< HELLO rtos= (posix, baremetal, Zephyr) */
	const char *fw_version; /**< HELLO fw_version= (semver) */
	const char *fw_build;   /**< INFO fw= */
	const char *aot_arch;   /**< INFO aot_arch= (x86_64, thumbv7em, none) */
	const char *aot_cpu;    /**< INFO aot_cpu= */
	const char *aot_abi;    /**< INFO aot_abi= */
	const char *aot_features; /**< INFO aot_features= (LLVM cpu features of AOT code, default none) */
	/**
	 * The MMU traps out-of-bounds accesses of AOT code (INFO aot_bounds_checks=optional).
	 * false (every Wasmbed port: no MMU, or the sim matching one): AOT files must carry their
	 * own bounds checks (aot_bounds_checks=required).
	 */
	bool aot_hw_bounds;
	const char *stop_mode;  /**< INFO stop= (forced, forced_interp_only, cooperative) */
	unsigned slots;         /**< slots in use, 1..AGENT_MAX_SLOTS (default 2) */
	void *pool;             /**< WAMR pool memory (8-byte aligned) */
	uint32_t pool_size;     /**< bytes of `pool` */
	uint32_t wasm_stack;    /**< WAMR exec env stack per slot (default 16384) */
	uint32_t wasm_heap;     /**< WAMR app heap per instance (default 0) */
	uint32_t stop_grace_ms; /**< STOP: forced stop after this (default 1200) */
	/**
	 * Instantiation (start function and constructors, run in job context): terminated after
	 * this, forced stop_grace_ms later (default 1000). LOAD then answers LOAD_ERR
	 * code=START_TIMEOUT.
	 */
	uint32_t start_timeout_ms;
	uint32_t load_timeout_ms;  /**< v1 payload deadline (default 5000) */
	uint32_t chunk_timeout_ms; /**< chunk bytes idle deadline (default 2000) */
	uint32_t chunk_wait_ms;    /**< no CHUNK line deadline (default 10000) */
	uint32_t baud;             /**< INFO baud=: the UART's line speed (0: not reported, e.g. no UART) */
	const uint32_t *baud_rates; /**< speeds BAUD accepts (INFO baud_rates=); needs ops->set_baud */
	unsigned baud_rate_count;   /**< entries of baud_rates */
	uint32_t baud_revert_ms;    /**< back to the old speed if no command arrives at the new one (default 1000) */
	uint32_t chunk_max;        /**< largest CHUNK accepted (default 16384; chunks go straight into the module buffer, so no RAM) */
	/** Module signatures: off (default), optional or required. */
	enum agent_sig_mode sig_mode;
	/** Ed25519 public keys a signed module may be signed by (rotation: several). */
	const uint8_t (*trusted_keys)[32];
	unsigned trusted_keys_n; /**< entries of trusted_keys, at most AGENT_TRUSTED_KEYS_MAX */
	/**
	 * Why the board last reset, when it was not a plain power-on (e.g. "fault": the agent
	 * itself took a CPU fault): HELLO and INFO_OK carry `reset=<it>` (NULL: no token).
	 */
	const char *reset_cause;
	/** What the reset_cause was (INFO_OK `last_fault="..."`; NULL: no token). */
	const char *last_fault;
	/** Fault injection for tests: STOP skips wasm_runtime_terminate, only the forced stop ends a job. */
	bool test_no_terminate;
	/**
	 * The device identity: an Ed25519 seed (RFC 8032 secret key, 32 bytes), or NULL for none
	 * (INFO says identity=none, IDENT answers IDENT_ERR code=NO_IDENTITY). agent_init derives
	 * the key pair from a copy; the port should wipe its own copy afterwards.
	 * docs/PROTOCOL.md "Device identity (IDENT)".
	 */
	const uint8_t *identity_seed;
};

/** The identity key pair (agent_ident.c). Private to the core. */
struct agent_identity {
	bool present;
	uint8_t secret[64];  /* Monocypher's Ed25519 secret key: seed, then the public key */
	char info[8 + 33];   /* INFO identity=: "ed25519:<32 hex fingerprint>" or "none" */
};

/** The module signature of the last SIG line, private to the core (one: RAM is scarce). */
struct agent_sig {
	bool present;
	int slot; /* -1: waiting for the LOAD of `id`; else the slot whose upload it signs */
	char id[AGENT_ID_MAX + 1];
	uint8_t sig[64];
	uint8_t key_id[8];
	uint32_t ver;
};

/** One loaded module and its job. Fields are private to the core. */
struct agent_slot {
	struct agent *agent;
	unsigned index;
	int state; /* enum agent_slot_state */
	char id[AGENT_ID_MAX + 1];
	uint8_t *buf;
	uint32_t size;
	uint32_t crc;
	uint32_t acked; /* bytes of a (chunked) upload received and checked */
	void *module;   /* wasm_module_t */
	void *inst;     /* wasm_module_inst_t */
	void *exec_env; /* wasm_exec_env_t */
	/* job */
	char func[AGENT_FUNC_MAX + 1];
	uint32_t argv[AGENT_MAX_ARGS];
	unsigned argc;
	uint32_t job_gen;
	volatile int stop_requested;
	bool stop_pending;
	bool killing;
	uint32_t stop_deadline;
	/* module output (uart_print, log): lines in the current second, lines dropped since */
	uint32_t out_window, out_count, out_dropped;
	/* instantiation in job context (state SLOT_STARTING) */
	int start_kind;       /* enum agent_start_kind */
	const char *fault;    /* START_FAULTED: the CPU fault its RESULT names (the port's text) */
	void *start_inst;     /* the instance whose start function runs (from WAMR's start hook) */
	uint32_t start_deadline;
	bool start_terminated; /* terminate asked: the next deadline forces */
	bool warn_victim;      /* LOAD_OK warn=VICTIM_IGNORED */
	bool load_has_seq;     /* the LOAD carried seq=load_seq (its LOAD_OK/LOAD_ERR echo it) */
	uint32_t load_seq;
	char victim[AGENT_ID_MAX + 1];
};

/** Framed chunks (docs/PROTOCOL.md "Framed chunks"): a frame line starts with this byte. */
#define AGENT_FRAME_MARK 0x01u
/** Last byte of every frame line before its '\n' (never printable: a frame's tail is no command). */
#define AGENT_FRAME_END 0x04u
/** Frame kind (first decoded byte) of a module chunk. */
#define AGENT_FRAME_CHUNK 0x01u

/** One completed input line (or frame) in the RX queue. */
struct agent_rx_line {
	uint16_t len;
	uint8_t flags; /* AGENT_RXL_* */
	char text[AGENT_LINE_MAX + 1];
	/* AGENT_RXL_FRAME: the frame's offset, data length and CRC as received */
	uint32_t f_off, f_len, f_crc;
};

/** RX state shared between agent_rx() and the command context. Private to the core. */
struct agent_rx {
	char cur[AGENT_LINE_MAX + 1];
	uint16_t cur_len;
	bool cur_too_long;
	/* what the line being received is: RXK_TEXT, RXK_FRAME (starts with AGENT_FRAME_MARK) or
	 * RXK_JUNK (a byte outside 0x20..0x7e): only RXK_TEXT lines are ever executed */
	uint8_t cur_kind;
	bool cur_cr; /* a '\r' was the last byte: only '\n' may follow */
	uint32_t junk; /* lines discarded as junk */
	bool link_reset; /* agent_rx_reset() ran: the command side ends the transfer */
	/* the frame being decoded (streaming COBS, sentinel '\n') */
	uint8_t *fr_dst;
	uint32_t fr_cap, fr_base, fr_pos;
	uint16_t fr_left;
	bool fr_zero, fr_started, fr_bad, fr_over, fr_held_ok;
	uint8_t fr_held; /* the newest byte, decoded once the next one shows it is not the end */
	uint8_t fr_hdr[5], fr_tail[4];
	struct agent_rx_line q[AGENT_RXQ_DEPTH];
	unsigned q_head, q_count;
	uint32_t overflow, too_long, overflow_reported;
	/* binary payload: raw v1 LOAD or one CHUNK */
	bool bin_active;
	bool bin_discard;
	uint8_t *bin_dst;
	uint32_t bin_len, bin_got;
	/* where CHUNK payloads or the next frame go (armed by a chunked LOAD), and its offset */
	uint8_t *chunk_dst;
	uint32_t chunk_cap;
	uint32_t chunk_max;
	uint32_t chunk_off;
};

/** The active module transfer (v1 or chunked); the data lives in its slot. Private. */
struct agent_upload {
	int state; /* enum agent_upload_state */
	bool framed; /* chunks come as frames (framed=1), never as raw CHUNK payloads */
	bool has_seq; /* the LOAD carried seq=: every reply of the upload echoes it */
	uint32_t seq;
	unsigned slot;
	bool warn_victim;
	char victim[AGENT_ID_MAX + 1];
	uint32_t deadline;
	/* progress of a CHUNK payload being received */
	bool chunk_busy;
	uint32_t last_got;
	/* compress=deflate (agent_inflate.c): the frames carry a raw deflate stream of csize bytes,
	 * cacked of them acknowledged, inflated to `produced` module bytes; the inflater's state and
	 * the frame's staging buffer are WAMR pool blocks held while the upload runs */
	bool deflate;
	uint32_t csize, cacked, produced;
	void *inflater;
	uint8_t *stage;
};

/** The whole agent. Allocate it anywhere (static on MCUs); fields are private. */
struct agent {
	const struct agent_port_ops *ops;
	void *ctx;
	struct agent_config cfg;
	struct agent_slot slots[AGENT_MAX_SLOTS];
	struct agent_rx rx;
	struct agent_upload up;
	uint32_t led_toggles;
	int led_on;
	bool wasm_ready;
	uint8_t rx_flags;          /* flags of the line being dispatched */
	/* seq= of the command being answered (replies echo it; docs/PROTOCOL.md) */
	bool reply_tag;
	uint32_t reply_seq;
	uint32_t chunk_idle_since; /* last progress of a CHUNK payload */
	struct agent_identity ident;
	struct agent *next_agent;  /* agents sharing the process's WAMR runtime (start hook) */
	/* module signatures: the last SIG (waiting for its LOAD, or bound to an upload's slot), and
	 * the minimum version per module id */
	struct agent_sig sig;
	struct {
		char id[AGENT_ID_MAX + 1];
		uint32_t ver;
	} floors[AGENT_FLOORS_MAX];
	/* BAUD: a switch waiting for its first command at the new speed (agent_baud.c) */
	bool baud_pending;
	uint32_t baud_prev, baud_deadline;
};

/**
 * Initialise the agent and WAMR (pool allocator on cfg->pool). Zero config fields take their
 * defaults. Returns 0 or a negative errno; on failure it has emitted `ERROR code=WAMR_INIT_FAIL`.
 */
int agent_init(struct agent *a, const struct agent_config *cfg,
	       const struct agent_port_ops *ops, void *ctx);

/** Stop every job, unload every module and shut WAMR down. Command context. */
void agent_deinit(struct agent *a);

/** Emit the HELLO banner (at boot and, on the simulated board, on every new connection). */
void agent_hello(struct agent *a);

/**
 * Feed received bytes (RX context). Never blocks; assembles lines, copies payload bytes,
 * counts overflows. Calls ops->wake when the command context has work.
 */
void agent_rx(struct agent *a, const uint8_t *data, size_t len);

/**
 * A new link session began (e.g. a TCP client connected): drop the partial input line or frame,
 * leave payload mode and drop queued lines; the next agent_poll() ends the transfer in progress
 * (a chunked one stays parked for resume). RX context or inside the port's RX lock.
 */
void agent_rx_reset(struct agent *a);

/**
 * Run the command context once: handle completed lines, payload completion and all deadlines.
 * Returns the number of ms after which it must be called again at the latest (>= 1).
 */
uint32_t agent_poll(struct agent *a);

/** Run the job queued on `slot` to completion and emit its RESULT (job context). */
void agent_job_run(struct agent *a, unsigned slot);

/**
 * Polled ports: the job of `slot` was abandoned after job_abort() returned
 * AGENT_ABORT_DEFERRED; emits the forced RESULT and re-instantiates the module.
 */
void agent_job_aborted(struct agent *a, unsigned slot);

/**
 * The job thread of `slot` took a CPU fault (usage, bus, memory management or hard fault) in
 * module code and the port has already abandoned it (its thread restarted, as for a forced
 * stop): the module is re-instantiated and then the job ends with
 * `RESULT status=EXCEPTION ... msg="cpu fault: <fault>"` (a START after it finds the module
 * ready, as after a forced stop); a faulted start function
 * ends its LOAD with `LOAD_ERR code=INSTANTIATE_FAIL`. `fault` must stay valid until that
 * RESULT is written (the port keeps one buffer per slot). Command context.
 */
void agent_job_faulted(struct agent *a, unsigned slot, const char *fault);

/**
 * Whether the port must abandon the job of `slot` now (polled ports check this from their
 * WAMR metering / native hooks after calling agent_poll()).
 */
bool agent_job_abort_requested(struct agent *a, unsigned slot);

/** LED toggles counted so far (also reported as `led_toggles=` in STATUS). */
uint32_t agent_led_toggles(struct agent *a);

/**
 * Restore the minimum version of module `id` (anti-rollback) after agent_init(), e.g. from the
 * port's state file. Only raises. Returns 0, -EINVAL (bad id) or -ENOSPC (table full).
 */
int agent_sig_floor_restore(struct agent *a, const char *id, uint32_t ver);

/** Standard CRC-32 (zlib): crc = agent_crc32(0, buf, len), chainable. */
uint32_t agent_crc32(uint32_t crc, const uint8_t *buf, size_t len);

/* Hex codec shared by the core and the ports (keys, signatures, identity seeds). */
/* n bytes to 2n lowercase hex digits and a NUL (dst holds 2n + 1). */
void agent_hex_encode(char *dst, const uint8_t *src, size_t n);
/* Exactly 2n hex digits (src, len) to n bytes; false on another length or a non-hex digit. */
bool agent_hex_decode(uint8_t *dst, const char *src, size_t len, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* WASMBED_AGENT_H */
