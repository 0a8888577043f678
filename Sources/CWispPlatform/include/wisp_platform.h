// wisp_platform.h — the only C in wisp: libc, POSIX and mbedTLS behind `wisp_` symbols.
//
// Rules for this header: only <stdint.h>/<stddef.h> types cross it (no C enums, no libc
// structs), every function returns 0 or a positive count on success and a negative
// value on failure, and nothing here allocates after start-up except mbedTLS itself.
#ifndef WISP_PLATFORM_H
#define WISP_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: crypto (crypto.c)

#define WISP_HMAC_MD5 0
#define WISP_HMAC_SHA1 1
#define WISP_HMAC_SHA256 2

/// HMAC of `msg` under `key`; writes the digest to `out` and returns its length
/// (16, 20 or 32), or -1 for an unknown method or a too-small `out`.
int wisp_hmac(int32_t method, const uint8_t *key, size_t key_len,
              const uint8_t *msg, size_t msg_len, uint8_t *out, size_t out_cap);

/// SHA-1 of `msg` into `out[20]`. Returns 20, or -1 on failure.
int wisp_sha1(const uint8_t *msg, size_t msg_len, uint8_t *out);

/// Base64 (RFC 4648, with padding) of `src` into `dst` (which also gets a NUL after the
/// text, so `dst_cap` must be one more than the text); returns the length written,
/// or -1 when `dst` is too small.
int wisp_base64_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_cap);

/// Fills `buf` from the kernel CSPRNG (getrandom). Returns 0, or -errno.
int wisp_random(uint8_t *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
