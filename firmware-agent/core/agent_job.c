/* Slots and jobs: START, STOP, the job runner, forced stop and the natives' services. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent_wasm.h"

#define SLEEP_SLICE_MS 20
/* while a terminated start function has not ended, terminate is asked again this often */
#define START_RETERMINATE_MS 100

struct agent_slot *agent_slot_find(struct agent *a, const char *id)
{
	for (unsigned i = 0; i < a->cfg.slots; i++) {
		struct agent_slot *s = &a->slots[i];
		if (s->state != SLOT_FREE && strcmp(s->id, id) == 0)
			return s;
	}
	return NULL;
}

struct agent_slot *agent_slot_free_one(struct agent *a)
{
	for (unsigned i = 0; i < a->cfg.slots; i++)
		if (a->slots[i].state == SLOT_FREE)
			return &a->slots[i];
	/* no free slot: a parked partial upload gives way rather than wedging the board */
	for (unsigned i = 0; i < a->cfg.slots; i++) {
		struct agent_slot *s = &a->slots[i];
		if (s->state == SLOT_PARTIAL && !(a->up.state != UP_NONE && a->up.slot == i)) {
			agent_logf(a, "slot %u: dropping parked upload of %s", i, s->id);
			agent_slot_unload(s);
			return s;
		}
	}
	return NULL;
}

void agent_slot_unload(struct agent_slot *s)
{
	agent_wasm_unload(s);
	agent_wasm_free(s->buf);
	s->buf = NULL;
	s->size = 0;
	s->crc = 0;
	s->acked = 0;
	s->id[0] = '\0';
	s->func[0] = '\0';
	s->stop_pending = false;
	s->stop_requested = 0;
	s->start_inst = NULL;
	s->start_terminated = false;
	s->warn_victim = false;
	s->state = SLOT_FREE;
}

int agent_slot_kill(struct agent_slot *s)
{
	struct agent *a = s->agent;
	int rc;

	if (s->state != SLOT_RUNNING && s->state != SLOT_STARTING)
		return 0;
	s->killing = true;
	s->stop_requested = 1;
	if (s->state == SLOT_STARTING)
		agent_wasm_terminate_inst(s->start_inst);
	else if (!a->cfg.test_no_terminate)
		agent_wasm_terminate(s);
	agent_unlock(a);
	rc = a->ops->job_abort ? a->ops->job_abort(a->ctx, s->index) : -ENOTSUP;
	agent_lock(a);
	if (rc == AGENT_ABORT_DEFERRED)
		return rc;
	if (rc < 0) {
		/* the job may still run on this instance: leave everything in place */
		s->killing = false;
		agent_logf(a, "slot %u: job_abort failed (%d)", s->index, rc);
		return rc;
	}
	s->killing = false;
	if (s->state == SLOT_RUNNING)
		s->state = SLOT_LOADED;
	s->stop_pending = false;
	s->stop_requested = 0;
	return 0;
}

void agent_slot_start(struct agent_slot *s, int kind)
{
	struct agent *a = s->agent;

	s->start_kind = kind;
	s->start_inst = NULL;
	s->start_terminated = false;
	s->start_deadline = agent_now(a) + a->cfg.start_timeout_ms;
	s->stop_requested = 0;
	if (kind == START_LOAD)
		s->func[0] = '\0';
	s->job_gen++;
	s->state = SLOT_STARTING;
	if (a->ops->stack_reset)
		a->ops->stack_reset(a->ctx, s->index);
	a->ops->job_start(a->ctx, s->index);
}

/*
 * The instantiation of a slot ended (lock held): a LOAD answers; a failed one frees the slot,
 * its module and its pool memory. `code` NULL means success.
 */
static void start_done(struct agent_slot *s, const char *code, const char *err)
{
	struct agent *a = s->agent;
	char esc[400];

	s->start_inst = NULL;
	s->stop_requested = 0;
	if (s->start_kind == START_RELOAD) /* the job it replaces was forced */
		agent_sendf(a, "RESULT status=STOPPED forced=1 module_id=%s func=%s", s->id,
			    s->func[0] ? s->func : "<unknown>");
	if (s->start_kind == START_FAULTED) { /* the job it replaces took a CPU fault */
		agent_escape(esc, sizeof(esc), s->fault, strlen(s->fault));
		agent_sendf(a, "RESULT status=EXCEPTION module_id=%s func=%s msg=\"cpu fault: %s\"",
			    s->id, s->func[0] ? s->func : "<unknown>", esc);
	}
	if (!code) {
		s->state = SLOT_LOADED;
		if (s->start_kind != START_LOAD)
			return;
		agent_logf(a, "slot %u: loaded %s (%lu bytes)", s->index, s->id,
			   (unsigned long)s->size);
		a->reply_tag = s->load_has_seq;
		a->reply_seq = s->load_seq;
		if (s->warn_victim)
			agent_sendf(a, "LOAD_OK warn=VICTIM_IGNORED replace_victim=%s", s->victim);
		else
			agent_sendf(a, "LOAD_OK");
		a->reply_tag = false;
		return;
	}
	agent_logf(a, "slot %u: instantiating %s failed: %s", s->index, s->id, err);
	if (s->start_kind == START_LOAD) {
		agent_escape(esc, sizeof(esc), err, strlen(err));
		a->reply_tag = s->load_has_seq;
		a->reply_seq = s->load_seq;
		agent_sendf(a, "LOAD_ERR code=%s msg=\"%s\"", code, esc);
		a->reply_tag = false;
	}
	s->state = SLOT_FREE; /* agent_slot_unload: nothing runs on it any more */
	agent_slot_unload(s);
}

/* The start function did not end after terminate: abandon it (the forced stop of a job). */
static void start_timeout_forced(struct agent_slot *s)
{
	struct agent *a = s->agent;
	char msg[96];

	snprintf(msg, sizeof(msg), "start function still running after %lu ms: forced",
		 (unsigned long)(a->cfg.start_timeout_ms + a->cfg.stop_grace_ms));
	/* its thread is gone (job_abort, or agent_job_aborted): free the start function's
	 * instance and exec env, or a pool that holds one module has no room for the next LOAD */
	agent_wasm_free_abandoned(s->start_inst);
	s->start_inst = NULL;
	s->inst = NULL;
	s->exec_env = NULL;
	start_done(s, "START_TIMEOUT", msg);
}

/* Instantiation deadlines of one SLOT_STARTING slot; returns ms until its next one. */
static uint32_t start_poll(struct agent_slot *s, uint32_t now)
{
	struct agent *a = s->agent;
	int32_t left = -agent_time_diff(now, s->start_deadline);
	int rc;

	if (s->killing)
		return UINT32_MAX;
	if (left > 0) {
		if (s->start_terminated) {
			agent_wasm_terminate_inst(s->start_inst); /* it may not have begun before */
			return (uint32_t)left < START_RETERMINATE_MS ? (uint32_t)left
								     : START_RETERMINATE_MS;
		}
		return (uint32_t)left;
	}
	if (!s->start_terminated) {
		agent_logf(a, "slot %u (%s): start function over %lu ms, terminating", s->index,
			   s->id, (unsigned long)a->cfg.start_timeout_ms);
		s->start_terminated = true;
		s->stop_requested = 1; /* natives' sleeps end early */
		s->start_deadline = now + a->cfg.stop_grace_ms;
		agent_wasm_terminate_inst(s->start_inst);
		return START_RETERMINATE_MS;
	}
	agent_logf(a, "slot %u (%s): start function still running, forcing", s->index, s->id);
	rc = agent_slot_kill(s);
	if (rc == 0) {
		start_timeout_forced(s);
	} else if (rc < 0) {
		s->start_deadline = agent_now(a) + a->cfg.stop_grace_ms;
		return a->cfg.stop_grace_ms;
	}
	return UINT32_MAX;
}

/* Job context: instantiate the module of a SLOT_STARTING slot and answer. */
static void start_run(struct agent *a, struct agent_slot *s, uint32_t gen)
{
	static const char *const codes[] = {
		[AGENT_WASM_LOAD_FAIL] = "LOAD_FAIL",
		[AGENT_WASM_INSTANTIATE_FAIL] = "INSTANTIATE_FAIL",
		[AGENT_WASM_NO_EXEC_ENV] = "NO_EXEC_ENV",
	};
	void *inst = NULL, *env = NULL;
	char err[128];
	enum agent_wasm_err rc;

	rc = agent_wasm_instantiate(s, &inst, &env, err, sizeof(err));
	agent_lock(a);
	if (s->killing || s->job_gen != gen || s->state != SLOT_STARTING) {
		agent_unlock(a); /* abandoned: whoever did that answered */
		return;
	}
	if (rc == AGENT_WASM_OK) {
		s->inst = inst;
		s->exec_env = env;
		start_done(s, NULL, NULL);
	} else if (s->start_terminated) {
		char msg[200];
		snprintf(msg, sizeof(msg), "start function did not return within %lu ms: %s",
			 (unsigned long)a->cfg.start_timeout_ms, err);
		start_done(s, "START_TIMEOUT", msg);
	} else {
		start_done(s, codes[rc], err);
	}
	agent_unlock(a);
}

/*
 * Ordering invariant (gateways rely on it to route RESULT lines, which carry no request id):
 * a job's RESULT is written before its slot can take the next START. Every path that ends a
 * job (agent_job_run, agent_slot_forced_done after agent_slot_kill or agent_job_aborted, UNLOAD)
 * writes the RESULT and marks the slot idle inside one agent_lock() section, and START runs
 * under the same lock, so a START_OK of the slot's next job always follows the RESULT on the
 * wire. (agent_sendf() writes synchronously through ops->write.) The one exception is a LOAD
 * that clears a running slot (replace=1 or victim): it kills the job without a RESULT.
 */
void agent_slot_forced_done(struct agent_slot *s)
{
	/* the aborted call may have left the instance half-updated: start from a fresh one, in
	 * job context (its start function runs again, bounded like any module code); the forced
	 * RESULT follows once that is done, so a START after it finds the module ready */
	agent_wasm_deinstantiate(s);
	agent_slot_start(s, START_RELOAD);
}

uint32_t agent_jobs_poll(struct agent *a)
{
	uint32_t next = UINT32_MAX;
	uint32_t now = agent_now(a);

	for (unsigned i = 0; i < a->cfg.slots; i++) {
		struct agent_slot *s = &a->slots[i];
		int32_t left;
		int rc;

		if (s->state == SLOT_STARTING) {
			uint32_t n = start_poll(s, now);
			if (n < next)
				next = n;
			continue;
		}
		if (s->state != SLOT_RUNNING || !s->stop_pending || s->killing)
			continue;
		left = -agent_time_diff(now, s->stop_deadline);
		if (left > 0) {
			if ((uint32_t)left < next)
				next = (uint32_t)left;
			continue;
		}
		agent_logf(a, "slot %u (%s): grace period over, forcing stop", i, s->id);
		rc = agent_slot_kill(s);
		if (rc == 0) {
			agent_slot_forced_done(s);
		} else if (rc < 0) {
			s->stop_deadline = agent_now(a) + a->cfg.stop_grace_ms;
			next = a->cfg.stop_grace_ms;
		}
	}
	return next;
}

/* atoi-like: optional sign, digits, stops at the first other char; wraps to 32 bits */
static uint32_t parse_arg(const char *p, const char *end)
{
	uint32_t v = 0;
	bool neg = false;

	if (p < end && (*p == '-' || *p == '+'))
		neg = *p++ == '-';
	while (p < end && *p >= '0' && *p <= '9')
		v = v * 10u + (uint32_t)(*p++ - '0');
	return neg ? 0u - v : v;
}

/* args="k=v,k=v": names ignored, order kept, tokens without '=' skipped, at most 4 */
static unsigned parse_args(const struct agent_param *p, uint32_t *argv)
{
	const char *s = p->val, *end = p->val + p->len;
	unsigned argc = 0;

	while (s < end && argc < AGENT_MAX_ARGS) {
		const char *tok_end = memchr(s, ',', (size_t)(end - s));
		const char *eq;
		if (!tok_end)
			tok_end = end;
		eq = memchr(s, '=', (size_t)(tok_end - s));
		if (eq)
			argv[argc++] = parse_arg(eq + 1, tok_end);
		s = tok_end + 1;
	}
	return argc;
}

void agent_cmd_start(struct agent *a, const char *params)
{
	struct agent_param p_id, p_func, p_args;
	char id[AGENT_ID_MAX + 1], func[AGENT_FUNC_MAX + 1];
	uint32_t argv[AGENT_MAX_ARGS] = { 0 };
	unsigned argc = 0;
	bool has_args;
	struct agent_slot *s;

	if (!agent_param_get(params, "module_id", &p_id) || p_id.len == 0) {
		agent_sendf(a, "RESULT status=BAD_PARAMS msg=\"missing module_id\"");
		return;
	}
	if (!agent_param_copy(&p_id, id, sizeof(id)) || !(s = agent_slot_find(a, id)) ||
	    !s->inst) {
		agent_sendf(a, "RESULT status=NO_MODULE");
		return;
	}
	if (s->state == SLOT_RUNNING) {
		agent_sendf(a, "RESULT status=BUSY");
		return;
	}
	has_args = agent_param_get(params, "args", &p_args) && p_args.len > 0;
	/* only a quoted args value counts (legacy) */
	if (has_args && p_args.val[-1] == '"')
		argc = parse_args(&p_args, argv);
	else
		has_args = false;
	if (agent_param_get(params, "func", &p_func) && p_func.len > 0) {
		if (!agent_param_copy(&p_func, func, sizeof(func))) {
			agent_sendf(a, "RESULT status=BAD_PARAMS msg=\"func too long\"");
			return;
		}
		if (!agent_wasm_has_func(s, func)) {
			agent_sendf(a, "RESULT status=NO_FUNC name=%s", func);
			return;
		}
	} else if (agent_wasm_has_func(s, "app_main")) {
		strcpy(func, "app_main");
	} else {
		agent_sendf(a, "RESULT status=NO_ENTRYPOINT msg=\"%s\"",
			    has_args ? "args require app_main" : "expected app_main");
		return;
	}
	strcpy(s->func, func);
	memcpy(s->argv, argv, sizeof(argv));
	s->argc = argc;
	s->stop_requested = 0;
	s->stop_pending = false;
	s->job_gen++;
	s->state = SLOT_RUNNING;
	agent_sendf(a, "START_OK");
	agent_logf(a, "slot %u (%s): start %s argc=%u", s->index, s->id, func, argc);
	a->ops->job_start(a->ctx, s->index);
}

void agent_cmd_stop(struct agent *a, const char *params)
{
	struct agent_param p;
	char id[AGENT_ID_MAX + 1];
	struct agent_slot *s;

	if (!agent_param_get(params, "module_id", &p) || p.len == 0) {
		agent_sendf(a, "STOP_OK status=NO_JOB");
		return;
	}
	if (!agent_param_copy(&p, id, sizeof(id)) || !(s = agent_slot_find(a, id)) ||
	    s->state != SLOT_RUNNING) {
		agent_sendf(a, "STOP_OK status=IDLE");
		return;
	}
	if (!s->stop_pending) {
		s->stop_requested = 1;
		s->stop_pending = true;
		s->stop_deadline = agent_now(a) + a->cfg.stop_grace_ms;
		if (!a->cfg.test_no_terminate)
			agent_wasm_terminate(s);
		agent_logf(a, "slot %u (%s): stop requested", s->index, s->id);
	}
	agent_sendf(a, "STOP_OK status=PENDING");
}

void agent_job_run(struct agent *a, unsigned slot)
{
	struct agent_slot *s = &a->slots[slot];
	char exc[160], esc[400];
	enum agent_wasm_call rc;
	uint32_t gen, ret = 0;
	bool has_ret = false;

	agent_lock(a);
	if (s->state == SLOT_STARTING && !s->killing) {
		gen = s->job_gen;
		agent_unlock(a);
		start_run(a, s, gen);
		return;
	}
	if (s->state != SLOT_RUNNING || s->killing) {
		agent_unlock(a);
		return;
	}
	gen = s->job_gen;
	agent_unlock(a);

	rc = agent_wasm_call(s, &ret, &has_ret, exc, sizeof(exc));

	agent_lock(a);
	if (s->killing || s->job_gen != gen || s->state != SLOT_RUNNING) {
		agent_unlock(a); /* the job was abandoned: whoever did that reports it */
		return;
	}
	if (rc == AGENT_CALL_NO_FUNC) {
		agent_sendf(a, "RESULT status=NO_FUNC");
	} else if (rc == AGENT_CALL_EXCEPTION) {
		agent_escape(esc, sizeof(esc), exc, strlen(exc));
		agent_sendf(a, "RESULT status=%s module_id=%s func=%s msg=\"%s\"",
			    strstr(exc, "terminated") ? "STOPPED" : "EXCEPTION", s->id, s->func, esc);
	} else if (s->stop_requested) {
		agent_sendf(a, "RESULT status=STOPPED module_id=%s func=%s", s->id, s->func);
	} else if (has_ret) {
		agent_sendf(a, "RESULT status=OK module_id=%s func=%s ret_i32=%lu", s->id, s->func,
			    (unsigned long)ret);
	} else {
		agent_sendf(a, "RESULT status=OK module_id=%s func=%s", s->id, s->func);
	}
	/* only now (RESULT written, lock still held) may a START take the slot again */
	s->state = SLOT_LOADED;
	s->stop_pending = false;
	s->stop_requested = 0;
	agent_unlock(a);
}

void agent_job_aborted(struct agent *a, unsigned slot)
{
	struct agent_slot *s = &a->slots[slot];

	agent_lock(a);
	if (s->killing && s->state == SLOT_STARTING) {
		s->killing = false;
		start_timeout_forced(s);
	} else if (s->killing) {
		s->killing = false;
		s->state = SLOT_LOADED;
		s->stop_pending = false;
		s->stop_requested = 0;
		agent_slot_forced_done(s);
	}
	agent_unlock(a);
}

void agent_job_faulted(struct agent *a, unsigned slot, const char *fault)
{
	struct agent_slot *s = &a->slots[slot];
	char msg[160];

	agent_lock(a);
	snprintf(msg, sizeof(msg), "cpu fault: %s", fault);
	agent_logf(a, "slot %u (%s): %s", slot, s->id, msg);
	if (s->state == SLOT_STARTING) {
		/* the start function faulted: the LOAD fails, the slot and its pool memory are freed */
		agent_wasm_free_abandoned(s->start_inst);
		s->start_inst = NULL;
		s->inst = NULL;
		s->exec_env = NULL;
		s->killing = false;
		start_done(s, "INSTANTIATE_FAIL", msg);
	} else if (s->state == SLOT_RUNNING) {
		s->fault = fault;
		s->killing = false;
		s->state = SLOT_LOADED;
		s->stop_pending = false;
		s->stop_requested = 0;
		/* the faulted call may have left the instance half-updated, as a forced stop does:
		 * a fresh one first, then the RESULT (start_done), so a START after it finds it */
		agent_wasm_deinstantiate(s);
		agent_slot_start(s, START_FAULTED);
	}
	agent_unlock(a);
}

bool agent_job_abort_requested(struct agent *a, unsigned slot)
{
	return a->slots[slot].killing;
}

void agent_job_sleep(struct agent_slot *s, uint32_t ms)
{
	struct agent *a = s->agent;

	while (ms > 0 && !s->stop_requested) {
		uint32_t step = ms < SLEEP_SLICE_MS ? ms : SLEEP_SLICE_MS;
		a->ops->sleep_ms(a->ctx, step);
		ms -= step;
	}
}

void agent_led(struct agent *a, int on)
{
	agent_lock(a);
	if (a->led_on != on) {
		a->led_on = on;
		a->led_toggles++;
		if (a->ops->led_set)
			a->ops->led_set(a->ctx, on);
	}
	agent_unlock(a);
}

void agent_led_toggle(struct agent *a)
{
	agent_lock(a);
	a->led_on = !a->led_on;
	a->led_toggles++;
	if (a->ops->led_set)
		a->ops->led_set(a->ctx, a->led_on);
	agent_unlock(a);
}

uint32_t agent_led_toggles(struct agent *a) { return a->led_toggles; }
