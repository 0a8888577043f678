// tls.c — the TLS client, used the way mbedTLS's own ssl_client1.c reads:
// 1. seed the RNG, 2. configure (wisp_tls_start), 3. handshake one step at a time
// (wisp_tls_handshake, the caller polls between steps), 4. verify the server's chain
// against the roots it names, 5. I/O; one cleanup block frees in reverse order; retries
// only on WANT_READ/WANT_WRITE.
//
// Trust anchors on demand: the system bundle holds ~140 roots, ~600 KB once parsed, more
// than everything else wisp holds. So the handshake runs with verification OPTIONAL and no
// roots loaded; when it completes, before a byte of application data, the bundle is read
// one certificate at a time, only the roots whose subject is the issuer of a certificate
// the server sent are parsed, and the chain is verified against them with the same
// profile, host name and IP check mbedTLS's handshake applies. They are freed at once.
// Any failure closes the connection as the REQUIRED mode would.
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
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/asn1.h>
#include <mbedtls/base64.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#define SYSTEM_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

struct wisp_tls {
    mbedtls_net_context net;
    mbedtls_ctr_drbg_context drbg;
    const char *bundle;       // NULL: insecure, nothing verified
    char bundle_path[256];
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
    mbedtls_ctr_drbg_free(&t->drbg);
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

// The DRBG's seed and reseeds straight from the kernel (getrandom), the source mbedTLS's
// entropy module would poll anyway: that module's context is 38 KB in Debian's build
// (HAVEGE state included) and would live as long as the connection.
static int kernel_entropy(void *unused, unsigned char *out, size_t len) {
    (void)unused;
    return wisp_random(out, len) == 0 ? 0 : MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
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
    mbedtls_ctr_drbg_init(&t->drbg);
    int ret;

    // 1. RNG
    static const unsigned char personal[] = "wisp";
    if ((ret = mbedtls_ctr_drbg_seed(&t->drbg, kernel_entropy, NULL, personal, sizeof personal - 1)) != 0) {
        describe(ret, "TLS random generator", err, err_cap);
        goto fail;
    }

    // The roots are read after the handshake (verify_chain); a bundle that cannot be
    // opened fails here, before anything is sent.
    if (!insecure) {
        const char *bundle = ca_file != NULL ? ca_file : SYSTEM_BUNDLE;
        FILE *f = fopen(bundle, "re");
        if (f == NULL) {
            snprintf(err, err_cap, "cannot load CA bundle %s: %s", bundle, strerror(errno));
            goto fail;
        }
        fclose(f);
        snprintf(t->bundle_path, sizeof t->bundle_path, "%s", bundle);
        t->bundle = t->bundle_path;
    }

    // 3. configuration
    if ((ret = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                           MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
        describe(ret, "TLS configuration", err, err_cap);
        goto fail;
    }
    mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);  // TLS 1.2+
    // OPTIONAL: the handshake records what it found and goes on; verify_chain decides.
    mbedtls_ssl_conf_authmode(&t->conf, insecure ? MBEDTLS_SSL_VERIFY_NONE : MBEDTLS_SSL_VERIFY_OPTIONAL);
#if defined(MBEDTLS_SSL_RENEGOTIATION)
    // Explicitly, whatever the library's default: a certificate a renegotiation brought
    // would never pass verify_chain below.
    mbedtls_ssl_conf_renegotiation(&t->conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
#endif
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

// The subject Name (tag, length and value) of a DER certificate, found by walking
// Certificate → TBSCertificate → [0] version, serial, signature, issuer, validity, subject
// without parsing the rest (RFC 5280 §4.1). 0, or -1 when the DER is not of that shape.
static int der_subject(unsigned char *der, size_t len, const unsigned char **subject, size_t *subject_len) {
    unsigned char *p = der, *end = der + len;
    size_t n;
    int c = MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE;
    if (mbedtls_asn1_get_tag(&p, end, &n, c) != 0) return -1;
    end = p + n;
    if (mbedtls_asn1_get_tag(&p, end, &n, c) != 0) return -1;  // tbsCertificate
    end = p + n;
    if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0) == 0) p += n;
    const int skip[] = {MBEDTLS_ASN1_INTEGER, c, c, c};  // serial, signature, issuer, validity
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++) {
        if (mbedtls_asn1_get_tag(&p, end, &n, skip[i]) != 0) return -1;
        p += n;
    }
    unsigned char *start = p;
    if (mbedtls_asn1_get_tag(&p, end, &n, c) != 0) return -1;
    *subject = start;
    *subject_len = (size_t)(p + n - start);
    return 0;
}

static int issued_by(const unsigned char *subject, size_t len, const mbedtls_x509_crt *chain) {
    for (const mbedtls_x509_crt *c = chain; c != NULL && c->raw.p != NULL; c = c->next) {
        if (c->issuer_raw.len == len && memcmp(c->issuer_raw.p, subject, len) == 0) return 1;
    }
    return 0;
}

// Appends to `roots` every certificate of the PEM bundle that issued one in `chain`,
// reading one certificate at a time. Returns how many, or -1 with `err`.
static int load_issuers(const char *bundle, const mbedtls_x509_crt *chain, mbedtls_x509_crt *roots,
                        char *err, size_t err_cap) {
    FILE *f = fopen(bundle, "re");
    if (f == NULL) {
        snprintf(err, err_cap, "cannot load CA bundle %s: %s", bundle, strerror(errno));
        return -1;
    }
    enum { DER_CAP = 6144 };  // Debian's largest root is 2 KB of DER
    unsigned char *der = malloc(DER_CAP);
    char line[128];
    size_t len = 0;
    int inside = 0, found = 0, certificates = 0, lost = 0;
    while (der != NULL && fgets(line, sizeof line, f) != NULL) {
        size_t n = strcspn(line, "\r\n");
        if (line[n] == '\0' && !feof(f)) lost = 1;  // a line longer than PEM's 64 columns
        line[n] = '\0';
        if (strcmp(line, "-----BEGIN CERTIFICATE-----") == 0) {
            inside = 1;
            len = 0;
            lost = 0;
        } else if (inside && strcmp(line, "-----END CERTIFICATE-----") == 0) {
            inside = 0;
            size_t subject_len = 0;
            const unsigned char *subject = NULL;
            if (!lost && der_subject(der, len, &subject, &subject_len) == 0) {
                certificates++;
                if (issued_by(subject, subject_len, chain) && mbedtls_x509_crt_parse_der(roots, der, len) == 0) found++;
            }
        } else if (inside && !lost) {
            // PEM lines hold whole base64 quanta (64 characters, the last one padded), so
            // each decodes on its own, straight after the DER decoded so far.
            size_t got = 0;
            if (mbedtls_base64_decode(der + len, DER_CAP - len, &got, (unsigned char *)line, n) != 0) lost = 1;
            len += got;
        }
    }
    int ok = der != NULL;
    free(der);
    fclose(f);
    if (!ok) {
        snprintf(err, err_cap, "out of memory reading CA bundle %s", bundle);
        return -1;
    }
    if (certificates == 0) {
        snprintf(err, err_cap, "CA bundle %s holds no usable certificate", bundle);
        return -1;
    }
    return found;
}

static void refused(struct wisp_tls *t, uint32_t flags, char *err, size_t err_cap) {
    if (flags == MBEDTLS_X509_BADCERT_CN_MISMATCH && t->ip_problem[0] != 0) {
        snprintf(err, err_cap, "TLS certificate of %s refused: %s", t->host, t->ip_problem);
        return;
    }
    char info[256];
    mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
    for (char *c = info; *c; c++) if (*c == '\n') *c = (c[1] ? ';' : '\0');
    snprintf(err, err_cap, "TLS certificate of %s refused: %s", t->host, info);
}

// What the handshake found still counts, but for what verify_chain decides again with the
// right roots (trust, dates, name, the chain's algorithms and keys): key usage for the
// cipher suite, extended key usage serverAuth, and whatever a later mbedTLS adds. BAD_KEY
// is decided again too: the handshake sets it for any certificate the server sent (an
// extra legacy root beyond the real anchor would refuse a good server), so verify_chain
// redoes its one leaf-only part, the EC curve this client offers.
uint32_t wisp_tls_handshake_flags_kept(uint32_t flags) {
    return flags & ~(uint32_t)(MBEDTLS_X509_BADCERT_NOT_TRUSTED | MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE |
                               MBEDTLS_X509_BADCERT_CN_MISMATCH | MBEDTLS_X509_BADCERT_REVOKED | MBEDTLS_X509_BADCERT_MISSING |
                               MBEDTLS_X509_BADCERT_SKIP_VERIFY | MBEDTLS_X509_BADCERT_BAD_MD | MBEDTLS_X509_BADCERT_BAD_PK |
                               MBEDTLS_X509_BADCERT_BAD_KEY |
                               MBEDTLS_X509_BADCRL_NOT_TRUSTED | MBEDTLS_X509_BADCRL_EXPIRED | MBEDTLS_X509_BADCRL_FUTURE |
                               MBEDTLS_X509_BADCRL_BAD_MD | MBEDTLS_X509_BADCRL_BAD_PK | MBEDTLS_X509_BADCRL_BAD_KEY);
}

// 4. The server's chain against the roots that issued it: 0, or -1 with `err`.
static int verify_chain(struct wisp_tls *t, char *err, size_t err_cap) {
    const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&t->ssl);
    if (peer == NULL) {
        snprintf(err, err_cap, "TLS certificate of %s refused: the server sent none", t->host);
        return -1;
    }
    uint32_t usage = wisp_tls_handshake_flags_kept(mbedtls_ssl_get_verify_result(&t->ssl));
    mbedtls_x509_crt roots;
    mbedtls_x509_crt_init(&roots);
    int found = load_issuers(t->bundle, peer, &roots, err, err_cap);
    if (found < 0) {
        mbedtls_x509_crt_free(&roots);
        return -1;
    }
    uint32_t flags = 0;
    t->ip_problem[0] = '\0';
    int ret = mbedtls_x509_crt_verify_with_profile((mbedtls_x509_crt *)peer, found > 0 ? &roots : NULL, NULL,
                                                   &mbedtls_x509_crt_profile_default, t->ip_len ? NULL : t->host, &flags,
                                                   t->ip_len ? verify_ip : NULL, t);
    mbedtls_x509_crt_free(&roots);
    flags |= usage;
#if defined(MBEDTLS_ECP_C)
    // The leaf's EC key must be on a curve this client offered (what the handshake checks).
    if (mbedtls_pk_can_do(&peer->pk, MBEDTLS_PK_ECKEY)) {
        mbedtls_ecp_group_id id = mbedtls_pk_ec(peer->pk)->grp.id;
        const mbedtls_ecp_group_id *g = t->conf.curve_list;
        while (g != NULL && *g != MBEDTLS_ECP_DP_NONE && *g != id) g++;
        if (g == NULL || *g == MBEDTLS_ECP_DP_NONE) flags |= MBEDTLS_X509_BADCERT_BAD_KEY;
    }
#endif
    if (ret == 0 && flags == 0) return 0;
    if (flags == 0) flags = MBEDTLS_X509_BADCERT_NOT_TRUSTED;
    refused(t, flags, err, err_cap);
    return -1;
}

// 3. handshake, one step at a time: the caller polls in between, with its own deadline.
int32_t wisp_tls_handshake(void *tls, char *err, size_t err_cap) {
    struct wisp_tls *t = tls;
    int ret = mbedtls_ssl_handshake(&t->ssl);
    if (ret == 0) {
        if (t->bundle != NULL && verify_chain(t, err, err_cap) != 0) return -1;
        return 1;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_READ) return 0;
    if (ret == MBEDTLS_ERR_SSL_WANT_WRITE) return 2;
    uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
    if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && flags != 0) {
        refused(t, flags, err, err_cap);
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
