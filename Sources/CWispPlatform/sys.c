// sys.c — files, environment, clocks, process: libc in one audited place.
// EINTR is retried here; errno becomes a negative return value here, once.
#define _GNU_SOURCE
#include "wisp_platform.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

void wisp_release_free_heap(void) {
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

int wisp_write_all(int32_t fd, const uint8_t *buf, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        done += (size_t)n;
    }
    return 0;
}

int64_t wisp_read_file(const char *path, uint8_t *buf, size_t cap) {
    int fd = wisp_open_read(path);
    if (fd < 0) return fd;
    int64_t n = wisp_read_fd(fd, buf, cap);
    close(fd);
    return n;
}

// Up to `cap` bytes from `fd`, fewer only at the end of the file: the length, or -errno.
static int64_t read_up_to(int fd, uint8_t *buf, size_t cap) {
    size_t done = 0;
    while (done < cap) {
        ssize_t n = read(fd, buf + done, cap - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) break;
        done += (size_t)n;
    }
    return (int64_t)done;
}

int64_t wisp_read_head(const char *path, uint8_t *buf, size_t cap) {
    int fd = wisp_open_read(path);
    if (fd < 0) return fd;
    int64_t n = read_up_to(fd, buf, cap);
    close(fd);
    return n;
}

int32_t wisp_file_mode(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return -errno;
    return (int32_t)(st.st_mode & 07777);
}

int32_t wisp_open_secret(const char *path, uint32_t info[5]) {
    int fd;
    do { fd = open(path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC); } while (fd < 0 && errno == EINTR);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    info[0] = (uint32_t)(st.st_mode & 07777) | (S_ISREG(st.st_mode) ? 0x10000u : 0u);
    info[1] = (uint32_t)st.st_uid;
    info[2] = (uint32_t)st.st_gid;
    info[3] = (uint32_t)geteuid();
    info[4] = (uint32_t)getegid();
    return fd;
}

int64_t wisp_read_fd(int32_t fd, uint8_t *buf, size_t cap) {
    int64_t done = read_up_to(fd, buf, cap);
    if (done < 0 || (size_t)done < cap) return done;
    uint8_t extra;  // full: one more byte says whether the file is larger
    ssize_t more;
    do { more = read(fd, &extra, 1); } while (more < 0 && errno == EINTR);
    return more > 0 ? -EFBIG : done;
}

int32_t wisp_getenv(const char *name, char *buf, size_t cap) {
    const char *v = getenv(name);
    if (v == NULL) return -1;
    size_t n = strlen(v);
    if (n + 1 > cap) return -1;
    memcpy(buf, v, n + 1);
    return (int32_t)n;
}

static uint64_t clock_ms(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t wisp_monotonic_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
uint64_t wisp_realtime_ms(void) { return clock_ms(CLOCK_REALTIME); }

int64_t wisp_read_sensor(const char *path, uint8_t *buf, size_t cap, int32_t kernel_only) {
    // Looked at through an O_PATH descriptor first: opening a device or a FIFO for reading
    // has effects (a watchdog armed, a serial line's DTR toggled) or blocks. The checks hold
    // for the very inode that is then opened (through /proc/self/fd), wherever the path led.
    int pfd;
    do { pfd = open(path, O_PATH | O_CLOEXEC); } while (pfd < 0 && errno == EINTR);
    if (pfd < 0) return -errno;
    struct stat st;
    struct statfs fs;
    if (fstat(pfd, &st) != 0) {
        int err = errno;
        close(pfd);
        return -err;
    }
    int kernel = fstatfs(pfd, &fs) == 0 && (fs.f_type == 0x62656572 /* SYSFS_MAGIC */ || fs.f_type == 0x9fa0 /* PROC_SUPER_MAGIC */);
    if (kernel_only ? !kernel : !(S_ISREG(st.st_mode) || kernel)) {
        close(pfd);
        return kernel_only ? -WISP_ENOTKERNELFS : -WISP_ENOTREG;
    }
    char same[40];
    snprintf(same, sizeof same, "/proc/self/fd/%d", pfd);
    int fd;
    do { fd = open(same, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC); } while (fd < 0 && errno == EINTR);
    int err = errno;
    close(pfd);
    if (fd < 0) return -err;
    int64_t n = read_up_to(fd, buf, cap);
    close(fd);
    return n;
}

void wisp_strerror(int32_t err, char *buf, size_t cap) {
    if (cap == 0) return;
    const char *s = err == WISP_ENOTREG ? "not a regular file (a FIFO or a device would stall the loop)"
                  : err == WISP_ENOTKERNELFS ? "not a file of sysfs or procfs (a remote config's file: sensor reads only those)"
                  : strerror(err);
    size_t n = strlen(s);
    if (n + 1 > cap) n = cap - 1;
    memcpy(buf, s, n);
    buf[n] = 0;
}

void wisp_exit(int32_t code) { exit(code); }

int64_t wisp_list_dir(const char *path, uint8_t *buf, size_t cap) {
    DIR *dir = opendir(path);
    if (dir == NULL) return -errno;
    size_t used = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        const char *name = entry->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
        size_t n = strlen(name) + 1;
        if (used + n > cap) continue;
        memcpy(buf + used, name, n);
        used += n;
    }
    closedir(dir);
    return (int64_t)used;
}

#ifndef WISP_GIT_REV
#define WISP_GIT_REV "unknown"
#endif

// wisp's version, once, behind a marker: `strings wisp | grep wisp-version=` finds it in a
// binary, scripts/package reads it here, and the OTA tests make a "newer" build by
// rewriting it in a copy of the binary.
static const char version_marker[] = "wisp-version=0.1.0";

const char *wisp_version(void) { return version_marker + sizeof "wisp-version=" - 1; }

// The security counter of this build, the same way: the floor of the anti-rollback check
// (an OTA package signed with a lower counter is refused). Raise it with a release that
// fixes a vulnerability; scripts/ota-package signs with it, and the root step reads it
// from the installed binary. Ten digits, so a copy can be rewritten in place.
static const char counter_marker[] = "wisp-ota-counter=0000000000";

const char *wisp_security_counter(void) { return counter_marker + sizeof "wisp-ota-counter=" - 1; }

const char *wisp_build_revision(void) { return WISP_GIT_REV; }

const char *wisp_build_triple(void) {
#if defined(__aarch64__)
    return "aarch64-linux-gnu";
#elif defined(__arm__) && defined(__ARM_PCS_VFP)
    return "armv7-linux-gnueabihf";
#elif defined(__arm__)
    return "arm-linux-gnueabi";
#elif defined(__x86_64__)
    return "x86_64-linux-gnu";
#else
    return "unknown-linux";
#endif
}

static int saved_argc;
static char **saved_argv;

// glibc passes (argc, argv, envp) to constructors; this keeps them for wisp_argv.
__attribute__((constructor)) static void wisp_capture_args(int argc, char **argv, char **envp) {
    (void)envp;
    saved_argc = argc;
    saved_argv = argv;
}

int32_t wisp_argc(void) { return saved_argc; }

const char *wisp_argv(int32_t index) {
    return (index >= 0 && index < saved_argc) ? saved_argv[index] : "";
}

int32_t wisp_write_file(const char *path, const uint8_t *buf, size_t len) {
    int fd;
    do { fd = open(path, O_WRONLY | O_CLOEXEC); } while (fd < 0 && errno == EINTR);
    if (fd < 0) return -errno;
    int r = wisp_write_all(fd, buf, len);
    close(fd);
    return r;
}

int64_t wisp_fs_free(const char *path) {
    struct statvfs st;
    if (statvfs(path, &st) != 0) return -errno;
    return (int64_t)st.f_bavail * (int64_t)st.f_frsize;
}

int32_t wisp_open_append(const char *path) {
    int fd;
    do { fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600); } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

int32_t wisp_open_read(const char *path) {
    int fd;
    do { fd = open(path, O_RDONLY | O_CLOEXEC); } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

int32_t wisp_open_new(const char *path) {
    int fd;
    do { fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600); } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

int64_t wisp_read(int32_t fd, uint8_t *buf, size_t cap) {
    ssize_t n;
    do { n = read(fd, buf, cap); } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : (int64_t)n;
}

int64_t wisp_pread(int32_t fd, uint8_t *buf, size_t cap, int64_t offset) {
    if (offset < 0 || cap > (size_t)INT64_MAX || offset > INT64_MAX - (int64_t)cap) return -EINVAL;
    size_t done = 0;
    while (done < cap) {
        int64_t at = offset + (int64_t)done;
        if ((int64_t)(off_t)at != at) return -EOVERFLOW;  // a 32-bit off_t (armhf)
        ssize_t n = pread(fd, buf + done, cap - done, (off_t)at);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) break;
        done += (size_t)n;
    }
    return (int64_t)done;
}

int64_t wisp_fstat_size(int32_t fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return -errno;
    if (!S_ISREG(st.st_mode)) return -EINVAL;
    return (int64_t)st.st_size;
}

int32_t wisp_unlink(const char *path) { return unlink(path) == 0 ? 0 : -errno; }

int32_t wisp_sync_dir(const char *path) {
    int fd;
    do { fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC); } while (fd < 0 && errno == EINTR);
    if (fd < 0) return -errno;
    int r = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return r;
}

int32_t wisp_sync(int32_t fd) { return fdatasync(fd) == 0 ? 0 : -errno; }

int32_t wisp_rename(const char *from, const char *to) { return rename(from, to) == 0 ? 0 : -errno; }

int32_t wisp_truncate(const char *path, int64_t length) { return truncate(path, (off_t)length) == 0 ? 0 : -errno; }

int32_t wisp_run(const char *const *argv, uint8_t *out, size_t out_cap, int64_t *out_len, int32_t timeout_ms) {
    *out_len = 0;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pipefd[0]);
        close(pipefd[1]);
        return -e;
    }
    if (pid == 0) {
        // The child: only async-signal-safe calls until execve.
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) dup2(null, 0);
        dup2(pipefd[1], 1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
        execve(argv[0], (char *const *)argv, envp);
        _exit(127);
    }
    close(pipefd[1]);
    uint64_t deadline = wisp_monotonic_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
    int timed_out = 0;
    for (;;) {
        uint64_t now = wisp_monotonic_ms();
        if (now >= deadline) { timed_out = 1; break; }
        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
        int r = poll(&p, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { timed_out = r == 0; break; }
        uint8_t sink[256];
        size_t room = out_cap - (size_t)*out_len;
        ssize_t n = room > 0 ? read(pipefd[0], out + *out_len, room) : read(pipefd[0], sink, sizeof sink);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (room > 0) *out_len += n;
    }
    close(pipefd[0]);
    if (timed_out) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -errno;
    }
    if (timed_out) return -ETIMEDOUT;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -ECHILD;
}

int32_t wisp_chmod(const char *path, uint32_t mode) { return chmod(path, (mode_t)mode) == 0 ? 0 : -errno; }

int32_t wisp_mkdir(const char *path, uint32_t mode) {
    if (mkdir(path, (mode_t)mode) == 0) return 0;
    int e = errno;
    struct stat st;
    if (e == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    return -e;
}

int64_t wisp_file_size(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return -errno;
    if (S_ISLNK(st.st_mode)) return -ELOOP;
    return (int64_t)st.st_size;
}

int32_t wisp_self_path(char *buf, size_t cap) {
    if (cap == 0) return -ENAMETOOLONG;
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    if (n < 0) return -errno;
    if ((size_t)n >= cap - 1) return -ENAMETOOLONG;
    buf[n] = 0;
    return (int32_t)n;
}
