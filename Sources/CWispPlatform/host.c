// host.c — what the device-info update says about the host: the kernel's release and
// machine (uname(2)) and an interface's IPv4 address (SIOCGIFADDR). Read once per connect.
#define _GNU_SOURCE
#include "wisp_platform.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

int32_t wisp_uname(char *release, size_t release_cap, char *machine, size_t machine_cap) {
    struct utsname u;
    if (uname(&u) != 0) return -errno;
    snprintf(release, release_cap, "%s", u.release);
    snprintf(machine, machine_cap, "%s", u.machine);
    return 0;
}

int32_t wisp_interface_ipv4(const char *name, char *out, size_t cap) {
    if (strlen(name) >= IFNAMSIZ) return -EINVAL;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, name, strlen(name));
    int r = ioctl(fd, SIOCGIFADDR, &ifr);
    int err = errno;
    close(fd);
    if (r != 0) return -err;
    const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)&ifr.ifr_addr;
    if (a->sin_family != AF_INET || inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)cap) == NULL) return -EAFNOSUPPORT;
    return 0;
}
