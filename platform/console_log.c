// thing.log.post and the log switch (thing.config.log.get, thing.config.log.push): checked
// and answered as the platform does (console.h).
//
// The switch of each device is the file CONSOLE_DIR/log-switch.PK.DN holding 1 (on) or 0;
// no file: off, as on the platform until someone turns it on. `platform/push log` writes it
// and publishes the push (through the plain TCP listener, which this plugin does not see).
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "console.h"

char console_dir[512];

static int log_switch(const char *pk, const char *dn) {
    char path[700];
    snprintf(path, sizeof path, "%s/log-switch.%s.%s", console_dir, pk, dn);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int c = fgetc(f);
    fclose(f);
    return c == '1';
}

// The message's id as the reply's (a decimal string), "0" when it has none.
static void message_id(cJSON *root, char *id, size_t n) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "id");
    snprintf(id, n, "%s", cJSON_IsString(v) && strlen(v->valuestring) < 32 ? v->valuestring : "0");
}

static void reply(struct mosquitto_evt_message *ed, const char *topic, const char *id, const char *method, int code,
                  const char *data, const char *message) {
    char reply_topic[300], payload[1024];
    snprintf(reply_topic, sizeof reply_topic, "%s_reply", topic);
    snprintf(payload, sizeof payload, "{\"code\":%d,\"data\":%s,\"id\":\"%s\",\"message\":\"%s\",\"method\":\"%s\",\"version\":\"1.0\"}",
             code, data, id, message, method);
    console_reply(ed, reply_topic, payload);
}

static int is_string(cJSON *o, const char *key) { return cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, key)); }

// 2026-12-06T03:40:12.123+0000
static int utc_time_ok(const char *s) {
    const char *form = "dddd-dd-ddTdd:dd:dd.ddd+0000";
    if (strlen(s) != strlen(form)) return 0;
    for (size_t i = 0; form[i]; i++)
        if (form[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != form[i]) return 0;
    return 1;
}

// Why a log post is refused, or NULL.
static const char *log_post_refusal(cJSON *root, int *entries) {
    cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "method");
    if (!cJSON_IsString(m) || strcmp(m->valuestring, "thing.log.post") != 0) return "method is not thing.log.post";
    cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "params");
    if (!cJSON_IsArray(params)) return "params is not a list";
    *entries = cJSON_GetArraySize(params);
    if (*entries < 1 || *entries > 40) return "params must hold 1 to 40 entries";
    const char *keys[] = {"utcTime", "logLevel", "module", "code", "traceContext", "logContent"};
    cJSON *e;
    cJSON_ArrayForEach(e, params) {
        if (!cJSON_IsObject(e)) return "an entry is not an object";
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            if (!is_string(e, keys[k])) return "an entry lacks a string utcTime, logLevel, module, code, traceContext or logContent";
        cJSON *child;
        cJSON_ArrayForEach(child, e) if (!cJSON_IsString(child)) return "an entry has a value that is not a string";
        if (!utc_time_ok(cJSON_GetObjectItemCaseSensitive(e, "utcTime")->valuestring)) return "utcTime is not yyyy-MM-ddTHH:mm:ss.SSS+0000";
        const char *level = cJSON_GetObjectItemCaseSensitive(e, "logLevel")->valuestring;
        if (strcmp(level, "FATAL") && strcmp(level, "ERROR") && strcmp(level, "WARN") && strcmp(level, "INFO") && strcmp(level, "DEBUG"))
            return "logLevel is not FATAL, ERROR, WARN, INFO or DEBUG";
        if (strlen(cJSON_GetObjectItemCaseSensitive(e, "module")->valuestring) == 0) return "module is empty";
        if (strlen(cJSON_GetObjectItemCaseSensitive(e, "logContent")->valuestring) > 4096) return "logContent is over 4096 bytes";
    }
    return NULL;
}

int console_log_message(struct mosquitto_evt_message *ed, const char *pk, const char *dn) {
    char get[300], post[300];
    snprintf(get, sizeof get, "/sys/%s/%s/thing/config/log/get", pk, dn);
    snprintf(post, sizeof post, "/sys/%s/%s/thing/log/post", pk, dn);
    int is_get = strcmp(ed->topic, get) == 0, is_post = strcmp(ed->topic, post) == 0;
    if (!is_get && !is_post) return 0;
    const char *client = mosquitto_client_id(ed->client);
    char id[32] = "0";
    cJSON *root = cJSON_ParseWithLength(ed->payload, ed->payloadlen);
    const char *why = root ? NULL : "not JSON";
    if (root) message_id(root, id, sizeof id);
    if (is_get) {
        cJSON *params = root ? cJSON_GetObjectItemCaseSensitive(root, "params") : NULL;
        cJSON *scope = params ? cJSON_GetObjectItemCaseSensitive(params, "configScope") : NULL;
        cJSON *type = params ? cJSON_GetObjectItemCaseSensitive(params, "getType") : NULL;
        cJSON *m = root ? cJSON_GetObjectItemCaseSensitive(root, "method") : NULL;
        if (!why && (!cJSON_IsString(m) || strcmp(m->valuestring, "thing.config.log.get") != 0)) why = "method is not thing.config.log.get";
        if (!why && (!cJSON_IsString(scope) || strcmp(scope->valuestring, "device") != 0 || !cJSON_IsString(type) || strcmp(type->valuestring, "content") != 0))
            why = "params must be {configScope: device, getType: content}";
        int mode = log_switch(pk, dn);
        char data[100];
        snprintf(data, sizeof data, "{\"getType\":\"content\",\"content\":{\"mode\":%d}}", mode);
        reply(ed, get, id, "thing.config.log.get", why ? 460 : 200, why ? "{}" : data, why ? why : "success");
        if (why) mosquitto_log_printf(MOSQ_LOG_NOTICE, "wisp-platform: refused log switch get from %s: %s", client, why);
        else mosquitto_log_printf(MOSQ_LOG_INFO, "wisp-platform: log switch of %s: %s", client, mode ? "on" : "off");
    } else {
        int entries = 0;
        if (!why) why = log_post_refusal(root, &entries);
        if (!why && !log_switch(pk, dn)) why = "the device's log switch is off";
        reply(ed, post, id, "thing.log.post", why ? 460 : 200, "{}", why ? why : "success");
        if (why) mosquitto_log_printf(MOSQ_LOG_NOTICE, "wisp-platform: refused log post %s from %s: %s", id, client, why);
        else mosquitto_log_printf(MOSQ_LOG_INFO, "wisp-platform: log post %s from %s accepted (%d entries)", id, client, entries);
    }
    cJSON_Delete(root);
    return 1;
}
