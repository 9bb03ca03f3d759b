/*
 * Signed modules on the simulated board: --trusted-key / --trusted-keys / --signatures (the keys
 * a module may be signed by) and --floor-file (the minimum version per module id, kept across
 * restarts). docs/SECURITY.md "Signed modules".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "posix_port.h"

static int add_key(struct posix_port *p, const char *hex, size_t len, const char *where)
{
	uint8_t *k;

	if (p->cfg.trusted_keys_n >= AGENT_TRUSTED_KEYS_MAX) {
		fprintf(stderr, "wasmbed-agent-sim: at most %d trusted keys (%s)\n",
			AGENT_TRUSTED_KEYS_MAX, where);
		return -1;
	}
	k = p->trusted_keys[p->cfg.trusted_keys_n];
	if (!agent_hex_decode(k, hex, len, 32)) {
		fprintf(stderr,
			"wasmbed-agent-sim: a trusted key is 64 hex digits (an Ed25519 public "
			"key, `wasmbed-host keys show`), got '%.*s' (%s)\n",
			(int)len, hex, where);
		return -1;
	}
	p->cfg.trusted_keys_n++;
	return 0;
}

/* One key per line; blank lines and lines starting with '#' are skipped. */
static int add_key_file(struct posix_port *p, const char *path)
{
	char line[256];
	FILE *f = fopen(path, "r");
	int rc = 0;

	if (!f) {
		fprintf(stderr, "wasmbed-agent-sim: cannot read --trusted-keys %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	while (!rc && fgets(line, sizeof(line), f)) {
		size_t n = strcspn(line, "\r\n");
		char *s = line;

		line[n] = '\0';
		while (*s == ' ' || *s == '\t')
			s++;
		n = strcspn(s, " \t");
		if (*s && *s != '#')
			rc = add_key(p, s, n, path);
	}
	fclose(f);
	return rc;
}

int posix_sig_option(struct posix_port *p, const char *flag, const char *v)
{
	if (!strcmp(flag, "--trusted-key"))
		return add_key(p, v, strlen(v), "--trusted-key") ? -1 : 1;
	if (!strcmp(flag, "--trusted-keys"))
		return add_key_file(p, v) ? -1 : 1;
	if (!strcmp(flag, "--floor-file")) {
		p->floor_file = v;
		return 1;
	}
	if (!strcmp(flag, "--signatures")) {
		if (!strcmp(v, "required"))
			p->cfg.sig_mode = AGENT_SIG_REQUIRED;
		else if (!strcmp(v, "optional"))
			p->cfg.sig_mode = AGENT_SIG_OPTIONAL;
		else if (!strcmp(v, "off"))
			p->cfg.sig_mode = AGENT_SIG_OFF;
		else {
			fprintf(stderr, "wasmbed-agent-sim: --signatures wants required, optional or "
					"off, got '%s'\n",
				v);
			return -1;
		}
		p->sig_mode_set = true;
		return 1;
	}
	return 0;
}

int posix_sig_finish_args(struct posix_port *p, unsigned boards)
{
	p->cfg.trusted_keys = (const uint8_t (*)[32])p->trusted_keys;
	if (!p->sig_mode_set && p->cfg.trusted_keys_n)
		p->cfg.sig_mode = AGENT_SIG_REQUIRED; /* keys given: they are meant to be used */
	if (p->cfg.sig_mode != AGENT_SIG_OFF && !p->cfg.trusted_keys_n) {
		fprintf(stderr, "wasmbed-agent-sim: --signatures %s needs --trusted-key HEX or "
				"--trusted-keys FILE\n",
			p->cfg.sig_mode == AGENT_SIG_REQUIRED ? "required" : "optional");
		return -1;
	}
	if (p->floor_file && boards > 1) {
		fprintf(stderr, "wasmbed-agent-sim: --floor-file takes one board (not --boards N)\n");
		return -1;
	}
	return 0;
}

/* Lines `<module_id> <ver>`. A missing file is an empty table; a damaged one is an error. */
int posix_sig_restore(struct posix_port *p)
{
	char line[128], id[AGENT_ID_MAX + 2];
	unsigned long ver;
	unsigned no = 0;
	FILE *f;

	if (!p->floor_file)
		return 0;
	if (!(f = fopen(p->floor_file, "r"))) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "wasmbed-agent-sim: cannot read --floor-file %s: %s\n", p->floor_file,
			strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		no++;
		if (sscanf(line, "%32s %lu", id, &ver) != 2 || ver > UINT32_MAX ||
		    agent_sig_floor_restore(&p->agent, id, (uint32_t)ver) != 0) {
			fprintf(stderr,
				"wasmbed-agent-sim: %s:%u: want '<module_id> <version>' (at most %d "
				"ids); fix or delete the file\n",
				p->floor_file, no, AGENT_FLOORS_MAX);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

/* Port op floor_saved: rewrite the whole table (temporary file, then rename). */
void posix_sig_floor_saved(void *ctx, const char *id, uint32_t ver)
{
	struct posix_port *p = ctx;
	char tmp[4096];
	FILE *f;

	(void)id;
	(void)ver;
	if (!p->floor_file)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", p->floor_file);
	if (!(f = fopen(tmp, "w"))) {
		fprintf(stderr, "[%s] cannot write %s: %s (minimum versions stay in RAM)\n",
			p->cfg.board, tmp, strerror(errno));
		return;
	}
	for (unsigned i = 0; i < AGENT_FLOORS_MAX; i++)
		if (p->agent.floors[i].id[0])
			fprintf(f, "%s %lu\n", p->agent.floors[i].id,
				(unsigned long)p->agent.floors[i].ver);
	if (fclose(f) != 0 || rename(tmp, p->floor_file) != 0)
		fprintf(stderr, "[%s] cannot replace %s: %s (minimum versions stay in RAM)\n",
			p->cfg.board, p->floor_file, strerror(errno));
}
