// notify.c — the sd_notify protocol spoken directly: one datagram per state change to
// the AF_UNIX socket named by $NOTIFY_SOCKET ('@' prefix: abstract namespace).
#define _GNU_SOURCE
#include "wisp_platform.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int32_t wisp_sd_notify(const char *state) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0') return 0;
    size_t len = strlen(path);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (len >= sizeof addr.sun_path || (path[0] != '/' && path[0] != '@')) return -EINVAL;
    memcpy(addr.sun_path, path, len);
    if (path[0] == '@') addr.sun_path[0] = '\0';
    socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    ssize_t n;
    do {
        n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len);
    } while (n < 0 && errno == EINTR);
    int err = errno;
    close(fd);
    return n < 0 ? -err : 1;
}

uint64_t wisp_sd_watchdog_usec(void) {
    const char *usec = getenv("WATCHDOG_USEC");
    if (usec == NULL) return 0;
    const char *pid = getenv("WATCHDOG_PID");
    if (pid != NULL && strtol(pid, NULL, 10) != (long)getpid()) return 0;
    return strtoull(usec, NULL, 10);
}
