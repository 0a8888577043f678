// tls.c — the TLS client, used the way mbedTLS's own ssl_client1.c reads:
// 1. seed the RNG, 2. load the roots, 3. configure (wisp_tls_start), 4. handshake one step
// at a time (wisp_tls_handshake, the caller polls between steps), 5. I/O; one cleanup block
// frees in reverse order; retries only on WANT_READ/WANT_WRITE.
// Written against mbedTLS 2.28 (Debian 12); version differences stay in this file.
#define _GNU_SOURCE
#include "wisp_platform.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#define SYSTEM_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

struct wisp_tls {
    mbedtls_net_context net;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt roots;
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    // A write that returned WANT_WRITE: mbedTLS holds its record and must be called
    // again with the same buffer and length (ssl.h, mbedtls_ssl_write). 0: none pending.
    size_t pending_write;
    // An IP-literal host (RFC 6125 §6.2.1 / RFC 5280 iPAddress): checked against the
    // certificate's iPAddress SANs by verify_ip, since mbedTLS 2.28 matches DNS names only.
    unsigned char ip[16];
    size_t ip_len;
    char ip_problem[200];
    char host[256];
};

static void free_all(struct wisp_tls *t) {
    mbedtls_ssl_free(&t->ssl);
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_x509_crt_free(&t->roots);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
    free(t);
}

/// The iPAddress entries ([7], 4 or 16 octets) of the certificate's subjectAltName, as
/// mbedTLS 2.28 keeps every GeneralName raw in `subject_alt_names` with its tag.
static int ip_in_san(const mbedtls_x509_crt *crt, const unsigned char *ip, size_t len) {
    for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s != NULL; s = s->next) {
        if (s->buf.p == NULL) continue;
        if (s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && s->buf.len == len && memcmp(s->buf.p, ip, len) == 0)
            return 1;
    }
    return 0;
}

/// Verify callback: for an IP-literal host, the leaf must list that address among its
/// iPAddress SANs; otherwise the name-mismatch flag is raised with a sentence saying what
/// was compared.
static int verify_ip(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags) {
    struct wisp_tls *t = ctx;
    if (depth != 0 || t->ip_len == 0) return 0;
    if (!ip_in_san(crt, t->ip, t->ip_len)) {
        char text[INET6_ADDRSTRLEN];
        inet_ntop(t->ip_len == 4 ? AF_INET : AF_INET6, t->ip, text, sizeof text);
        snprintf(t->ip_problem, sizeof t->ip_problem,
                 "the certificate's subjectAltName has no iPAddress entry %s (an IP-literal endpoint is matched "
                 "against iPAddress entries only)", text);
        *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    }
    return 0;
}

static void describe(int ret, const char *what, char *err, size_t cap) {
    char text[160];
    mbedtls_strerror(ret, text, sizeof text);
    snprintf(err, cap, "%s: %s (-0x%04x)", what, text, (unsigned)-ret);
}

void *wisp_tls_start(int32_t fd, const char *host, const char *ca_file, int32_t insecure, char *err, size_t err_cap) {
    struct wisp_tls *t = calloc(1, sizeof *t);
    if (t == NULL) {
        snprintf(err, err_cap, "out of memory for TLS");
        return NULL;
    }
    t->net.fd = fd;
    snprintf(t->host, sizeof t->host, "%s", host);
    mbedtls_ssl_init(&t->ssl);
    mbedtls_ssl_config_init(&t->conf);
    mbedtls_x509_crt_init(&t->roots);
    mbedtls_ctr_drbg_init(&t->drbg);
    mbedtls_entropy_init(&t->entropy);
    int ret;

    // 1. RNG
    static const unsigned char personal[] = "wisp";
    if ((ret = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy, personal, sizeof personal - 1)) != 0) {
        describe(ret, "TLS random generator", err, err_cap);
        goto fail;
    }

    // 2. trusted roots (a bundle may hold several: a root rotation needs no new binary)
    if (!insecure) {
        const char *bundle = ca_file != NULL ? ca_file : SYSTEM_BUNDLE;
        ret = mbedtls_x509_crt_parse_file(&t->roots, bundle);
        if (ret < 0) {
            char what[300];
            snprintf(what, sizeof what, "cannot load CA bundle %s", bundle);
            describe(ret, what, err, err_cap);
            goto fail;
        }
        if (t->roots.version == 0) {
            snprintf(err, err_cap, "CA bundle %s holds no usable certificate", bundle);
            goto fail;
        }
    }

    // 3. configuration
    if ((ret = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                           MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
        describe(ret, "TLS configuration", err, err_cap);
        goto fail;
    }
    mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);  // TLS 1.2+
    mbedtls_ssl_conf_authmode(&t->conf, insecure ? MBEDTLS_SSL_VERIFY_NONE : MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&t->conf, &t->roots, NULL);
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
    if ((ret = mbedtls_ssl_setup(&t->ssl, &t->conf)) != 0) {
        describe(ret, "TLS setup", err, err_cap);
        goto fail;
    }
    if (inet_pton(AF_INET, host, t->ip) == 1) {
        t->ip_len = 4;
    } else if (inet_pton(AF_INET6, host, t->ip) == 1) {
        t->ip_len = 16;
    }
    if (t->ip_len > 0) {
        // No SNI for an address (RFC 6066 §3); the address is checked by verify_ip.
        if (!insecure) mbedtls_ssl_set_verify(&t->ssl, verify_ip, t);
    } else if ((ret = mbedtls_ssl_set_hostname(&t->ssl, host)) != 0) {  // SNI and the name checked
        describe(ret, "TLS host name", err, err_cap);
        goto fail;
    }
    mbedtls_ssl_set_bio(&t->ssl, &t->net, mbedtls_net_send, mbedtls_net_recv, NULL);
    return t;

fail:
    free_all(t);
    return NULL;
}

// 4. handshake, one step at a time: the caller polls in between, with its own deadline.
int32_t wisp_tls_handshake(void *tls, char *err, size_t err_cap) {
    struct wisp_tls *t = tls;
    int ret = mbedtls_ssl_handshake(&t->ssl);
    if (ret == 0) return 1;
    if (ret == MBEDTLS_ERR_SSL_WANT_READ) return 0;
    if (ret == MBEDTLS_ERR_SSL_WANT_WRITE) return 2;
    uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
    if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && flags == MBEDTLS_X509_BADCERT_CN_MISMATCH && t->ip_problem[0] != 0) {
        snprintf(err, err_cap, "TLS certificate of %s refused: %s", t->host, t->ip_problem);
    } else if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && flags != 0) {
        char info[256];
        mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
        for (char *c = info; *c; c++) if (*c == '\n') *c = (c[1] ? ';' : '\0');
        snprintf(err, err_cap, "TLS certificate of %s refused: %s", t->host, info);
    } else if (ret == MBEDTLS_ERR_NET_CONN_RESET || ret == MBEDTLS_ERR_SSL_CONN_EOF) {
        snprintf(err, err_cap, "TLS handshake with %s: the connection was closed", t->host);
    } else {
        describe(ret, "TLS handshake failed", err, err_cap);
    }
    return -1;
}

int64_t wisp_tls_send(void *tls, const uint8_t *buf, size_t len) {
    struct wisp_tls *t = tls;
    // After WANT_WRITE, mbedTLS flushes the record it already holds and then reports the
    // length it is given as written: retry exactly the earlier length, or bytes queued
    // since would be counted as sent and dropped. The caller's buffer only grows at its end.
    if (t->pending_write > 0 && t->pending_write <= len) len = t->pending_write;
    int ret = mbedtls_ssl_write(&t->ssl, buf, len);
    if (ret >= 0) {
        t->pending_write = 0;
        return ret;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
        t->pending_write = len;
        return 0;
    }
    return ret == MBEDTLS_ERR_NET_CONN_RESET ? -ECONNRESET : -EIO;
}

int64_t wisp_tls_recv(void *tls, uint8_t *buf, size_t cap) {
    struct wisp_tls *t = tls;
    int ret = mbedtls_ssl_read(&t->ssl, buf, cap);
    if (ret > 0) return ret;
    if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) return WISP_IO_CLOSED;
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) return 0;
    if (ret == MBEDTLS_ERR_NET_CONN_RESET) return -ECONNRESET;
    return -EIO;
}

void wisp_tls_close(void *tls) {
    struct wisp_tls *t = tls;
    if (t == NULL) return;
    (void)mbedtls_ssl_close_notify(&t->ssl);
    free_all(t);
}
