// paho-peer: Paho C's MQTTAsync library driven flat out, the fair peer for `wisp-bench burst`
// (Tests/harness/bench). Not an example CLI reading stdin: COUNT 64-byte messages are handed to
// MQTTAsync_sendMessage as fast as it takes them, with its in-flight window wide open and
// a retry when its buffer is full; it exits once every message completed (QoS 0: written,
// QoS 1: PUBACK received) and the client disconnected.
//
//   paho-peer PORT COUNT QOS        publishes on bench/paho over ws://127.0.0.1:PORT/mqtt
#include <MQTTAsync.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int connected, failed, completed, disconnected;

static void on_connect(void *context, MQTTAsync_successData *response) {
    (void)context;
    (void)response;
    atomic_store(&connected, 1);
}

static void on_connect_failure(void *context, MQTTAsync_failureData *response) {
    (void)context;
    fprintf(stderr, "paho-peer: connect failed: %d\n", response ? response->code : 0);
    atomic_store(&failed, 1);
}

static void on_sent(void *context, MQTTAsync_successData *response) {
    (void)context;
    (void)response;
    atomic_fetch_add(&completed, 1);
}

static void on_send_failure(void *context, MQTTAsync_failureData *response) {
    (void)context;
    (void)response;
    atomic_store(&failed, 1);
}

static void on_disconnect(void *context, MQTTAsync_successData *response) {
    (void)context;
    (void)response;
    atomic_store(&disconnected, 1);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: paho-peer PORT COUNT QOS\n");
        return 64;
    }
    char uri[64];
    snprintf(uri, sizeof uri, "ws://127.0.0.1:%s/mqtt", argv[1]);
    int count = atoi(argv[2]), qos = atoi(argv[3]);

    MQTTAsync client;
    MQTTAsync_createOptions create = MQTTAsync_createOptions_initializer;
    create.maxBufferedMessages = 65535;  // only while disconnected; the queue below is what matters
    if (MQTTAsync_createWithOptions(&client, uri, "paho-peer", MQTTCLIENT_PERSISTENCE_NONE, NULL, &create) != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "paho-peer: cannot create the client\n");
        return 1;
    }
    MQTTAsync_connectOptions conn = MQTTAsync_connectOptions_initializer_ws;
    conn.keepAliveInterval = 60;
    conn.cleansession = 1;
    conn.maxInflight = 65535;  // the in-flight window wide open
    conn.onSuccess = on_connect;
    conn.onFailure = on_connect_failure;
    if (MQTTAsync_connect(client, &conn) != MQTTASYNC_SUCCESS) return 1;
    while (!atomic_load(&connected) && !atomic_load(&failed)) usleep(1000);
    if (atomic_load(&failed)) return 69;

    char payload[64];
    memset(payload, 0x42, sizeof payload);
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_sent;
    ro.onFailure = on_send_failure;
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = payload;
    msg.payloadlen = sizeof payload;
    msg.qos = qos;
    int sent = 0;
    while (sent < count && !atomic_load(&failed)) {
        int rc = MQTTAsync_sendMessage(client, "bench/paho", &msg, &ro);
        if (rc == MQTTASYNC_SUCCESS) {
            sent++;
        } else if (rc == MQTTASYNC_MAX_BUFFERED_MESSAGES || rc == MQTTASYNC_MAX_MESSAGES_INFLIGHT) {
            usleep(100);  // full: let the library drain, then retry the same message
        } else {
            fprintf(stderr, "paho-peer: send failed: %d\n", rc);
            return 1;
        }
    }
    while (atomic_load(&completed) < sent && !atomic_load(&failed)) usleep(1000);
    MQTTAsync_disconnectOptions disc = MQTTAsync_disconnectOptions_initializer;
    disc.onSuccess = on_disconnect;
    MQTTAsync_disconnect(client, &disc);
    for (int i = 0; i < 5000 && !atomic_load(&disconnected); i++) usleep(1000);
    MQTTAsync_destroy(&client);
    printf("burst: %d sent, %d completed\n", sent, atomic_load(&completed));
    return atomic_load(&failed) ? 1 : 0;
}
