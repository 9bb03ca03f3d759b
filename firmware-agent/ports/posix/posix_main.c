/* The simulated board's entry point: arguments, port ops and the command loop. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agent_posix.h"
#include "posix_port.h"

#define DEFAULT_POOL (2u * 1024u * 1024u)
#define MAX_BOARDS 4096
/* Command threads of --boards N: WAMR loads and instantiates modules on them. */
#define CMD_STACK (512u * 1024u)

/* Signal flag: the only process-wide state of the port (a handler cannot reach a struct). */
static volatile sig_atomic_t exit_requested;

static void on_exit_signal(int sig)
{
	(void)sig;
	exit_requested = 1;
}

static uint32_t p_now_ms(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static void p_write(void *ctx, const char *line, size_t len)
{
	posix_link_write(ctx, line, len);
}

static void p_led_set(void *ctx, int on)
{
	struct posix_port *p = ctx;
	fprintf(stderr, "[%s] LED %s (toggles=%lu)\n", p->cfg.board, on ? "ON" : "OFF",
		(unsigned long)agent_led_toggles(&p->agent));
}

static void p_sleep_ms(void *ctx, uint32_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	(void)ctx;
	nanosleep(&ts, NULL); /* an interrupted sleep just ends early */
}

void posix_wake(void *ctx)
{
	struct posix_port *p = ctx;

	pthread_mutex_lock(&p->wake_lock);
	p->woken = true;
	pthread_cond_signal(&p->wake_cond);
	pthread_mutex_unlock(&p->wake_lock);
}

void posix_log(void *ctx, const char *msg)
{
	struct posix_port *p = ctx;
	fprintf(stderr, "[%s] %s\n", p->cfg.board, msg);
}

static void p_lock(void *ctx)
{
	struct posix_port *p = ctx;
	posix_block_abort_signal(true);
	pthread_mutex_lock(&p->lock);
}

static void p_unlock(void *ctx)
{
	struct posix_port *p = ctx;
	pthread_mutex_unlock(&p->lock);
	posix_block_abort_signal(false);
}

static void p_rx_lock(void *ctx) { pthread_mutex_lock(&((struct posix_port *)ctx)->rx_lock); }
static void p_rx_unlock(void *ctx) { pthread_mutex_unlock(&((struct posix_port *)ctx)->rx_lock); }

static const struct agent_port_ops posix_ops = {
	.write = p_write,
	.now_ms = p_now_ms,
	.led_set = p_led_set,
	.sleep_ms = p_sleep_ms,
	.wake = posix_wake,
	.job_start = posix_job_start,
	.job_abort = posix_job_abort,
	.lock = p_lock,
	.unlock = p_unlock,
	.rx_lock = p_rx_lock,
	.rx_unlock = p_rx_unlock,
	.stack_free = posix_stack_free,
	.stack_reset = posix_stack_reset,
	.log = posix_log,
	.floor_saved = posix_sig_floor_saved,
	.set_baud = posix_set_baud,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wasmbed-agent-sim [--listen HOST:PORT | --pty] [--baud N | --instant]\n"
		"                         [--reply-bytewise] [--boards N] [--slots N]\n"
		"                         [--pool-size BYTES] [--board NAME] [--grace-ms MS]\n"
		"                         [--start-timeout-ms MS] [--aot-cpu NAME]\n"
		"                         [--identity-file PATH | --state-dir DIR]\n"
		"A simulated Wasmbed board: the portable C agent with WAMR 2.4.3 (interpreter and\n"
		"x86_64 AOT). Default link: stdin/stdout. Logs go to stderr.\n"
		"  --listen HOST:PORT  raw TCP server, one client at a time (port 0: any free port;\n"
		"                      prints 'listening on HOST:PORT')\n"
		"  --pty               create a pseudo-terminal, print 'pty /dev/pts/N'\n"
		"  --baud N            pace both directions like an N baud 8N1 UART (N/10 bytes/s)\n"
		"  --instant           no pacing at all (the default; conflicts with --baud)\n"
		"  --reply-bytewise    write each output byte with its own write() and leave Nagle\n"
		"                      on (TCP), like older Renode builds\n"
		"  --boards N          N boards in one process sharing one WAMR runtime and pool\n"
		"                      (TCP only; port P>0: ports P..P+N-1, port 0: a free port\n"
		"                      each; one 'listening on' line per board, in board order;\n"
		"                      boards are named NAME0..NAME<N-1>)\n"
		"  --slots N           module slots (1..%d, default 2)\n"
		"  --pool-size BYTES   WAMR pool size (default %u, with --boards N: N MiB, min 2)\n"
		"  --board NAME        board name for HELLO/INFO (default sim)\n"
		"  --aot-cpu NAME      the AOT cpu the board reports (INFO aot_cpu=) and loads AOT\n"
		"                      files for (default generic; x86-64 or x86-64-v2 run on\n"
		"                      any host that has them): another AOT target for tests\n"
		"  --grace-ms MS       STOP grace period before the forced stop (default 1200)\n"
		"  --start-timeout-ms MS  a start function still running after MS is terminated\n"
		"                      (LOAD_ERR code=START_TIMEOUT; default 1000)\n"
		"  --identity-file PATH  the board's Ed25519 identity seed (64 hex digits, mode\n"
		"                      0600), created from getrandom() if absent; without it\n"
		"                      and --state-dir the board has no identity (identity=none)\n"
		"  --state-dir DIR     keep the identity in DIR/<board name>.identity (one per\n"
		"                      board with --boards N; DIR is created 0700)\n"
		"  --test-no-terminate STOP skips wasm_runtime_terminate (tests the forced stop)\n"
		"  --trusted-key HEX   an Ed25519 public key modules may be signed by (repeatable,\n"
		"                      at most %d; rotation: add the new key, deploy, drop the old)\n"
		"  --trusted-keys FILE the same, one key per line ('#' comments)\n"
		"  --signatures MODE   required (default with keys), optional or off (default)\n"
		"  --floor-file FILE   keep the minimum version per module id (anti-rollback) here\n"
		"  --test-baud-wrong   BAUD lands the UART at half the asked speed (a divisor the\n"
		"                      board cannot make): the switch fails and the board reverts\n"
		"With --baud the board offers BAUD (INFO baud_rates=) and its pacing follows every\n"
		"switch; on a --pty link a peer whose port runs at another speed hears nothing and\n"
		"is not heard, like two UARTs that disagree.\n",
		AGENT_MAX_SLOTS, DEFAULT_POOL, AGENT_TRUSTED_KEYS_MAX);
}

static int parse_u32(const char *flag, const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = v ? strtoul(v, &end, 10) : 0;
	if (!v || errno || *end || end == v || n < min || n > max) {
		fprintf(stderr, "wasmbed-agent-sim: %s wants a number in %lu..%lu, got '%s'\n", flag,
			(unsigned long)min, (unsigned long)max, v ? v : "");
		return -1;
	}
	*out = (uint32_t)n;
	return 0;
}

struct sim_opts {
	const char *state_dir;
	unsigned boards;
	bool instant;
	bool baud_set;
	bool pool_set;
};

static int parse_args(struct posix_port *p, struct sim_opts *o, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint32_t n;
		int rc;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--pty")) {
			p->link = LINK_PTY;
			continue;
		} else if (!strcmp(a, "--instant")) {
			o->instant = true;
			continue;
		} else if (!strcmp(a, "--reply-bytewise")) {
			p->reply_bytewise = true;
			continue;
		} else if (!strcmp(a, "--test-baud-wrong")) {
			p->test_baud_wrong = true;
			continue;
		} else if (!strcmp(a, "--test-no-terminate")) {
			p->cfg.test_no_terminate = true; /* tests: exercise the forced stop */
			continue;
		} else if (!v) {
			fprintf(stderr, "wasmbed-agent-sim: unknown or incomplete option '%s'\n", a);
			return -1;
		} else if ((rc = posix_sig_option(p, a, v)) != 0) {
			if (rc < 0)
				return -1;
		} else if (!strcmp(a, "--listen")) {
			p->link = LINK_TCP;
			p->listen_addr = v;
		} else if (!strcmp(a, "--board")) {
			p->cfg.board = v;
		} else if (!strcmp(a, "--aot-cpu")) {
			p->cfg.aot_cpu = v; /* INFO aot_cpu=, and what AOT descriptors must name */
		} else if (!strcmp(a, "--identity-file")) {
			p->identity_file = v;
		} else if (!strcmp(a, "--state-dir")) {
			o->state_dir = v;
		} else if (!strcmp(a, "--baud")) {
			if (parse_u32(a, v, 300, 100000000, &n))
				return -1;
			p->baud = n;
			o->baud_set = true;
		} else if (!strcmp(a, "--boards")) {
			if (parse_u32(a, v, 1, MAX_BOARDS, &n))
				return -1;
			o->boards = n;
		} else if (!strcmp(a, "--slots")) {
			if (parse_u32(a, v, 1, AGENT_MAX_SLOTS, &n))
				return -1;
			p->cfg.slots = n;
		} else if (!strcmp(a, "--pool-size")) {
			if (parse_u32(a, v, 16384, 1024u * 1024u * 1024u, &n))
				return -1;
			p->cfg.pool_size = n;
			o->pool_set = true;
		} else if (!strcmp(a, "--grace-ms")) {
			if (parse_u32(a, v, 1, 600000, &n))
				return -1;
			p->cfg.stop_grace_ms = n;
		} else if (!strcmp(a, "--start-timeout-ms")) {
			if (parse_u32(a, v, 1, 600000, &n))
				return -1;
			p->cfg.start_timeout_ms = n;
		} else {
			fprintf(stderr, "wasmbed-agent-sim: unknown option '%s'\n", a);
			return -1;
		}
		i++;
	}
	if (o->instant && o->baud_set) {
		fprintf(stderr, "wasmbed-agent-sim: --instant and --baud exclude each other\n");
		return -1;
	}
	if (p->identity_file && (o->state_dir || o->boards > 1)) {
		fprintf(stderr, "wasmbed-agent-sim: --identity-file is one board's key: use "
				"--state-dir DIR with --boards N, not both options\n");
		return -1;
	}
	if (o->boards > 1 && p->link != LINK_TCP) {
		fprintf(stderr, "wasmbed-agent-sim: --boards N > 1 needs --listen HOST:PORT\n");
		return -1;
	}
	return posix_sig_finish_args(p, o->boards);
}

static void command_loop(struct posix_port *p)
{
	while (!exit_requested) {
		uint32_t ms = agent_poll(&p->agent);
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += ms / 1000;
		ts.tv_nsec += (long)(ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&p->wake_lock);
		while (!p->woken && !exit_requested)
			if (pthread_cond_timedwait(&p->wake_cond, &p->wake_lock, &ts) == ETIMEDOUT)
				break;
		p->woken = false;
		pthread_mutex_unlock(&p->wake_lock);
	}
}

/* Board i of a --boards run: its own name and listen address (port P+i, or 0 for each). */
static int board_setup(struct posix_port *b, const struct posix_port *tmpl, unsigned i)
{
	const char *colon = strrchr(tmpl->listen_addr, ':');
	unsigned long port;

	if (!colon) {
		fprintf(stderr, "wasmbed-agent-sim: --listen wants HOST:PORT, got '%s'\n",
			tmpl->listen_addr);
		return -1;
	}
	port = strtoul(colon + 1, NULL, 10);
	if (port && port + i > 65535) {
		fprintf(stderr, "wasmbed-agent-sim: ports %lu..%lu do not exist\n", port,
			port + i);
		return -1;
	}
	snprintf(b->listen_buf, sizeof(b->listen_buf), "%.*s:%lu",
		 (int)(colon - tmpl->listen_addr), tmpl->listen_addr, port ? port + i : 0);
	snprintf(b->board_buf, sizeof(b->board_buf), "%s%u", tmpl->cfg.board, i);
	b->listen_addr = b->listen_buf;
	b->cfg.board = b->board_buf;
	b->lazy_workers = true;
	return 0;
}

/* The board's identity file: --identity-file, or DIR/<board>.identity with --state-dir. */
static int board_identity(struct posix_port *p, const char *state_dir)
{
	if (state_dir) {
		if (mkdir(state_dir, 0700) && errno != EEXIST) {
			fprintf(stderr, "wasmbed-agent-sim: cannot create --state-dir %s: %s\n",
				state_dir, strerror(errno));
			return -1;
		}
		if (snprintf(p->identity_buf, sizeof(p->identity_buf), "%s/%s.identity", state_dir,
			     p->cfg.board) >= (int)sizeof(p->identity_buf))
			return -1;
		p->identity_file = p->identity_buf;
	}
	if (!p->identity_file)
		return 0;
	if (posix_identity_load(p->identity_file, p->identity_seed))
		return -1;
	p->cfg.identity_seed = p->identity_seed;
	return 0;
}

static int board_start(struct posix_port *p, void *pool, uint32_t pool_size)
{
	int rc;

	p->out_fd = -1;
	p->cfg.pool = pool; /* one WAMR runtime per process: the first board's init uses it */
	p->cfg.pool_size = pool_size;
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->rx_lock, NULL);
	pthread_mutex_init(&p->out_lock, NULL);
	pthread_mutex_init(&p->wake_lock, NULL);
	pthread_cond_init(&p->wake_cond, NULL);
	rc = agent_init(&p->agent, &p->cfg, &posix_ops, p);
	memset(p->identity_seed, 0, sizeof(p->identity_seed)); /* the agent holds the key now */
	p->cfg.identity_seed = NULL;
	if (rc) {
		fprintf(stderr, "wasmbed-agent-sim: WAMR init failed (pool %lu bytes)\n",
			(unsigned long)pool_size);
		return -1;
	}
	fprintf(stderr, "[%s] identity=%s\n", p->cfg.board, p->agent.ident.info);
	if (posix_sig_restore(p) || posix_workers_start(p) || posix_link_start(p)) {
		agent_deinit(&p->agent);
		return -1;
	}
	return 0;
}

static void *cmd_thread_main(void *arg)
{
	command_loop(arg);
	return NULL;
}

/* --boards N > 1: every board gets a command thread; main waits for SIGINT/SIGTERM. */
static int run_boards(struct posix_port *boards, unsigned n)
{
	pthread_attr_t attr;
	unsigned started = 0;
	int rc = 0;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, CMD_STACK);
	for (; started < n; started++)
		if (pthread_create(&boards[started].cmd_thread, &attr, cmd_thread_main,
				   &boards[started]) != 0) {
			fprintf(stderr, "wasmbed-agent-sim: cannot start board %u's thread\n", started);
			exit_requested = 1;
			rc = 1;
			break;
		}
	pthread_attr_destroy(&attr);
	fprintf(stderr, "[%s] %u boards up\n", boards[0].cfg.board, started);
	while (!exit_requested) {
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 100000000L };
		nanosleep(&ts, NULL);
	}
	for (unsigned i = 0; i < started; i++) {
		posix_wake(&boards[i]);
		pthread_join(boards[i].cmd_thread, NULL);
	}
	return rc;
}

int wasmbed_agent_sim_main(int argc, char **argv)
{
	static struct posix_port tmpl; /* large: keep it off the main stack */
	struct sim_opts o = { .boards = 1 };
	struct posix_port *boards;
	struct sigaction sa;
	uint32_t pool_size;
	void *pool;
	unsigned up = 0;
	int rc = 0;

	memset(&tmpl, 0, sizeof(tmpl));
	tmpl.out_fd = -1;
	tmpl.cfg.board = "sim";
	tmpl.cfg.rtos = "posix";
	tmpl.cfg.fw_version = "2.0.0";
	tmpl.cfg.fw_build = "wasmbed-agent-sim";
	tmpl.cfg.aot_arch = "x86_64";
	tmpl.cfg.aot_cpu = "generic";
	tmpl.cfg.aot_abi = "gnu";
	tmpl.cfg.stop_mode = "forced";
	tmpl.cfg.pool_size = DEFAULT_POOL;
	if (parse_args(&tmpl, &o, argc, argv)) {
		usage(stderr);
		return 2;
	}
	tmpl.cfg.baud = tmpl.baud; /* INFO baud= only when --baud paces the link */
	tmpl.boot_baud = tmpl.baud;
	if (tmpl.baud) {
		/* BAUD only where there is a line speed to switch */
		tmpl.cfg.baud_rates = posix_baud_rates;
		tmpl.cfg.baud_rate_count = posix_baud_rate_count;
	}
	pool_size = tmpl.cfg.pool_size;
	if (o.boards > 1 && !o.pool_set)
		pool_size = o.boards * 1024u * 1024u > DEFAULT_POOL ? o.boards * 1024u * 1024u
								    : DEFAULT_POOL;
	if (posix_memalign(&pool, 8, pool_size)) {
		fprintf(stderr, "wasmbed-agent-sim: cannot allocate a %lu byte pool\n",
			(unsigned long)pool_size);
		return 1;
	}
	posix_mem_use_pool(pool, pool_size);
	boards = calloc(o.boards, sizeof(*boards));
	if (!boards) {
		fprintf(stderr, "wasmbed-agent-sim: cannot allocate %u boards\n", o.boards);
		free(pool);
		return 1;
	}
	for (unsigned i = 0; i < o.boards; i++) {
		boards[i] = tmpl;
		if ((o.boards > 1 && board_setup(&boards[i], &tmpl, i)) ||
		    board_identity(&boards[i], o.state_dir)) {
			free(boards);
			free(pool);
			return 2;
		}
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_exit_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (; up < o.boards; up++)
		if (board_start(&boards[up], pool, pool_size)) {
			rc = 1;
			break;
		}
	if (!rc)
		fprintf(stderr, "[%s] agent up: %u slots, pool %lu bytes, baud %u%s\n",
			boards[0].cfg.board, boards[0].agent.cfg.slots, (unsigned long)pool_size,
			tmpl.baud, tmpl.reply_bytewise ? ", bytewise replies" : "");
	if (!rc && o.boards == 1)
		command_loop(&boards[0]);
	else if (!rc)
		rc = run_boards(boards, o.boards);
	fprintf(stderr, "[%s] exiting\n", boards[0].cfg.board);
	for (unsigned i = up; i-- > 0;)
		agent_deinit(&boards[i].agent);
	fflush(stdout);
	/* detached reader threads may still touch the boards and the pool: leave them mapped */
	return rc;
}
