// The console's side of the stand-in platform: what the IoT Platform's console answers and
// checks beyond the sign-in and the posts (plugin.c): device logs and their switch
// (console_log.c), device info (console_deviceinfo.c), events and wisp's health
// (console_event.c). Each handler returns 1 when the
// message was its own (answered or refused), 0 otherwise.
#pragma once
#include <stdbool.h>
#include <string.h>
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

// A device's message on one of its own topics (pk, dn from its user name).
int console_log_message(struct mosquitto_evt_message *ed, const char *pk, const char *dn);
int console_deviceinfo_message(struct mosquitto_evt_message *ed, const char *pk, const char *dn);
int console_event_message(struct mosquitto_evt_message *ed, const char *pk, const char *dn);
// Where the console keeps its switches (plugin_opt_console DIR).
extern char console_dir[512];

// Publishes `json` to the sender of `ed` on `topic`, QoS 0.
static inline void console_reply(struct mosquitto_evt_message *ed, const char *topic, const char *json) {
    mosquitto_broker_publish_copy(mosquitto_client_id(ed->client), topic, (int)strlen(json), json, 0, false, NULL);
}
