// crypto.c — what the sans-IO core needs from mbedTLS: HMAC, SHA-1, base64, randomness,
// and the ECDSA P-256 verification of signed OTA packages.
// Written against mbedTLS 2.28 (Debian 12); version differences stay in this file.
#include "wisp_platform.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <mbedtls/base64.h>
#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha1.h>
#include <mbedtls/version.h>

int wisp_hmac(int32_t method, const uint8_t *key, size_t key_len,
              const uint8_t *msg, size_t msg_len, uint8_t *out, size_t out_cap) {
    mbedtls_md_type_t type;
    switch (method) {
    case WISP_HMAC_MD5: type = MBEDTLS_MD_MD5; break;
    case WISP_HMAC_SHA1: type = MBEDTLS_MD_SHA1; break;
    case WISP_HMAC_SHA256: type = MBEDTLS_MD_SHA256; break;
    default: return -1;
    }
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(type);
    if (info == NULL) return -1;
    size_t size = mbedtls_md_get_size(info);
    if (out_cap < size) return -1;
    if (mbedtls_md_hmac(info, key, key_len, msg, msg_len, out) != 0) return -1;
    return (int)size;
}

int wisp_sha1(const uint8_t *msg, size_t msg_len, uint8_t *out) {
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    if (mbedtls_sha1(msg, msg_len, out) != 0) return -1;
#else
    if (mbedtls_sha1_ret(msg, msg_len, out) != 0) return -1;
#endif
    return 20;
}

int wisp_base64_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_cap) {
    size_t written = 0;
    if (mbedtls_base64_encode(dst, dst_cap, &written, src, src_len) != 0) return -1;
    return (int)written;
}

int wisp_random(uint8_t *buf, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = getrandom(buf + done, len - done, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        done += (size_t)n;
    }
    return 0;
}

// A streaming digest: the context and its size (2.28 has no mbedtls_md_info_from_ctx).
struct digest {
    mbedtls_md_context_t md;
    size_t size;
};

void *wisp_digest_new(int32_t method) {
    mbedtls_md_type_t type;
    switch (method) {
    case WISP_HMAC_MD5: type = MBEDTLS_MD_MD5; break;
    case WISP_HMAC_SHA256: type = MBEDTLS_MD_SHA256; break;
    default: return NULL;
    }
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(type);
    if (info == NULL) return NULL;
    struct digest *d = calloc(1, sizeof *d);
    if (d == NULL) return NULL;
    mbedtls_md_init(&d->md);
    d->size = mbedtls_md_get_size(info);
    if (mbedtls_md_setup(&d->md, info, 0) != 0 || mbedtls_md_starts(&d->md) != 0) {
        wisp_digest_free(d);
        return NULL;
    }
    return d;
}

int wisp_digest_update(void *digest, const uint8_t *buf, size_t len) {
    struct digest *d = digest;
    return mbedtls_md_update(&d->md, buf, len) == 0 ? 0 : -1;
}

int wisp_digest_finish(void *digest, uint8_t *out, size_t out_cap) {
    struct digest *d = digest;
    int r = (out_cap >= d->size && mbedtls_md_finish(&d->md, out) == 0) ? (int)d->size : -1;
    wisp_digest_free(d);
    return r;
}

void wisp_digest_free(void *digest) {
    struct digest *d = digest;
    if (d == NULL) return;
    mbedtls_md_free(&d->md);
    free(d);
}

int wisp_ecdsa_p256_verify(const uint8_t *pem, size_t pem_len, const uint8_t *hash, size_t hash_len,
                           const uint8_t *sig, size_t sig_len) {
    // mbedtls_pk_parse_public_key takes a PEM only NUL-terminated, the NUL counted.
    unsigned char text[WISP_PUBLIC_KEY_MAX + 1];
    if (pem == NULL || pem_len == 0 || pem_len > WISP_PUBLIC_KEY_MAX) return WISP_ECDSA_BAD_KEY;
    if (memchr(pem, 0, pem_len) != NULL) return WISP_ECDSA_BAD_KEY;
    memcpy(text, pem, pem_len);
    text[pem_len] = 0;

    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int r;
    if (mbedtls_pk_parse_public_key(&pk, text, pem_len + 1) != 0) {
        r = WISP_ECDSA_BAD_KEY;
    } else if (mbedtls_pk_get_type(&pk) != MBEDTLS_PK_ECKEY || mbedtls_pk_ec(pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
        r = WISP_ECDSA_NOT_P256;
    } else if (hash == NULL || hash_len != 32 || sig == NULL || sig_len == 0) {
        r = WISP_ECDSA_BAD_SIGNATURE;
    } else if (mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, hash, hash_len, sig, sig_len) != 0) {
        r = WISP_ECDSA_BAD_SIGNATURE;
    } else {
        r = 0;
    }
    mbedtls_pk_free(&pk);
    return r;
}
