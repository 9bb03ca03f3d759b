/*
 * Device identity: the Ed25519 key pair and the IDENT challenge (docs/PROTOCOL.md "Device
 * identity (IDENT)"). Signing and hashing are Monocypher's (third_party/monocypher), standard
 * RFC 8032 Ed25519 with SHA-512, so the gateway verifies with any Ed25519 library.
 */
#include <string.h>

#include "agent_priv.h"
#include "monocypher-ed25519.h"
#include "monocypher.h"

/* The signed message: this tag with its NUL byte, then the gateway's 32 nonce bytes. */
static const char ident_domain[] = "wasmbed-ident-v1";
#define DOMAIN_LEN sizeof(ident_domain) /* 17: the tag and its NUL */
#define NONCE_LEN 32u

static void to_hex(char *dst, const uint8_t *src, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		dst[2 * i] = digits[src[i] >> 4];
		dst[2 * i + 1] = digits[src[i] & 15];
	}
	dst[2 * n] = '\0';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly 2n hex digits to n bytes. */
static bool from_hex(uint8_t *dst, const char *src, size_t len, size_t n)
{
	if (len != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_digit(src[2 * i]), lo = hex_digit(src[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		dst[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

void agent_ident_init(struct agent *a)
{
	struct agent_identity *id = &a->ident;
	uint8_t seed[32], pub[32], hash[64];

	strcpy(id->info, "none");
	if (!a->cfg.identity_seed)
		return;
	memcpy(seed, a->cfg.identity_seed, sizeof(seed));
	a->cfg.identity_seed = NULL;
	crypto_ed25519_key_pair(id->secret, pub, seed); /* wipes seed; secret ends with pub */
	/* fingerprint: the first 16 bytes of SHA-512(public key) */
	crypto_sha512(hash, pub, sizeof(pub));
	memcpy(id->info, "ed25519:", 8);
	to_hex(id->info + 8, hash, 16);
	crypto_wipe(hash, sizeof(hash));
	id->present = true;
}

void agent_cmd_ident(struct agent *a, const char *params)
{
	struct agent_param p;
	uint8_t msg[DOMAIN_LEN + NONCE_LEN], sig[64];
	char key_hex[2 * 32 + 1], sig_hex[2 * 64 + 1];

	if (!a->ident.present) {
		agent_sendf(a, "IDENT_ERR code=NO_IDENTITY msg=\"no identity key provisioned\"");
		return;
	}
	if (!agent_param_get(params, "nonce", &p) ||
	    !from_hex(msg + DOMAIN_LEN, p.val, p.len, NONCE_LEN)) {
		agent_sendf(a, "IDENT_ERR code=BAD_PARAMS msg=\"nonce must be 64 hex digits\"");
		return;
	}
	memcpy(msg, ident_domain, DOMAIN_LEN);
	crypto_ed25519_sign(sig, a->ident.secret, msg, sizeof(msg));
	to_hex(key_hex, a->ident.secret + 32, 32);
	to_hex(sig_hex, sig, sizeof(sig));
	agent_sendf(a, "IDENT_OK key=%s sig=%s", key_hex, sig_hex);
}
