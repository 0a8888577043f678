// net.c — TCP sockets, poll and signals. Non-blocking everywhere; EINTR retried here.
#define _GNU_SOURCE
#include "wisp_platform.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

// A connection being opened. A host name is resolved by a forked child (getaddrinfo
// blocks, and wisp has no threads): the child writes the addresses into a pipe and exits,
// and the parent polls the pipe like any socket, so signals and timers go on meanwhile.
// An address literal needs no child.
#define WISP_MAX_ADDRESSES 16
struct wisp_address {
    int family;
    socklen_t len;
    struct sockaddr_storage addr;
};
struct wisp_connect {
    pid_t resolver;           // > 0 while the child runs
    int pipe;                 // its answer, read end (non-blocking), or -1
    size_t received;          // bytes of `answer` read so far
    union {
        struct wisp_address list[WISP_MAX_ADDRESSES];
        unsigned char bytes[WISP_MAX_ADDRESSES * sizeof(struct wisp_address)];
    } answer;
    int count;                // addresses in answer.list
    int next;                 // the next one to try
    int fd;
    int last;
    char host[256];
    uint16_t port;
};

// Resolves into `out`: how many addresses, or -1 with getaddrinfo's error in *error.
static int resolve(const char *host, uint16_t port, int flags, struct wisp_address *out, int *error) {
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = flags};
    struct addrinfo *list = NULL;
    int g = getaddrinfo(host, service, &hints, &list);
    if (g != 0) {
        *error = g;
        return -1;
    }
    int n = 0;
    for (struct addrinfo *ai = list; ai != NULL && n < WISP_MAX_ADDRESSES; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof out[n].addr) continue;
        out[n].family = ai->ai_family;
        out[n].len = ai->ai_addrlen;
        memcpy(&out[n].addr, ai->ai_addr, ai->ai_addrlen);
        n++;
    }
    freeaddrinfo(list);
    return n;
}

// RFC 6761 §6.3: `localhost` and names under it are the loopback addresses, answered
// here without asking anyone (127.0.0.1 first: what local brokers listen on).
static int localhost(const char *host, uint16_t port, struct wisp_address *out) {
    size_t n = strlen(host);
    if (n > 0 && host[n - 1] == '.') n--;
    int match = (n == 9 && strncasecmp(host, "localhost", 9) == 0) ||
                (n > 10 && strncasecmp(host + n - 10, ".localhost", 10) == 0);
    if (!match) return 0;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out[0].addr;
    memset(&out[0], 0, 2 * sizeof *out);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    out[0].family = AF_INET;
    out[0].len = sizeof *v4;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out[1].addr;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    v6->sin6_addr = in6addr_loopback;
    out[1].family = AF_INET6;
    out[1].len = sizeof *v6;
    return 2;
}

static void stop_resolver(struct wisp_connect *c) {
    if (c->pipe >= 0) close(c->pipe);
    c->pipe = -1;
    if (c->resolver > 0) {
        kill(c->resolver, SIGKILL);
        while (waitpid(c->resolver, NULL, 0) < 0 && errno == EINTR) {}
    }
    c->resolver = 0;
}

void *wisp_connect_start(const char *host, uint16_t port, char *err, size_t err_cap) {
    if (strlen(host) >= sizeof ((struct wisp_connect *)0)->host) {
        snprintf(err, err_cap, "cannot resolve a host name of %zu bytes", strlen(host));
        return NULL;
    }
    struct wisp_connect *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, err_cap, "out of memory");
        return NULL;
    }
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    c->fd = -1;
    c->pipe = -1;
    c->last = EHOSTUNREACH;
    int g = 0;
    int n = resolve(host, port, AI_NUMERICHOST, c->answer.list, &g);
    if (n < 0) n = localhost(host, port, c->answer.list);
    if (n > 0) {
        c->count = n;
        return c;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(err, err_cap, "cannot resolve %s: pipe: %s", host, strerror(errno));
        free(c);
        return NULL;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, err_cap, "cannot resolve %s: fork: %s", host, strerror(errno));
        close(p[0]);
        close(p[1]);
        free(c);
        return NULL;
    }
    if (pid == 0) {  // the child: one getaddrinfo, the answer, gone
        close(p[0]);
        struct wisp_address *list = c->answer.list;
        int got = resolve(host, port, AI_ADDRCONFIG, list, &g);
        ssize_t w;
        if (got < 0) {  // the error alone: shorter than one address record
            do { w = write(p[1], &g, sizeof g); } while (w < 0 && errno == EINTR);
        } else {
            size_t off = 0, total = (size_t)got * sizeof *list;
            while (off < total) {
                w = write(p[1], c->answer.bytes + off, total - off);
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) break;
                off += (size_t)w;
            }
        }
        free(c);
        _exit(0);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    c->resolver = pid;
    c->pipe = p[0];
    return c;
}

// Reads the child's answer: 1 when complete (c->count set), 0 while pending, -1 with `err`.
static int read_answer(struct wisp_connect *c, char *err, size_t err_cap) {
    for (;;) {
        if (c->received >= sizeof c->answer.bytes) break;
        ssize_t n = read(c->pipe, c->answer.bytes + c->received, sizeof c->answer.bytes - c->received);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 0;
        if (n < 0) {
            snprintf(err, err_cap, "cannot resolve %s: %s", c->host, strerror(errno));
            stop_resolver(c);
            return -1;
        }
        if (n == 0) break;
        c->received += (size_t)n;
    }
    stop_resolver(c);  // it has written everything and exits: the wait is immediate
    if (c->received == sizeof(int)) {
        int code;
        memcpy(&code, c->answer.bytes, sizeof code);
        snprintf(err, err_cap, "cannot resolve %s: %s", c->host, gai_strerror(code));
        return -1;
    }
    if (c->received == 0 || c->received % sizeof(struct wisp_address) != 0) {
        snprintf(err, err_cap, "cannot resolve %s: no address", c->host);
        return -1;
    }
    c->count = (int)(c->received / sizeof(struct wisp_address));
    return 1;
}

int32_t wisp_connect_step(void *ctx, char *err, size_t err_cap) {
    struct wisp_connect *c = ctx;
    if (c->pipe >= 0) {
        int r = read_answer(c, err, err_cap);
        if (r == 0) return WISP_CONNECT_PENDING;
        if (r < 0) return -1;
    }
    if (c->fd >= 0) {
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        int r;
        do { r = poll(&p, 1, 0); } while (r < 0 && errno == EINTR);
        if (r == 0) return WISP_CONNECT_PENDING;
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = errno;
        if (soerr == 0) {
            int fd = c->fd;
            c->fd = -1;
            return fd;
        }
        close(c->fd);
        c->fd = -1;
        c->last = soerr;
    }
    while (c->next < c->count) {
        struct wisp_address *ai = &c->answer.list[c->next++];
        int fd = socket(ai->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            c->last = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (struct sockaddr *)&ai->addr, ai->len) == 0) return fd;
        if (errno == EINPROGRESS) {
            c->fd = fd;
            return WISP_CONNECT_PENDING;
        }
        c->last = errno;
        close(fd);
    }
    snprintf(err, err_cap, "connect to %s port %u failed: %s", c->host, (unsigned)c->port, strerror(c->last));
    return -1;
}

int32_t wisp_connect_fd(void *ctx) {
    struct wisp_connect *c = ctx;
    return c->pipe >= 0 ? c->pipe : c->fd;
}

int32_t wisp_connect_resolving(void *ctx) { return ((struct wisp_connect *)ctx)->pipe >= 0; }

void wisp_connect_free(void *ctx) {
    struct wisp_connect *c = ctx;
    if (c == NULL) return;
    stop_resolver(c);
    if (c->fd >= 0) close(c->fd);
    free(c);
}

int64_t wisp_tcp_send(int32_t fd, const uint8_t *buf, size_t len) {
    for (;;) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -errno;
    }
}

int64_t wisp_tcp_recv(int32_t fd, uint8_t *buf, size_t cap) {
    for (;;) {
        ssize_t n = recv(fd, buf, cap, 0);
        if (n > 0) return n;
        if (n == 0) return WISP_IO_CLOSED;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -errno;
    }
}

int32_t wisp_poll(const int32_t *fds, const int32_t *events, int32_t *ready, int32_t n, int32_t timeout_ms) {
    struct pollfd p[WISP_POLL_MAX];
    if (n < 0 || n > WISP_POLL_MAX) return -EINVAL;
    for (int32_t i = 0; i < n; i++) {
        p[i].fd = fds[i];  // poll(2) skips a negative descriptor
        p[i].events = (short)(((events[i] & 1) ? POLLIN : 0) | ((events[i] & 2) ? POLLOUT : 0));
        p[i].revents = 0;
    }
    int r = poll(p, (nfds_t)n, timeout_ms);
    if (r < 0) return errno == EINTR ? 0 : -errno;
    for (int32_t i = 0; i < n; i++) {
        int32_t m = 0;
        if (p[i].revents & POLLIN) m |= 1;
        if (p[i].revents & POLLOUT) m |= 2;
        if (p[i].revents & (POLLERR | POLLHUP | POLLNVAL)) m |= 4;
        ready[i] = m;
    }
    return r;
}

int32_t wisp_close(int32_t fd) { return close(fd) == 0 ? 0 : -errno; }

int32_t wisp_signals_open(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigset_t block = set;
    sigaddset(&block, SIGPIPE);
    if (sigprocmask(SIG_BLOCK, &block, NULL) != 0) return -errno;
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int32_t wisp_signal_next(int32_t fd) {
    struct signalfd_siginfo info;
    for (;;) {
        ssize_t n = read(fd, &info, sizeof info);
        if (n == (ssize_t)sizeof info) return (int32_t)info.ssi_signo;
        if (n < 0 && errno == EINTR) continue;
        return 0;
    }
}
