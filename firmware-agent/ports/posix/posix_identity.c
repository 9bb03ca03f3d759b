/*
 * The simulated board's identity key (docs/PROTOCOL.md "Device identity (IDENT)"): a 32-byte
 * Ed25519 seed kept as 64 hex digits in a private file. Created from the kernel's random
 * generator on first start, read back on every later start, so the board keeps its identity
 * across restarts; another file is another board.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "posix_port.h"

/* Reads an existing identity file: 64 hex digits, optionally followed by a newline; mode 0600. */
static int read_seed(const char *path, int fd, uint8_t seed[32])
{
	char text[80];
	struct stat st;
	ssize_t n;
	size_t len;

	if (fstat(fd, &st) == 0 && (st.st_mode & 077)) {
		fprintf(stderr,
			"wasmbed-agent-sim: identity file %s has mode %03o: others may read the board's "
			"secret key; make it private with `chmod 600 %s`\n",
			path, (unsigned)(st.st_mode & 0777), path);
		return -1;
	}
	n = read(fd, text, sizeof(text) - 1);
	if (n < 0) {
		fprintf(stderr, "wasmbed-agent-sim: cannot read identity file %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	len = (size_t)n;
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	if (!agent_hex_decode(seed, text, len, 32))
		goto bad;
	memset(text, 0, sizeof(text));
	return 0;
bad:
	memset(text, 0, sizeof(text));
	fprintf(stderr,
		"wasmbed-agent-sim: identity file %s is not 64 hex digits (an Ed25519 seed); move it "
		"away to create a new identity (the gateway will then see another board)\n",
		path);
	return -1;
}

/* Creates the file with a fresh seed; never replaces an existing one (link(2) is atomic). */
static int create_seed(const char *path, uint8_t seed[32], bool *raced)
{
	static const char digits[] = "0123456789abcdef";
	char tmp[4200], text[65];
	int fd, rc = -1;

	*raced = false;
	if (getrandom(seed, 32, 0) != 32) {
		fprintf(stderr, "wasmbed-agent-sim: no random bytes for a new identity: %s\n",
			strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < 32; i++) {
		text[2 * i] = digits[seed[i] >> 4];
		text[2 * i + 1] = digits[seed[i] & 15];
	}
	text[64] = '\n';
	if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "wasmbed-agent-sim: cannot create identity file %s: %s\n", tmp,
			strerror(errno));
		return -1;
	}
	if (write(fd, text, sizeof(text)) == (ssize_t)sizeof(text) && fsync(fd) == 0) {
		if (link(tmp, path) == 0)
			rc = 0;
		else if (errno == EEXIST)
			*raced = true; /* another process created it first: use theirs */
		else
			fprintf(stderr, "wasmbed-agent-sim: cannot create identity file %s: %s\n",
				path, strerror(errno));
	}
	close(fd);
	unlink(tmp);
	memset(text, 0, sizeof(text));
	return rc;
}

int posix_identity_load(const char *path, uint8_t seed[32])
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		bool raced;

		if (fd >= 0) {
			int rc = read_seed(path, fd, seed);
			close(fd);
			if (!rc)
				fprintf(stderr, "wasmbed-agent-sim: identity from %s\n", path);
			return rc;
		}
		if (errno != ENOENT) {
			fprintf(stderr, "wasmbed-agent-sim: cannot open identity file %s: %s\n", path,
				strerror(errno));
			return -1;
		}
		if (create_seed(path, seed, &raced) == 0) {
			fprintf(stderr, "wasmbed-agent-sim: new identity in %s\n", path);
			return 0;
		}
		if (!raced)
			return -1;
	}
	return -1;
}
