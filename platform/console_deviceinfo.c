// thing.deviceinfo.update: checked and answered as the platform does (console.h).
//
// On /sys/{pk}/{dn}/thing/deviceinfo/update: the method, and params a list of 1..200
// objects, each with a string attrKey (a letter, then letters, digits or _, at most 30)
// and a string attrValue (1..128 of letters, digits and _ - # @ % & : .). Answered on
// …/update_reply with code 200, or 460 and the reason in `message` (also in the broker's
// log), or 6100 for more than 200 entries.
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "console.h"

#define MAX_ENTRIES 200

static bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool valid_key(const char *k) {
    size_t n = strlen(k);
    if (n == 0 || n > 30 || !is_letter(k[0])) return false;
    for (size_t i = 0; i < n; i++)
        if (!is_letter(k[i]) && !is_digit(k[i]) && k[i] != '_') return false;
    return true;
}

static bool valid_value(const char *v) {
    size_t n = strlen(v);
    if (n == 0 || n > 128) return false;
    for (size_t i = 0; i < n; i++)
        if (!is_letter(v[i]) && !is_digit(v[i]) && !strchr("_-#@%&:.", v[i])) return false;
    return true;
}

// Why the update is refused (into `why`), or 200; 460 or 6100 otherwise.
static int check(const cJSON *root, char *why, size_t cap, int *entries) {
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(root, "method");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "params");
    if (!cJSON_IsString(method) || strcmp(method->valuestring, "thing.deviceinfo.update") != 0) {
        snprintf(why, cap, "method is not thing.deviceinfo.update");
        return 460;
    }
    if (!cJSON_IsArray(params)) {
        snprintf(why, cap, "params is not a list");
        return 460;
    }
    int n = cJSON_GetArraySize(params);
    *entries = n;
    if (n == 0) {
        snprintf(why, cap, "params is empty");
        return 460;
    }
    if (n > MAX_ENTRIES) {
        snprintf(why, cap, "%d entries: at most %d", n, MAX_ENTRIES);
        return 6100;
    }
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, params) {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "attrKey");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "attrValue");
        if (!cJSON_IsObject(e) || !cJSON_IsString(k) || !cJSON_IsString(v)) {
            snprintf(why, cap, "entry %d is not an object with string attrKey and attrValue", i);
            return 460;
        }
        if (!valid_key(k->valuestring)) {
            snprintf(why, cap, "entry %d: attrKey '%.40s' is not a letter then letters, digits or _ (at most 30)", i, k->valuestring);
            return 460;
        }
        if (!valid_value(v->valuestring)) {
            snprintf(why, cap, "entry %d (%s): attrValue is not 1..128 of letters, digits and _-#@%%&:.", i, k->valuestring);
            return 460;
        }
        i++;
    }
    return 200;
}

int console_deviceinfo_message(struct mosquitto_evt_message *ed, const char *pk, const char *dn) {
    char topic[256];
    snprintf(topic, sizeof topic, "/sys/%s/%s/thing/deviceinfo/update", pk, dn);
    if (strcmp(ed->topic, topic) != 0) return 0;
    const char *client = mosquitto_client_id(ed->client);
    char why[200] = "";
    char id[65] = "0";
    int entries = 0, code;
    cJSON *root = cJSON_ParseWithLength(ed->payload, (size_t)ed->payloadlen);
    if (!cJSON_IsObject(root)) {
        snprintf(why, sizeof why, "the update is not a JSON object");
        code = 460;
    } else {
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(root, "id");
        if (cJSON_IsString(i)) snprintf(id, sizeof id, "%s", i->valuestring);
        code = check(root, why, sizeof why, &entries);
    }
    cJSON_Delete(root);

    cJSON *reply = cJSON_CreateObject();
    cJSON_AddStringToObject(reply, "id", id);
    cJSON_AddNumberToObject(reply, "code", code);
    cJSON_AddObjectToObject(reply, "data");
    cJSON_AddStringToObject(reply, "message", code == 200 ? "success" : why);
    cJSON_AddStringToObject(reply, "method", "thing.deviceinfo.update");
    cJSON_AddStringToObject(reply, "version", "1.0");
    char *text = cJSON_PrintUnformatted(reply);
    cJSON_Delete(reply);
    strcat(topic, "_reply");
    if (text) console_reply(ed, topic, text);
    cJSON_free(text);
    if (code == 200)
        mosquitto_log_printf(MOSQ_LOG_INFO, "wisp-platform: device info %s from %s accepted (%d entries)", id, client, entries);
    else
        mosquitto_log_printf(MOSQ_LOG_NOTICE, "wisp-platform: refused %s: device info %s: %s (code %d)", client, id, why, code);
    return 1;
}
