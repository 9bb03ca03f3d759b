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
	agent_hex_encode(id->info + 8, hash, 16);
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
	    !agent_hex_decode(msg + DOMAIN_LEN, p.val, p.len, NONCE_LEN)) {
		agent_sendf(a, "IDENT_ERR code=BAD_PARAMS msg=\"nonce must be 64 hex digits\"");
		return;
	}
	memcpy(msg, ident_domain, DOMAIN_LEN);
	crypto_ed25519_sign(sig, a->ident.secret, msg, sizeof(msg));
	agent_hex_encode(key_hex, a->ident.secret + 32, 32);
	agent_hex_encode(sig_hex, sig, sizeof(sig));
	agent_sendf(a, "IDENT_OK key=%s sig=%s", key_hex, sig_hex);
}
