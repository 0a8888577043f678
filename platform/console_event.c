// Events (thing.event.{identifier}.post): answered as the platform does; wisp's `health`
// event is checked against what README documents (console.h).
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "console.h"

static const char *health_numbers[] = {"connect_ms", "rtt_ms", "reply_ms", "reconnects", "online_s", "backlog", "backlog_oldest_s",
                                       "dropped", "private_dirty_kb", "clock_offset_ms", "uptime_s"};

static const char *event_refusal(cJSON *root, const char *identifier) {
    char method[128];
    snprintf(method, sizeof method, "thing.event.%s.post", identifier);
    cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "method");
    if (!cJSON_IsString(m) || strcmp(m->valuestring, method) != 0) return "method does not name the event of the topic";
    cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "params");
    cJSON *value = cJSON_GetObjectItemCaseSensitive(params, "value");
    if (!cJSON_IsObject(value) || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(params, "time"))) return "params must hold a value object and a time";
    if (strcmp(identifier, "health") != 0) return NULL;
    for (size_t i = 0; i < sizeof health_numbers / sizeof *health_numbers; i++)
        if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(value, health_numbers[i]))) return "health lacks a number it documents";
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(value, "last_disconnect"))) return "health lacks last_disconnect (text)";
    return NULL;
}

int console_event_message(struct mosquitto_evt_message *ed, const char *pk, const char *dn) {
    char prefix[300];
    int n = snprintf(prefix, sizeof prefix, "/sys/%s/%s/thing/event/", pk, dn);
    size_t len = strlen(ed->topic);
    if (strncmp(ed->topic, prefix, n) != 0 || len < (size_t)n + 6 || strcmp(ed->topic + len - 5, "/post") != 0) return 0;
    char identifier[64];
    size_t id_len = len - n - 5;
    if (id_len == 0 || id_len >= sizeof identifier) return 0;
    memcpy(identifier, ed->topic + n, id_len);
    identifier[id_len] = 0;
    if (strchr(identifier, '/') || strcmp(identifier, "property") == 0) return 0;  // property posts: plugin.c
    cJSON *root = cJSON_ParseWithLength(ed->payload, ed->payloadlen);
    const char *why = root ? event_refusal(root, identifier) : "not JSON";
    cJSON *id = root ? cJSON_GetObjectItemCaseSensitive(root, "id") : NULL;
    char reply_topic[300], payload[512];
    snprintf(reply_topic, sizeof reply_topic, "%s_reply", ed->topic);
    snprintf(payload, sizeof payload, "{\"code\":%d,\"data\":{},\"id\":\"%s\",\"message\":\"%s\",\"method\":\"thing.event.%s.post\",\"version\":\"1.0\"}",
             why ? 460 : 200, cJSON_IsString(id) && strlen(id->valuestring) < 32 ? id->valuestring : "0", why ? why : "success", identifier);
    console_reply(ed, reply_topic, payload);
    const char *client = mosquitto_client_id(ed->client);
    if (why) mosquitto_log_printf(MOSQ_LOG_NOTICE, "wisp-platform: refused event %s from %s: %s", identifier, client, why);
    else mosquitto_log_printf(MOSQ_LOG_INFO, "wisp-platform: event %s from %s accepted", identifier, client);
    cJSON_Delete(root);
    return 1;
}
