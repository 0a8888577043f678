// platform/plugin.c — a mosquitto 2.0 plugin that enforces the IoT Platform's
// connection rules, so a local mosquitto refuses a device for the platform's reasons.
//
// On CONNECT (MOSQ_EVT_BASIC_AUTH): parses `clientId|securemode=S,signmethod=M,timestamp=T|`,
// requires the username `deviceName&productKey`, looks the device up in the registry
// (`productKey deviceName deviceSecret` per line), recomputes the HMAC and refuses a
// mismatch; refuses a keep-alive outside 30..1200 s, a clientId over 64 characters, a
// securemode other than this listener's (plugin_opt_securemode: 2 on TLS, 3 on plain), an
// unknown signmethod. On publish/subscribe (MOSQ_EVT_ACL_CHECK) a device may use only its
// own topics. On messages (MOSQ_EVT_MESSAGE) it answers NTP requests and acknowledges
// property posts as the platform does. Every refusal is logged with its reason.
//
// Dynamic registration (authType=register, TLS listener only): the registry's
// `product PK PRODUCTSECRET` lines hold product secrets; a device pre-registered in the
// registry signs `deviceName{dn}productKey{pk}random{r}` with it and, once accepted, is sent
// its device secret on /ext/register (no SUBSCRIBE needed), once: a second registration of
// the same device is refused as "already activated", as the platform does. Without
// pre-registration (authType=regnwl) any device name of the product is accepted: the plugin
// makes a client id and a token, sends them on /ext/regnwl, and accepts later sign-ins with
// `clientId|securemode=-2,authType=connwl|` and the token as the password (tokens live as
// long as the broker). securemode=-2 (new-style instances) is taken on the TLS listener.
//
// Options: plugin_opt_registry PATH (required), plugin_opt_securemode 2|3 (required).
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <mbedtls/md.h>
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include "console.h"

#define MAX_DEVICES 256

struct device { char pk[65], dn[65], secret[129]; int activated; };
struct product { char pk[65], secret[129]; };
#define MAX_PRODUCTS 16
#define MAX_TOKENS 64
struct token { char pk[65], dn[65], client[80], token[33]; };

struct plugin {
    mosquitto_plugin_id_t *id;
    int securemode;
    char registry[512];
    struct device devices[MAX_DEVICES];
    int count;
    struct product products[MAX_PRODUCTS];
    int products_count;
    struct token tokens[MAX_TOKENS];
    int tokens_count;
};

static void refuse_log(const char *client, const char *reason) {
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "wisp-platform: refused %s: %s", client ? client : "(no client id)", reason);
}

static int load_registry(struct plugin *p) {
    FILE *f = fopen(p->registry, "r");
    if (f == NULL) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "wisp-platform: cannot open registry %s", p->registry);
        return MOSQ_ERR_INVAL;
    }
    char line[512];
    p->count = 0;
    p->products_count = 0;
    while (fgets(line, sizeof line, f) && p->count < MAX_DEVICES) {
        struct device *d = &p->devices[p->count];
        if (line[0] == '#') continue;
        if (strncmp(line, "product ", 8) == 0) {
            struct product *pr = &p->products[p->products_count];
            if (p->products_count < MAX_PRODUCTS && sscanf(line + 8, "%64s %128s", pr->pk, pr->secret) == 2) p->products_count++;
            continue;
        }
        if (sscanf(line, "%64s %64s %128s", d->pk, d->dn, d->secret) == 3) {
            d->activated = 0;
            p->count++;
        }
    }
    fclose(f);
    mosquitto_log_printf(MOSQ_LOG_INFO, "wisp-platform: %d device(s) in %s, securemode %d", p->count, p->registry, p->securemode);
    return MOSQ_ERR_SUCCESS;
}

static const struct product *find_product(struct plugin *p, const char *pk) {
    for (int i = 0; i < p->products_count; i++)
        if (strcmp(p->products[i].pk, pk) == 0) return &p->products[i];
    return NULL;
}

static const struct device *find(struct plugin *p, const char *pk, const char *dn) {
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->devices[i].pk, pk) == 0 && strcmp(p->devices[i].dn, dn) == 0) return &p->devices[i];
    return NULL;
}

// Lowercase hex HMAC-method(secret, content) into out (65 bytes). 0 on success.
static int sign(const char *method, const char *secret, const char *content, char *out) {
    mbedtls_md_type_t type;
    if (strcmp(method, "hmacmd5") == 0) type = MBEDTLS_MD_MD5;
    else if (strcmp(method, "hmacsha1") == 0) type = MBEDTLS_MD_SHA1;
    else if (strcmp(method, "hmacsha256") == 0) type = MBEDTLS_MD_SHA256;
    else return -1;
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(type);
    unsigned char digest[32];
    if (mbedtls_md_hmac(info, (const unsigned char *)secret, strlen(secret), (const unsigned char *)content,
                        strlen(content), digest) != 0) return -1;
    size_t n = mbedtls_md_get_size(info);
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", digest[i]);
    out[2 * n] = 0;
    return 0;
}

// The username `deviceName&productKey` split in place; 0 on success.
static int split_username(const char *username, char *dn, char *pk) {
    if (username == NULL) return -1;
    const char *amp = strchr(username, '&');
    if (amp == NULL || amp == username || amp[1] == 0 || amp - username > 64 || strlen(amp + 1) > 64) return -1;
    memcpy(dn, username, (size_t)(amp - username));
    dn[amp - username] = 0;
    strcpy(pk, amp + 1);
    return 0;
}

// Whether the password is the product secret's signature over
// deviceName{dn}productKey{pk}random{r} (register and regnwl); logs the refusal when not.
static int product_signed(struct plugin *p, struct mosquitto_evt_basic_auth *ed, const char *full, const char *kind,
                          const char *pk, const char *dn, const char *method, const char *random) {
    char reason[600];
    const struct product *pr = find_product(p, pk);
    if (pr == NULL) {
        snprintf(reason, sizeof reason, "%s: product %s has no product secret (dynamic registration not enabled)", kind, pk);
        refuse_log(full, reason);
        return 0;
    }
    if (random[0] == 0) {
        snprintf(reason, sizeof reason, "%s: no random in the client id", kind);
        refuse_log(full, reason);
        return 0;
    }
    char content[300], expected[65];
    snprintf(content, sizeof content, "deviceName%sproductKey%srandom%s", dn, pk, random);
    if (sign(method, pr->secret, content, expected) != 0 || ed->password == NULL || strcmp(expected, ed->password) != 0) {
        snprintf(reason, sizeof reason, "%s: signature mismatch for %s/%s (%s over \"%s\"): wrong product secret", kind, pk, dn, method, content);
        refuse_log(full, reason);
        return 0;
    }
    return 1;
}

// authType=register: checks the product secret's signature, then sends the device its
// secret on /ext/register (delivered right after the CONNACK) — once per device.
static int register_device(struct plugin *p, struct mosquitto_evt_basic_auth *ed, const char *full, const char *pk,
                           const char *dn, const char *method, const char *random) {
    char reason[600];
    struct device *d = (struct device *)find(p, pk, dn);
    if (d == NULL) {
        snprintf(reason, sizeof reason, "register: no device %s in product %s (add it in the console first)", dn, pk);
        refuse_log(full, reason);
        return MOSQ_ERR_AUTH;
    }
    if (!product_signed(p, ed, full, "register", pk, dn, method, random)) return MOSQ_ERR_AUTH;
    if (d->activated) {
        snprintf(reason, sizeof reason, "register: device %s/%s is already activated", pk, dn);
        refuse_log(full, reason);
        return MOSQ_ERR_AUTH;
    }
    d->activated = 1;
    char payload[400];
    int n = snprintf(payload, sizeof payload, "{\"productKey\":\"%s\",\"deviceName\":\"%s\",\"deviceSecret\":\"%s\"}", pk, dn, d->secret);
    mosquitto_broker_publish_copy(full, "/ext/register", n, payload, 0, false, NULL);
    mosquitto_log_printf(MOSQ_LOG_INFO, "wisp-platform: registered %s/%s (%s)", pk, dn, full);
    return MOSQ_ERR_SUCCESS;
}

// authType=regnwl: the product secret's signature; a new client id and token for the device.
static int register_nwl(struct plugin *p, struct mosquitto_evt_basic_auth *ed, const char *full, const char *pk,
                        const char *dn, const char *method, const char *random) {
    if (!product_signed(p, ed, full, "regnwl", pk, dn, method, random)) return MOSQ_ERR_AUTH;
    if (p->tokens_count >= MAX_TOKENS) { refuse_log(full, "regnwl: token table full"); return MOSQ_ERR_AUTH; }
    struct token *t = &p->tokens[p->tokens_count++];
    snprintf(t->pk, sizeof t->pk, "%s", pk);
    snprintf(t->dn, sizeof t->dn, "%s", dn);
    snprintf(t->client, sizeof t->client, "%s.%s", pk, dn);
    unsigned char raw[16];
    FILE *f = fopen("/dev/urandom", "rb");
    if (f == NULL || fread(raw, 1, sizeof raw, f) != sizeof raw) { if (f) fclose(f); return MOSQ_ERR_AUTH; }
    fclose(f);
    for (size_t i = 0; i < sizeof raw; i++) sprintf(t->token + 2 * i, "%02x", raw[i]);
    char payload[400];
    int n = snprintf(payload, sizeof payload, "{\"clientId\":\"%s\",\"productKey\":\"%s\",\"deviceName\":\"%s\",\"deviceToken\":\"%s\"}",
                     t->client, pk, dn, t->token);
    mosquitto_broker_publish_copy(full, "/ext/regnwl", n, payload, 0, false, NULL);
    mosquitto_log_printf(MOSQ_LOG_INFO, "wisp-platform: registered without pre-registration %s/%s as %s", pk, dn, t->client);
    return MOSQ_ERR_SUCCESS;
}

// authType=connwl: the token a regnwl registration handed out.
static int connect_token(struct plugin *p, struct mosquitto_evt_basic_auth *ed, const char *full, const char *client,
                         const char *pk, const char *dn) {
    char reason[400];
    for (int i = p->tokens_count - 1; i >= 0; i--) {
        struct token *t = &p->tokens[i];
        if (strcmp(t->pk, pk) || strcmp(t->dn, dn)) continue;
        if (strcmp(t->client, client) != 0 || ed->password == NULL || strcmp(t->token, ed->password) != 0) {
            snprintf(reason, sizeof reason, "connwl: wrong client id or token for %s/%s", pk, dn);
            refuse_log(full, reason);
            return MOSQ_ERR_AUTH;
        }
        mosquitto_log_printf(MOSQ_LOG_INFO, "wisp-platform: accepted %s as %s/%s (token)", full, pk, dn);
        return MOSQ_ERR_SUCCESS;
    }
    snprintf(reason, sizeof reason, "connwl: no token for %s/%s (register with regnwl first)", pk, dn);
    refuse_log(full, reason);
    return MOSQ_ERR_AUTH;
}

static int on_basic_auth(int event, void *event_data, void *userdata) {
    (void)event;
    struct plugin *p = userdata;
    struct mosquitto_evt_basic_auth *ed = event_data;
    const char *full = mosquitto_client_id(ed->client);
    char reason[256];

    // clientId|securemode=S,signmethod=M,timestamp=T|
    const char *bar = full ? strchr(full, '|') : NULL;
    size_t full_len = full ? strlen(full) : 0;
    if (bar == NULL || full_len < 2 || full[full_len - 1] != '|' || bar == full + full_len - 1) {
        refuse_log(full, "client id is not clientId|securemode=S,signmethod=M[,timestamp=T]|");
        return MOSQ_ERR_AUTH;
    }
    size_t id_len = (size_t)(bar - full);
    if (id_len > 64) {
        snprintf(reason, sizeof reason, "clientId has %zu characters; at most 64 are allowed", id_len);
        refuse_log(full, reason);
        return MOSQ_ERR_AUTH;
    }
    char client[65], params[256], method[32] = "", timestamp[32] = "", auth_type[32] = "", random[65] = "";
    int securemode = -1;
    memcpy(client, full, id_len);
    client[id_len] = 0;
    size_t plen = full_len - id_len - 2;
    if (plen >= sizeof params) { refuse_log(full, "client id parameters too long"); return MOSQ_ERR_AUTH; }
    memcpy(params, bar + 1, plen);
    params[plen] = 0;
    for (char *save = NULL, *kv = strtok_r(params, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (eq == NULL) { refuse_log(full, "client id parameter without '='"); return MOSQ_ERR_AUTH; }
        *eq = 0;
        if (strcmp(kv, "securemode") == 0) securemode = atoi(eq + 1);
        else if (strcmp(kv, "signmethod") == 0) snprintf(method, sizeof method, "%s", eq + 1);
        else if (strcmp(kv, "timestamp") == 0) snprintf(timestamp, sizeof timestamp, "%s", eq + 1);
        else if (strcmp(kv, "authType") == 0) snprintf(auth_type, sizeof auth_type, "%s", eq + 1);
        else if (strcmp(kv, "random") == 0) snprintf(random, sizeof random, "%s", eq + 1);
    }
    if (securemode == -2 && p->securemode == 2) securemode = 2;  // new-style instances, on TLS
    if (securemode != p->securemode) {
        snprintf(reason, sizeof reason, "securemode=%d on a %s listener (expected securemode=%d)", securemode,
                 p->securemode == 2 ? "TLS" : "plain", p->securemode);
        refuse_log(full, reason);
        return MOSQ_ERR_AUTH;
    }
    if (strcmp(auth_type, "connwl") == 0) {
        char dn_c[65], pk_c[65];
        if (split_username(ed->username, dn_c, pk_c) != 0) { refuse_log(full, "username is not deviceName&productKey"); return MOSQ_ERR_AUTH; }
        return connect_token(p, ed, full, client, pk_c, dn_c);
    }
    if (strcmp(method, "hmacmd5") && strcmp(method, "hmacsha1") && strcmp(method, "hmacsha256")) {
        snprintf(reason, sizeof reason, "unknown signmethod '%s' (hmacmd5, hmacsha1, hmacsha256)", method);
        refuse_log(full, reason);
        return MOSQ_ERR_AUTH;
    }
    int keepalive = mosquitto_client_keepalive(ed->client);
    if (keepalive < 30 || keepalive > 1200) {
        snprintf(reason, sizeof reason, "keep-alive %d s is outside 30..1200", keepalive);
        refuse_log(full, reason);
        return MOSQ_ERR_AUTH;
    }
    char dn[65], pk[65];
    if (split_username(ed->username, dn, pk) != 0) {
        refuse_log(full, "username is not deviceName&productKey");
        return MOSQ_ERR_AUTH;
    }
    if (auth_type[0] && strcmp(auth_type, "register") == 0) return register_device(p, ed, full, pk, dn, method, random);
    if (auth_type[0] && strcmp(auth_type, "regnwl") == 0) return register_nwl(p, ed, full, pk, dn, method, random);
    if (auth_type[0]) {
        snprintf(reason, sizeof reason, "authType=%s is not supported by this stand-in (register, regnwl, connwl)", auth_type);
        refuse_log(full, reason);
        return MOSQ_ERR_AUTH;
    }
    const struct device *d = find(p, pk, dn);
    if (d == NULL) {
        snprintf(reason, sizeof reason, "no device %s in product %s in the registry", dn, pk);
        refuse_log(full, reason);
        return MOSQ_ERR_AUTH;
    }
    char content[512], expected[65];
    snprintf(content, sizeof content, "clientId%sdeviceName%sproductKey%s%s%s", client, dn, pk,
             timestamp[0] ? "timestamp" : "", timestamp);
    if (sign(method, d->secret, content, expected) != 0 || ed->password == NULL || strcmp(expected, ed->password) != 0) {
        snprintf(reason, sizeof reason, "signature mismatch for %s/%s (%s over \"%s\"): wrong device secret, sign method or parameters",
                 pk, dn, method, content);
        refuse_log(full, reason);
        return MOSQ_ERR_AUTH;
    }
    mosquitto_log_printf(MOSQ_LOG_INFO, "wisp-platform: accepted %s as %s/%s", full, pk, dn);
    return MOSQ_ERR_SUCCESS;
}

// A device's own topics: /sys/{pk}/{dn}/..., /ext/ntp/{pk}/{dn}/..., /{pk}/{dn}/user/...,
// and its OTA topics.
static int own_topic(const char *topic, const char *pk, const char *dn) {
    char prefix[3][200];
    snprintf(prefix[0], sizeof prefix[0], "/sys/%s/%s/", pk, dn);
    snprintf(prefix[1], sizeof prefix[1], "/ext/ntp/%s/%s/", pk, dn);
    snprintf(prefix[2], sizeof prefix[2], "/%s/%s/user/", pk, dn);
    for (int i = 0; i < 3; i++)
        if (strncmp(topic, prefix[i], strlen(prefix[i])) == 0) return 1;
    // OTA: /ota/device/{inform,upgrade,progress}/{pk}/{dn}, exactly.
    static const char *const ota[] = {"inform", "upgrade", "progress"};
    for (size_t i = 0; i < sizeof ota / sizeof ota[0]; i++) {
        char exact[200];
        snprintf(exact, sizeof exact, "/ota/device/%s/%s/%s", ota[i], pk, dn);
        if (strcmp(topic, exact) == 0) return 1;
    }
    return 0;
}

static int on_acl_check(int event, void *event_data, void *userdata) {
    (void)event;
    (void)userdata;
    struct mosquitto_evt_acl_check *ed = event_data;
    char dn[65], pk[65];
    if (split_username(mosquitto_client_username(ed->client), dn, pk) != 0) return MOSQ_ERR_ACL_DENIED;
    if (own_topic(ed->topic, pk, dn)) return MOSQ_ERR_SUCCESS;
    if (ed->access == MOSQ_ACL_READ && (strcmp(ed->topic, "/ext/register") == 0 || strcmp(ed->topic, "/ext/regnwl") == 0)) return MOSQ_ERR_SUCCESS;
    char reason[600];
    snprintf(reason, sizeof reason, "%s on topic %s, which is not this device's (/sys/%s/%s/#, /ext/ntp/%s/%s/#, /%s/%s/user/#)",
             ed->access == MOSQ_ACL_SUBSCRIBE ? "subscribe" : ed->access == MOSQ_ACL_WRITE ? "publish" : "read",
             ed->topic, pk, dn, pk, dn, pk, dn);
    refuse_log(mosquitto_client_id(ed->client), reason);
    return MOSQ_ERR_ACL_DENIED;
}

static long long now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

// Answers NTP requests and acknowledges property posts and history batches (checked), as
// the platform does.
static int on_message(int event, void *event_data, void *userdata) {
    (void)event;
    (void)userdata;
    struct mosquitto_evt_message *ed = event_data;
    char dn[65], pk[65];
    if (split_username(mosquitto_client_username(ed->client), dn, pk) != 0) return MOSQ_ERR_SUCCESS;
    if (console_log_message(ed, pk, dn) || console_deviceinfo_message(ed, pk, dn) || console_event_message(ed, pk, dn)) return MOSQ_ERR_SUCCESS;
    char topic[256], payload[512];
    snprintf(topic, sizeof topic, "/ext/ntp/%s/%s/request", pk, dn);
    if (strcmp(ed->topic, topic) == 0) {
        long long t = now_ms();
        char send_time[32] = "0";
        const char *at = ed->payloadlen < 400 ? memmem(ed->payload, ed->payloadlen, "\"deviceSendTime\":\"", 18) : NULL;
        if (at) sscanf(at + 18, "%31[0-9]", send_time);
        snprintf(topic, sizeof topic, "/ext/ntp/%s/%s/response", pk, dn);
        int n = snprintf(payload, sizeof payload, "{\"deviceSendTime\":\"%s\",\"serverRecvTime\":\"%lld\",\"serverSendTime\":\"%lld\"}",
                         send_time, t, t);
        mosquitto_broker_publish_copy(mosquitto_client_id(ed->client), topic, n, payload, 0, false, NULL);
        return MOSQ_ERR_SUCCESS;
    }
    snprintf(topic, sizeof topic, "/sys/%s/%s/thing/event/property/post", pk, dn);
    if (strcmp(ed->topic, topic) == 0) {
        char id[32] = "0";
        const char *at = ed->payloadlen < 4000 ? memmem(ed->payload, ed->payloadlen, "\"id\":\"", 6) : NULL;
        if (at) sscanf(at + 6, "%31[0-9]", id);
        strcat(topic, "_reply");
        int n = snprintf(payload, sizeof payload,
                         "{\"code\":200,\"data\":{},\"id\":\"%s\",\"message\":\"success\",\"method\":\"thing.event.property.post\",\"version\":\"1.0\"}", id);
        mosquitto_broker_publish_copy(mosquitto_client_id(ed->client), topic, n, payload, 0, false, NULL);
        return MOSQ_ERR_SUCCESS;
    }
    snprintf(topic, sizeof topic, "/sys/%s/%s/thing/event/property/history/post", pk, dn);
    if (strcmp(ed->topic, topic) == 0) {
        // A history batch: the method, a params list naming this very device, a list of samples.
        char id[32] = "0", head[200];
        const char *at = memmem(ed->payload, ed->payloadlen, "\"id\":\"", 6);
        if (at) sscanf(at + 6, "%31[0-9]", id);
        snprintf(head, sizeof head, "\"params\":[{\"identity\":{\"productKey\":\"%s\",\"deviceName\":\"%s\"},\"properties\":[{", pk, dn);
        const char *why = NULL;
        if (!memmem(ed->payload, ed->payloadlen, "\"method\":\"thing.event.property.history.post\"", 44)) why = "method is not thing.event.property.history.post";
        else if (!memmem(ed->payload, ed->payloadlen, head, strlen(head))) why = "params is not a list with this device's identity and its properties";
        int samples = 0;
        for (const char *q = ed->payload, *e = q + ed->payloadlen; !why && (q = memmem(q, e - q, "\"time\":", 7)); q += 7) samples++;
        strcat(topic, "_reply");
        int n = snprintf(payload, sizeof payload,
                         "{\"code\":%d,\"data\":{},\"id\":\"%s\",\"message\":\"%s\",\"method\":\"thing.event.property.history.post\",\"version\":\"1.0\"}",
                         why ? 460 : 200, id, why ? why : "success");
        if (why) refuse_log(mosquitto_client_id(ed->client), why);
        else mosquitto_log_printf(MOSQ_LOG_INFO, "wisp-platform: history post %s from %s accepted (%d values)", id, mosquitto_client_id(ed->client), samples);
        mosquitto_broker_publish_copy(mosquitto_client_id(ed->client), topic, n, payload, 0, false, NULL);
    }
    return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions) {
    for (int i = 0; i < supported_version_count; i++)
        if (supported_versions[i] == 5) return 5;
    return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *opts, int opt_count) {
    struct plugin *p = calloc(1, sizeof *p);
    if (p == NULL) return MOSQ_ERR_NOMEM;
    p->id = identifier;
    for (int i = 0; i < opt_count; i++) {
        if (strcmp(opts[i].key, "registry") == 0) snprintf(p->registry, sizeof p->registry, "%s", opts[i].value);
        else if (strcmp(opts[i].key, "securemode") == 0) p->securemode = atoi(opts[i].value);
        else if (strcmp(opts[i].key, "console") == 0) snprintf(console_dir, sizeof console_dir, "%s", opts[i].value);
    }
    if (p->registry[0] == 0 || (p->securemode != 2 && p->securemode != 3)) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "wisp-platform: needs plugin_opt_registry and plugin_opt_securemode 2|3");
        free(p);
        return MOSQ_ERR_INVAL;
    }
    int rc = load_registry(p);
    if (rc != MOSQ_ERR_SUCCESS) { free(p); return rc; }
    *userdata = p;
    mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, p);
    mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, p);
    mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, on_message, NULL, p);
    return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int opt_count) {
    (void)opts;
    (void)opt_count;
    struct plugin *p = userdata;
    mosquitto_callback_unregister(p->id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
    mosquitto_callback_unregister(p->id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
    mosquitto_callback_unregister(p->id, MOSQ_EVT_MESSAGE, on_message, NULL);
    free(p);
    return MOSQ_ERR_SUCCESS;
}
