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
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

// A connection being opened: the resolved addresses, the one being tried, the last error.
struct wisp_connect {
    struct addrinfo *list;
    struct addrinfo *next;
    int fd;
    int last;
    char host[256];
    uint16_t port;
};

void *wisp_connect_start(const char *host, uint16_t port, char *err, size_t err_cap) {
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    struct addrinfo *list = NULL;
    int g = getaddrinfo(host, service, &hints, &list);  // the one blocking step (resolv.conf bounds it)
    if (g != 0) {
        snprintf(err, err_cap, "cannot resolve %s: %s", host, g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
        return NULL;
    }
    struct wisp_connect *c = calloc(1, sizeof *c);
    if (c == NULL) {
        freeaddrinfo(list);
        snprintf(err, err_cap, "out of memory");
        return NULL;
    }
    c->list = list;
    c->next = list;
    c->fd = -1;
    c->last = EHOSTUNREACH;
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    return c;
}

int32_t wisp_connect_step(void *ctx, char *err, size_t err_cap) {
    struct wisp_connect *c = ctx;
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
    while (c->next != NULL) {
        struct addrinfo *ai = c->next;
        c->next = ai->ai_next;
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            c->last = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) return fd;
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

int32_t wisp_connect_fd(void *ctx) { return ((struct wisp_connect *)ctx)->fd; }

void wisp_connect_free(void *ctx) {
    struct wisp_connect *c = ctx;
    if (c == NULL) return;
    if (c->fd >= 0) close(c->fd);
    freeaddrinfo(c->list);
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

int32_t wisp_poll(int32_t fd, int32_t events, int32_t signal_fd, int32_t timeout_ms) {
    struct pollfd p[2];
    int n = 0;
    int sock = -1, sig = -1;
    if (fd >= 0) {
        p[n].fd = fd;
        p[n].events = (short)(((events & 1) ? POLLIN : 0) | ((events & 2) ? POLLOUT : 0));
        p[n].revents = 0;
        sock = n++;
    }
    if (signal_fd >= 0) {
        p[n].fd = signal_fd;
        p[n].events = POLLIN;
        p[n].revents = 0;
        sig = n++;
    }
    int r = poll(p, (nfds_t)n, timeout_ms);
    if (r < 0) return errno == EINTR ? 0 : -errno;
    int32_t mask = 0;
    if (sock >= 0) {
        if (p[sock].revents & POLLIN) mask |= 1;
        if (p[sock].revents & POLLOUT) mask |= 2;
        if (p[sock].revents & (POLLERR | POLLHUP | POLLNVAL)) mask |= 4;
    }
    if (sig >= 0 && (p[sig].revents & POLLIN)) mask |= 8;
    return mask;
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
