// count-sub: the throughput bench's receiving end (Tests/harness/bench). A subscriber that does
// nothing but count: MQTT 3.1.1 over plain TCP to 127.0.0.1:PORT, SUBSCRIBE to TOPIC at QoS 0,
// then it reads in 64 KiB gulps and counts PUBLISH packets until COUNT arrived or nothing
// came for TIMEOUT seconds. It prints "RECEIVED SECONDS": SECONDS from the first PUBLISH to
// the last, so a publisher's rate is RECEIVED-1 over SECONDS, its connect excluded.
// (mosquitto_sub formats and writes every message and took more CPU than the broker: at
// wisp's rate it, not the publisher, set the pace.)
//
//   count-sub PORT TOPIC COUNT TIMEOUT      prints "ready" on stderr once subscribed
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int write_all(int fd, const unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: count-sub PORT TOPIC COUNT TIMEOUT\n");
        return 64;
    }
    int port = atoi(argv[1]), timeout = atoi(argv[4]);
    const char *topic = argv[2];
    long want = atol(argv[3]);
    size_t tl = strlen(topic);
    if (tl > 200) return 64;

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("count-sub: connect");
        return 69;
    }
    // CONNECT: protocol MQTT level 4, clean session, keep-alive 120 s, client id "count-sub".
    static const unsigned char connect_packet[] = {0x10, 21, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 120,
                                                   0, 9, 'c', 'o', 'u', 'n', 't', '-', 's', 'u', 'b'};
    unsigned char sub[256] = {0x82, (unsigned char)(2 + 2 + tl + 1), 0, 1, 0, (unsigned char)tl};
    memcpy(sub + 6, topic, tl);
    sub[6 + tl] = 0;  // QoS 0
    if (write_all(fd, connect_packet, sizeof connect_packet) || write_all(fd, sub, 7 + tl)) {
        perror("count-sub: write");
        return 69;
    }

    static unsigned char buf[65536 + 8];
    size_t have = 0;
    long got = 0;
    int subscribed = 0;
    double first = 0, last = 0;
    while (got < want) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, timeout * 1000) <= 0) break;
        ssize_t n = read(fd, buf + have, sizeof buf - 8 - have);
        if (n <= 0) break;
        have += (size_t)n;
        double t = now();
        size_t at = 0;
        for (;;) {  // whole packets: type byte, remaining length (1-4 bytes), body
            size_t len = 0, i = 1;
            int shift = 0, complete = 0;
            while (at + i < have && i <= 4) {
                unsigned char b = buf[at + i++];
                len |= (size_t)(b & 0x7F) << shift;
                shift += 7;
                if (!(b & 0x80)) {
                    complete = 1;
                    break;
                }
            }
            if (!complete || at + i + len > have) break;
            unsigned char type = buf[at] >> 4;
            if (type == 3) {
                if (got++ == 0) first = t;
                last = t;
            } else if (type == 9 && !subscribed) {
                subscribed = 1;
                fprintf(stderr, "ready\n");
            }
            at += i + len;
        }
        if (at == 0 && have >= sizeof buf - 8) {
            fprintf(stderr, "count-sub: a packet larger than 64 KiB\n");
            return 1;
        }
        memmove(buf, buf + at, have - at);
        have -= at;
    }
    printf("%ld %.6f\n", got, last - first);
    return got == want ? 0 : 1;
}
