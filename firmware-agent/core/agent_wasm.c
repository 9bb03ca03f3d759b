/* WAMR adapter: runtime init with a pool, load/instantiate/call/terminate, and the natives. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "wasm_export.h"

#include "agent_wasm.h"

#define LOG_MAX 200
#define PRINT_MAX 200
#define OUT_PER_SEC 20 /* module output lines per slot and second; more are dropped, counted */

/* The slot of a native's caller; NULL (and the call traps) if the instance has none yet. */
static struct agent_slot *native_slot(wasm_exec_env_t env)
{
	wasm_module_inst_t inst = wasm_runtime_get_module_inst(env);
	struct agent_slot *s = wasm_runtime_get_custom_data(inst);

	if (!s)
		wasm_runtime_set_exception(inst, "native called before the module was bound to a slot");
	return s;
}

static void n_gpio_toggle(wasm_exec_env_t env)
{
	struct agent_slot *s = native_slot(env);

	if (!s)
		return;
	agent_led_toggle(s->agent);
	agent_job_sleep(s, 1000);
}

static void n_led_toggle(wasm_exec_env_t env, int32_t ms)
{
	struct agent_slot *s = native_slot(env);

	if (!s)
		return;
	agent_led(s->agent, 1);
	agent_job_sleep(s, ms > 0 ? (uint32_t)ms : 0);
	agent_led(s->agent, 0);
}

static int32_t n_should_stop(wasm_exec_env_t env)
{
	struct agent_slot *s = native_slot(env);

	return s && s->stop_requested ? 1 : 0;
}

static void n_delay_ms(wasm_exec_env_t env, int32_t ms)
{
	struct agent_slot *s = native_slot(env);

	if (s)
		agent_job_sleep(s, ms > 0 ? (uint32_t)ms : 0);
}

/*
 * Every byte a module emits goes out here, framed as one protocol line tied to its module:
 * LOG module_id=<id> msg="<escaped>"[ truncated=1][ dropped=<n>]
 * so no output can ever read as a reply (docs/PROTOCOL.md "Module output"). At most
 * OUT_PER_SEC lines per slot and second; the next line sent says how many were dropped.
 */
static void module_out(struct agent_slot *s, const char *p, size_t n, bool cut)
{
	struct agent *a = s->agent;
	char esc[LOG_MAX * 4 + 1];
	uint32_t now;

	agent_escape(esc, sizeof(esc), p, n);
	agent_lock(a);
	now = agent_now(a);
	if (s->out_count == 0 || agent_time_diff(now, s->out_window + 1000) >= 0) {
		s->out_window = now;
		s->out_count = 0;
	}
	if (s->out_count >= OUT_PER_SEC) {
		s->out_dropped++;
	} else {
		s->out_count++;
		if (s->out_dropped)
			agent_sendf(a, "LOG module_id=%s msg=\"%s\"%s dropped=%lu", s->id, esc,
				    cut ? " truncated=1" : "", (unsigned long)s->out_dropped);
		else
			agent_sendf(a, "LOG module_id=%s msg=\"%s\"%s", s->id, esc,
				    cut ? " truncated=1" : "");
		s->out_dropped = 0;
	}
	agent_unlock(a);
}

/* Prints the NUL-terminated string at `off` as module output (see module_out). */
static void n_uart_print(wasm_exec_env_t env, int32_t off)
{
	wasm_module_inst_t inst = wasm_runtime_get_module_inst(env);
	struct agent_slot *s = native_slot(env);
	const char *str;
	size_t n;

	if (!s)
		return;
	if (!wasm_runtime_validate_app_str_addr(inst, (uint64_t)(uint32_t)off))
		return; /* WAMR has set "out of bounds memory access": the call traps */
	str = wasm_runtime_addr_app_to_native(inst, (uint64_t)(uint32_t)off);
	for (n = 0; n < PRINT_MAX && str[n]; n++)
		;
	module_out(s, str, n, str[n] != '\0');
	agent_job_sleep(s, 1000);
}

/* log(ptr, len): `len` bytes at `ptr` as module output (see module_out). */
static void n_log(wasm_exec_env_t env, int32_t off, int32_t len)
{
	wasm_module_inst_t inst = wasm_runtime_get_module_inst(env);
	struct agent_slot *s = native_slot(env);
	uint32_t n;
	const char *p;

	if (!s)
		return;
	if (len < 0) {
		wasm_runtime_set_exception(inst, "log: negative length");
		return;
	}
	if (!wasm_runtime_validate_app_addr(inst, (uint64_t)(uint32_t)off, (uint64_t)len))
		return; /* WAMR has set "out of bounds memory access": the call traps */
	p = wasm_runtime_addr_app_to_native(inst, (uint64_t)(uint32_t)off);
	n = (uint32_t)len > LOG_MAX ? LOG_MAX : (uint32_t)len;
	module_out(s, p, n, (uint32_t)len > LOG_MAX);
}

/* All natives of module "env" (WAMR sorts this array in place at registration). */
static NativeSymbol natives[] = {
	{ "gpio_toggle", (void *)n_gpio_toggle, "()", NULL },
	{ "led_toggle", (void *)n_led_toggle, "(i)", NULL },
	{ "uart_print", (void *)n_uart_print, "(i)", NULL },
	{ "should_stop", (void *)n_should_stop, "()i", NULL },
	{ "delay_ms", (void *)n_delay_ms, "(i)", NULL },
	{ "log", (void *)n_log, "(ii)", NULL },
};

static const char natives_desc[] =
	"gpio_toggle:(),led_toggle:(i),uart_print:(i),should_stop:()i,delay_ms:(i),log:(ii)";

const char *agent_wasm_natives(void) { return natives_desc; }

/*
 * WAMR's start hook (firmware-agent/wamr/patches/0001-start-hook.patch): tells which instance
 * runs module code during an instantiation, so that the core can terminate a start function
 * that does not end. Weak: a WAMR without the patch links, and only the forced stop bounds it.
 */
extern void (*wasm_runtime_start_hook)(void *module, void *module_inst, bool running)
	__attribute__((weak));

/* Agents sharing the process's one WAMR runtime (several boards of the simulator). */
static struct agent *wasm_agents;

static void start_hook(void *module, void *module_inst, bool running)
{
	for (struct agent *a = wasm_agents; a; a = a->next_agent) {
		for (unsigned i = 0; i < a->cfg.slots; i++) {
			struct agent_slot *s = &a->slots[i];

			if (s->module != module || s->state != SLOT_STARTING)
				continue;
			agent_lock(a);
			s->start_inst = running ? module_inst : NULL;
			if (running) /* natives of the start function find their slot */
				wasm_runtime_set_custom_data(module_inst, s);
			if (running && s->start_terminated)
				wasm_runtime_terminate(module_inst);
			agent_unlock(a);
			return;
		}
	}
}

int agent_wasm_init(struct agent *a)
{
	RuntimeInitArgs args;

	memset(&args, 0, sizeof(args));
	args.mem_alloc_type = Alloc_With_Pool;
	args.mem_alloc_option.pool.heap_buf = a->cfg.pool;
	args.mem_alloc_option.pool.heap_size = a->cfg.pool_size;
	args.native_module_name = "env";
	args.native_symbols = natives;
	args.n_native_symbols = sizeof(natives) / sizeof(natives[0]);
	if (!wasm_runtime_full_init(&args))
		return -ENOMEM;
	if (&wasm_runtime_start_hook)
		wasm_runtime_start_hook = start_hook;
	a->next_agent = wasm_agents;
	wasm_agents = a;
	return 0;
}

void agent_wasm_deinit(struct agent *a)
{
	for (struct agent **p = &wasm_agents; *p; p = &(*p)->next_agent) {
		if (*p == a) {
			*p = a->next_agent;
			break;
		}
	}
	wasm_runtime_destroy();
}

void *agent_wasm_malloc(uint32_t size) { return wasm_runtime_malloc(size); }

void agent_wasm_free(void *p)
{
	if (p)
		wasm_runtime_free(p);
}

void agent_wasm_pool_info(uint32_t *total, uint32_t *free_bytes, uint32_t *highmark)
{
	mem_alloc_info_t info;

	memset(&info, 0, sizeof(info));
	wasm_runtime_get_mem_alloc_info(&info);
	*total = info.total_size;
	*free_bytes = info.total_free_size;
	*highmark = info.highmark_size;
}

/* WAMR only warns about an unresolved import and traps when it is called: fail at LOAD. */
static bool imports_resolved(wasm_module_t m, char *err, size_t err_len)
{
	int32_t count = wasm_runtime_get_import_count(m);

	for (int32_t i = 0; i < count; i++) {
		wasm_import_t imp;

		memset(&imp, 0, sizeof(imp));
		wasm_runtime_get_import_type(m, i, &imp);
		if (!imp.linked) {
			snprintf(err, err_len, "unresolved import %s.%s",
				 imp.module_name ? imp.module_name : "?", imp.name ? imp.name : "?");
			return false;
		}
	}
	return true;
}

enum agent_wasm_err agent_wasm_instantiate(struct agent_slot *s, void **inst_out, void **env_out,
					   char *err, size_t err_len)
{
	const struct agent_config *cfg = &s->agent->cfg;
	wasm_module_inst_t inst;
	wasm_exec_env_t env;

	err[0] = '\0';
	inst = wasm_runtime_instantiate(s->module, cfg->wasm_stack, cfg->wasm_heap, err,
					(uint32_t)err_len);
	if (!inst)
		return AGENT_WASM_INSTANTIATE_FAIL;
	wasm_runtime_set_custom_data(inst, s);
	env = wasm_runtime_create_exec_env(inst, cfg->wasm_stack);
	if (!env) {
		wasm_runtime_deinstantiate(inst);
		snprintf(err, err_len, "create_exec_env failed");
		return AGENT_WASM_NO_EXEC_ENV;
	}
	*inst_out = inst;
	*env_out = env;
	return AGENT_WASM_OK;
}

void agent_wasm_terminate_inst(void *inst)
{
	if (inst)
		wasm_runtime_terminate(inst);
}

/*
 * WAMR patch 0002 (firmware-agent/wamr/patches/0002-cur-exec-env.patch): the exec env an
 * instance's code runs on. Weak: without the patch only the instance is freed.
 */
extern void *wasm_runtime_cur_exec_env(wasm_module_inst_t inst) __attribute__((weak));

void agent_wasm_free_abandoned(void *inst)
{
	void *env;

	if (!inst)
		return;
	/* the start function's own exec env (its wasm stack), created inside WAMR */
	env = wasm_runtime_cur_exec_env ? wasm_runtime_cur_exec_env(inst) : NULL;
	if (env)
		wasm_runtime_destroy_exec_env(env);
	wasm_runtime_deinstantiate(inst); /* its linear memory: most of a small pool */
}

void agent_wasm_deinstantiate(struct agent_slot *s)
{
	if (s->exec_env)
		wasm_runtime_destroy_exec_env(s->exec_env);
	if (s->inst)
		wasm_runtime_deinstantiate(s->inst);
	s->exec_env = NULL;
	s->inst = NULL;
}

enum agent_wasm_err agent_wasm_load(struct agent_slot *s, char *err, size_t err_len)
{
	wasm_module_t m;

	err[0] = '\0';
	m = wasm_runtime_load(s->buf, s->size, err, (uint32_t)err_len);
	if (!m)
		return AGENT_WASM_LOAD_FAIL;
	/* the loader wrote machine code through the data side: sync it before it can run */
	if (wasm_runtime_get_module_package_type(m) == Wasm_Module_AoT && s->agent->ops->code_sync)
		s->agent->ops->code_sync(s->agent->ctx);
	if (!imports_resolved(m, err, err_len)) {
		wasm_runtime_unload(m);
		return AGENT_WASM_LOAD_FAIL;
	}
	s->module = m;
	return AGENT_WASM_OK;
}

void agent_wasm_unload(struct agent_slot *s)
{
	agent_wasm_deinstantiate(s);
	if (s->module)
		wasm_runtime_unload(s->module);
	s->module = NULL;
}

bool agent_wasm_has_func(struct agent_slot *s, const char *name)
{
	return s->inst && wasm_runtime_lookup_function(s->inst, name) != NULL;
}

void agent_wasm_terminate(struct agent_slot *s)
{
	if (s->inst)
		wasm_runtime_terminate(s->inst);
}

enum agent_wasm_call agent_wasm_call(struct agent_slot *s, uint32_t *ret, bool *has_ret,
				     char *exc, size_t exc_len)
{
	uint32_t cells[16];
	wasm_function_inst_t fn;
	const char *e;

	*has_ret = false;
	fn = wasm_runtime_lookup_function(s->inst, s->func);
	if (!fn)
		return AGENT_CALL_NO_FUNC;
	memset(cells, 0, sizeof(cells));
	memcpy(cells, s->argv, sizeof(uint32_t) * s->argc);
	if (wasm_func_get_result_count(fn, s->inst) > 8 ||
	    wasm_func_get_param_count(fn, s->inst) > 8) {
		snprintf(exc, exc_len, "Exception: too many parameters or results");
		return AGENT_CALL_EXCEPTION;
	}
	wasm_runtime_clear_exception(s->inst);
	if (wasm_runtime_call_wasm(s->exec_env, fn, s->argc, cells)) {
		*has_ret = wasm_func_get_result_count(fn, s->inst) > 0;
		*ret = cells[0];
		return AGENT_CALL_OK;
	}
	e = wasm_runtime_get_exception(s->inst);
	snprintf(exc, exc_len, "%s", e ? e : "<none>");
	wasm_runtime_clear_exception(s->inst);
	return AGENT_CALL_EXCEPTION;
}
