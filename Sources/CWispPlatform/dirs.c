// dirs.c — files reached through an open directory, never through a path a second time:
// what the root step (`wisp apply-update`) uses on the service user's staging directory
// and its own. No call follows a symbolic link; every fact comes from fstat of the open
// descriptor. EINTR is retried; errno becomes a negative return value.
#define _GNU_SOURCE
#include "wisp_platform.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int32_t describe(int fd, uint32_t info[5]) {
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    info[0] = (uint32_t)(st.st_mode & 07777) | (S_ISREG(st.st_mode) ? WISP_FILE_REGULAR : 0u)
              | (S_ISDIR(st.st_mode) ? WISP_FILE_DIRECTORY : 0u);
    info[1] = (uint32_t)st.st_uid;
    info[2] = (uint32_t)st.st_gid;
    info[3] = (uint32_t)geteuid();
    info[4] = (uint32_t)st.st_nlink;
    return fd;
}

int32_t wisp_dir_open(const char *path, uint32_t info[5]) {
    int fd;
    do { fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); } while (fd < 0 && errno == EINTR);
    if (fd < 0) return -errno;
    return describe(fd, info);
}

int32_t wisp_at_open_read(int32_t dir, const char *name, uint32_t info[5]) {
    int fd;
    // O_NONBLOCK: a FIFO planted under the name must not hang the open; cleared below.
    do { fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC); } while (fd < 0 && errno == EINTR);
    if (fd < 0) return -errno;
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return describe(fd, info);
}

int32_t wisp_at_exists(int32_t dir, const char *name) {
    struct stat st;
    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
    return 1;
}

int32_t wisp_at_create(int32_t dir, const char *name, uint32_t mode) {
    int fd;
    do { fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode); } while (fd < 0 && errno == EINTR);
    if (fd < 0) return -errno;
    if (fchmod(fd, (mode_t)mode) != 0) {  // not narrowed by the umask
        int err = errno;
        close(fd);
        (void)unlinkat(dir, name, 0);
        return -err;
    }
    return fd;
}

int32_t wisp_at_unlink(int32_t dir, const char *name) {
    if (unlinkat(dir, name, 0) != 0) return -errno;
    return 0;
}

int32_t wisp_at_rename(int32_t dir, const char *from, const char *to) {
    if (renameat(dir, from, dir, to) != 0) return -errno;
    return 0;
}

int64_t wisp_copy_fd(int32_t from, int32_t to, int64_t limit) {
    uint8_t buf[16384];
    int64_t total = 0;
    if (lseek(from, 0, SEEK_SET) < 0) return -errno;
    for (;;) {
        ssize_t n = read(from, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) return total;
        if (n > limit - total) return -EFBIG;
        int r = wisp_write_all(to, buf, (size_t)n);
        if (r < 0) return r;
        total += n;
    }
}
