/* WAMR adapter of the agent core: the only code that talks to WAMR. */
#ifndef WASMBED_AGENT_WASM_H
#define WASMBED_AGENT_WASM_H

#include "agent_priv.h"

/** Failure classes of agent_wasm_load(), matching LOAD_ERR codes. */
enum agent_wasm_err {
	AGENT_WASM_OK = 0,
	AGENT_WASM_LOAD_FAIL,
	AGENT_WASM_INSTANTIATE_FAIL,
	AGENT_WASM_NO_EXEC_ENV,
};

/** Outcome of agent_wasm_call(). */
enum agent_wasm_call {
	AGENT_CALL_OK = 0,
	AGENT_CALL_EXCEPTION,
	AGENT_CALL_NO_FUNC,
};

/** Initialise WAMR with a pool on a->cfg.pool and register the natives. 0 or -errno. */
int agent_wasm_init(struct agent *a);
/** Tear WAMR down (this agent's share of it). */
void agent_wasm_deinit(struct agent *a);
/** Allocate from the WAMR pool (module buffers). */
void *agent_wasm_malloc(uint32_t size);
/** Free a buffer from agent_wasm_malloc(). */
void agent_wasm_free(void *p);
/** Pool statistics in bytes. */
void agent_wasm_pool_info(uint32_t *total, uint32_t *free_bytes, uint32_t *highmark);
/** Load s->buf (s->size bytes) into s->module and check its imports (no module code runs). */
enum agent_wasm_err agent_wasm_load(struct agent_slot *s, char *err, size_t err_len);
/**
 * Instantiate s->module (runs its start function: job context) and create the exec env; the
 * caller stores *inst and *env in the slot under the core lock.
 */
enum agent_wasm_err agent_wasm_instantiate(struct agent_slot *s, void **inst, void **env,
					   char *err, size_t err_len);
/** Destroy the exec env and instance of a slot (the module stays). */
void agent_wasm_deinstantiate(struct agent_slot *s);
/** Ask WAMR to stop the start function running in instance `inst` (from any thread). */
void agent_wasm_terminate_inst(void *inst);
/** Destroy exec env, instance and module (the buffer stays with the caller). */
void agent_wasm_unload(struct agent_slot *s);
/** Whether the instance exports a function `name`. */
bool agent_wasm_has_func(struct agent_slot *s, const char *name);
/** Ask WAMR to stop the running call of this slot (from any thread). */
void agent_wasm_terminate(struct agent_slot *s);
/**
 * Call s->func with s->argv. On AGENT_CALL_OK *has_ret tells whether *ret holds an i32 result;
 * on AGENT_CALL_EXCEPTION `exc` holds WAMR's exception text.
 */
enum agent_wasm_call agent_wasm_call(struct agent_slot *s, uint32_t *ret, bool *has_ret,
				     char *exc, size_t exc_len);
/** "name:sig,name:sig,..." of the registered natives (INFO natives=). */
const char *agent_wasm_natives(void);

/* Services the natives need from the core (agent_job.c). */
/** Sleep `ms` in slices, returning early once STOP was asked for the slot. */
void agent_job_sleep(struct agent_slot *s, uint32_t ms);
/** Drive the LED and count the change. */
void agent_led(struct agent *a, int on);
/** Toggle the LED and count it. */
void agent_led_toggle(struct agent *a);

#endif
