// wisp_platform.h — the only C in wisp: libc, POSIX and mbedTLS behind `wisp_` symbols.
//
// Rules for this header: only <stdint.h>/<stddef.h> types cross it (no C enums, no libc
// structs), every function returns 0 or a positive count on success and a negative
// value on failure, and nothing here allocates after start-up except mbedTLS itself.
#ifndef WISP_PLATFORM_H
#define WISP_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: crypto (crypto.c)

#define WISP_HMAC_MD5 0
#define WISP_HMAC_SHA1 1
#define WISP_HMAC_SHA256 2

/// HMAC of `msg` under `key`; writes the digest to `out` and returns its length
/// (16, 20 or 32), or -1 for an unknown method or a too-small `out`.
int wisp_hmac(int32_t method, const uint8_t *key, size_t key_len,
              const uint8_t *msg, size_t msg_len, uint8_t *out, size_t out_cap);

/// SHA-1 of `msg` into `out[20]`. Returns 20, or -1 on failure.
int wisp_sha1(const uint8_t *msg, size_t msg_len, uint8_t *out);

/// A streaming digest (WISP_HMAC_MD5 or WISP_HMAC_SHA256) for a file that arrives in
/// pieces; NULL for another method or no memory. Finish (or free) it once.
void *wisp_digest_new(int32_t method);
int wisp_digest_update(void *digest, const uint8_t *buf, size_t len);
/// Writes the digest (16 or 32 bytes) into `out` and frees the context: the size, or -1.
int wisp_digest_finish(void *digest, uint8_t *out, size_t out_cap);
void wisp_digest_free(void *digest);

/// Base64 (RFC 4648, with padding) of `src` into `dst` (which also gets a NUL after the
/// text, so `dst_cap` must be one more than the text); returns the length written,
/// or -1 when `dst` is too small.
int wisp_base64_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_cap);

/// Fills `buf` from the kernel CSPRNG (getrandom). Returns 0, or -errno.
int wisp_random(uint8_t *buf, size_t len);

/// The longest public key file (PEM) wisp_ecdsa_p256_verify takes.
#define WISP_PUBLIC_KEY_MAX 1024
/// The public key (PEM) does not parse, is empty, holds a NUL or is longer than WISP_PUBLIC_KEY_MAX.
#define WISP_ECDSA_BAD_KEY (-1)
/// The public key parses but is not an EC public key on P-256 (RSA, Ed25519 …, P-384).
#define WISP_ECDSA_NOT_P256 (-2)
/// The signature does not verify (or is no DER ECDSA signature, or the hash is not 32 bytes).
#define WISP_ECDSA_BAD_SIGNATURE (-3)

/// Verifies the DER ECDSA signature `sig` of the SHA-256 `hash` (32 bytes) under the P-256
/// public key `pem` (a PEM "PUBLIC KEY", as `openssl ec -pubout` writes it; copied into a
/// bounded buffer, so it need not be NUL-terminated). Returns 0 when it verifies, or one of
/// WISP_ECDSA_BAD_KEY, WISP_ECDSA_NOT_P256, WISP_ECDSA_BAD_SIGNATURE.
int wisp_ecdsa_p256_verify(const uint8_t *pem, size_t pem_len, const uint8_t *hash, size_t hash_len,
                           const uint8_t *sig, size_t sig_len);

// MARK: network (net.c)

/// Returned by the receive functions when the peer closed the connection in order.
#define WISP_IO_CLOSED (-100000)

/// Returned by wisp_connect_step while a connect is in progress.
#define WISP_CONNECT_PENDING (-2)

/// Starts opening a TCP connection to `host`:`port` without blocking: an address literal
/// is parsed here; a name is resolved by a forked child (getaddrinfo), whose answer comes
/// through a pipe. Returns a context, or NULL with one sentence in `err`.
void *wisp_connect_start(const char *host, uint16_t port, char *err, size_t err_cap);

/// Advances the connect without blocking, trying every address in order: the connected,
/// non-blocking, close-on-exec socket (now the caller's); WISP_CONNECT_PENDING while the
/// name resolves (poll wisp_connect_fd for readable) or a connect is in progress (poll it
/// for writable), then step again; or -1 with one sentence in `err` when the name did not
/// resolve or every address failed. The caller keeps the deadline.
int32_t wisp_connect_step(void *ctx, char *err, size_t err_cap);

/// The resolver's pipe or the socket being connected (for poll), or -1.
int32_t wisp_connect_fd(void *ctx);

/// 1 while the host name resolves (wisp_connect_fd is the pipe: poll it for readable).
int32_t wisp_connect_resolving(void *ctx);

/// Frees the context, closing a socket still connecting and ending a resolver child.
void wisp_connect_free(void *ctx);

/// Sends from a non-blocking socket: bytes sent, 0 when it would block, or -errno.
int64_t wisp_tcp_send(int32_t fd, const uint8_t *buf, size_t len);

/// Receives: bytes read, 0 when no data is there yet, WISP_IO_CLOSED at end of stream,
/// or -errno. Never 0 for a closed connection.
int64_t wisp_tcp_recv(int32_t fd, uint8_t *buf, size_t cap);

/// The most descriptors one `wisp_poll` waits on.
#define WISP_POLL_MAX 16

/// Waits until one of `n` (≤ WISP_POLL_MAX) descriptors is ready as `events[i]` asks (1
/// readable, 2 writable; a negative descriptor is skipped) or `timeout_ms` passes (-1:
/// forever). `ready[i]` says what happened to each: 1 readable, 2 writable, 4 error or
/// hang-up. Returns how many are ready, 0 at the timeout or on EINTR, or -errno.
int32_t wisp_poll(const int32_t *fds, const int32_t *events, int32_t *ready, int32_t n, int32_t timeout_ms);

int32_t wisp_close(int32_t fd);

/// Blocks SIGTERM, SIGINT, SIGHUP and SIGPIPE and returns a signalfd for the first three,
/// or -errno.
int32_t wisp_signals_open(void);

/// The next pending signal on `fd` (SIGTERM=15, SIGINT=2, SIGHUP=1), or 0 for none.
int32_t wisp_signal_next(int32_t fd);

// MARK: TLS (tls.c)

/// Sets up a TLS client over the connected socket `fd`: loads `ca_file` (a PEM bundle
/// that may hold several roots; NULL for the system bundle), sets SNI and the name to
/// verify to `host` (an IP literal is checked against the certificate's iPAddress
/// entries). With `insecure` non-zero the certificate is not verified. Returns an opaque
/// context, or NULL with one sentence in `err`.
void *wisp_tls_start(int32_t fd, const char *host, const char *ca_file, int32_t insecure, char *err, size_t err_cap);

/// One step of the handshake, never blocking: 1 done, 0 wants the socket readable, 2
/// wants it writable, -1 failed with one sentence in `err` (e.g. the verification flags).
// The verification flags of the handshake that still count after the chain is verified
// again against the roots that issued it (mbedTLS's MBEDTLS_X509_BADCERT_* bits).
uint32_t wisp_tls_handshake_flags_kept(uint32_t flags);
int32_t wisp_tls_handshake(void *tls, char *err, size_t err_cap);

/// As wisp_tcp_send/recv, through TLS.
int64_t wisp_tls_send(void *tls, const uint8_t *buf, size_t len);
int64_t wisp_tls_recv(void *tls, uint8_t *buf, size_t cap);

/// Sends close_notify (best effort) and frees the context; does not close the socket.
void wisp_tls_close(void *tls);

// MARK: GPIO (gpio.c), the kernel's character device, uAPI v2

/// Requests one line of the chip at `chip_path` (/dev/gpiochipN) as an input, or as an
/// output driven to `initial`. Returns the line request's fd, or -errno (-ENOTTY or
/// -EINVAL when the kernel lacks uAPI v2: fall back to sysfs).
int32_t wisp_gpio_request(const char *chip_path, uint32_t line, int32_t output, int32_t initial);

/// The line's value (0 or 1), or -errno.
int32_t wisp_gpio_get(int32_t request_fd);

/// Drives an output line to `value` (0 or 1). Returns 0 or -errno.
int32_t wisp_gpio_set(int32_t request_fd, int32_t value);

// MARK: systemd (notify.c)

/// Sends `state` (e.g. "READY=1", "WATCHDOG=1") to $NOTIFY_SOCKET, the sd_notify protocol
/// without libsystemd. Returns 1 when sent, 0 when there is no NOTIFY_SOCKET, or -errno.
int32_t wisp_sd_notify(const char *state);

/// The watchdog period systemd asked for ($WATCHDOG_USEC, when $WATCHDOG_PID is unset or
/// ours), in microseconds; 0 when none.
uint64_t wisp_sd_watchdog_usec(void);

// MARK: system (sys.c)

/// Gives the pages that free heap memory spans back to the kernel (glibc's malloc_trim):
/// once after a connect, whose TLS handshake is the heap's peak. Allocates nothing.
void wisp_release_free_heap(void);

/// Writes all of `buf` to file descriptor `fd` (1 stdout, 2 stderr), retrying EINTR.
/// Returns 0, or -errno.
int wisp_write_all(int32_t fd, const uint8_t *buf, size_t len);

/// Reads at most `cap` bytes of the file at `path` into `buf`. Returns the length, or
/// -errno (-EFBIG when the file is larger than `cap`).
int64_t wisp_read_file(const char *path, uint8_t *buf, size_t cap);

/// Reads the first `cap` bytes (or fewer) of the file at `path`: the length, or -errno.
int64_t wisp_read_head(const char *path, uint8_t *buf, size_t cap);
// A sensor's file: looked at first (O_PATH), then opened non-blocking and read only when
// it is a regular file or lives on sysfs/procfs (opening a FIFO or a device has effects or
// stalls the loop): -WISP_ENOTREG otherwise. With
// `kernel_only` (a remote config's file: sensor) it must be on sysfs or procfs, wherever
// its path led (/proc/self/root/… leads out): -WISP_ENOTKERNELFS otherwise.
#define WISP_ENOTREG 2001
#define WISP_ENOTKERNELFS 2002
int64_t wisp_read_sensor(const char *path, uint8_t *buf, size_t cap, int32_t kernel_only);

/// Writes `len` bytes to an existing file (sysfs attributes). Returns 0 or -errno.
int32_t wisp_write_file(const char *path, const uint8_t *buf, size_t len);

/// Opens (creating, mode 0600) `path` for appending. Returns the fd, or -errno.
int32_t wisp_open_append(const char *path);

/// Opens `path` read-only. Returns the fd, or -errno (-ENOENT when there is none).
int32_t wisp_open_read(const char *path);

/// Creates or empties `path` (mode 0600) for writing, refusing a symlink (-ELOOP).
/// Returns the fd, or -errno.
int32_t wisp_open_new(const char *path);

/// One read(2), EINTR retried: bytes read, 0 at the end, or -errno.
int64_t wisp_read(int32_t fd, uint8_t *buf, size_t cap);

/// Up to `cap` bytes of `fd` from `offset` (pread(2), EINTR retried, short reads
/// continued), fewer only at the end of the file; the file offset does not move. The
/// length, or -errno (-EINVAL for a negative offset).
int64_t wisp_pread(int32_t fd, uint8_t *buf, size_t cap, int64_t offset);

/// The size of the open file `fd` (fstat), or -errno (-EINVAL when it is not a regular file).
int64_t wisp_fstat_size(int32_t fd);

/// unlink(2). 0 or -errno.
int32_t wisp_unlink(const char *path);

/// fsync(2) of a directory, so a rename in it survives a power cut. 0 or -errno.
int32_t wisp_sync_dir(const char *path);

/// fdatasync(2): the appended record reaches the card before we go on. 0 or -errno.
int32_t wisp_sync(int32_t fd);

/// rename(2), for replacing the buffer file atomically after compaction. 0 or -errno.
int32_t wisp_rename(const char *from, const char *to);

/// truncate(2): cuts a torn record off the buffer file's end. 0 or -errno.
int32_t wisp_truncate(const char *path, int64_t length);

/// Free bytes for unprivileged users on the filesystem holding `path` (statvfs), or -errno.
int64_t wisp_fs_free(const char *path);

/// The permission bits of `path` (e.g. 0600), or -errno: whether a sysfs file exists.
int32_t wisp_file_mode(const char *path);

/// Opens a file that holds a secret without following a symlink (O_NOFOLLOW: -ELOOP for
/// one) and describes the open descriptor, not the path, so nothing can be swapped in
/// between: info[0] = permission bits | 0x10000 for a regular file, info[1] = owner uid,
/// info[2] = group gid, info[3] = our effective uid, info[4] = our effective gid.
/// Returns the fd (close it with wisp_close), or -errno.
int32_t wisp_open_secret(const char *path, uint32_t info[5]);

/// Reads `fd` to its end into `buf`: the length, or -errno (-EFBIG past `cap`).
int64_t wisp_read_fd(int32_t fd, uint8_t *buf, size_t cap);

// MARK: files under an open directory, no links followed (dirs.c)

/// info[0] bits besides the permission bits.
#define WISP_FILE_REGULAR 0x10000u
#define WISP_FILE_DIRECTORY 0x20000u

/// Opens the directory `path` (O_DIRECTORY|O_NOFOLLOW: -ELOOP or -ENOTDIR for a link) and
/// describes the descriptor: info[0] = permission bits | WISP_FILE_* , info[1] = owner uid,
/// info[2] = group gid, info[3] = our effective uid, info[4] = link count. The fd or -errno.
int32_t wisp_dir_open(const char *path, uint32_t info[5]);

/// Opens `name` in the directory `dir` for reading, not following a link, not hanging on a
/// FIFO; describes it like wisp_dir_open. The fd or -errno.
int32_t wisp_at_open_read(int32_t dir, const char *name, uint32_t info[5]);

/// 1 when `name` exists in `dir` (a link counts, unfollowed), or -errno.
int32_t wisp_at_exists(int32_t dir, const char *name);

/// Creates `name` in `dir` (O_EXCL|O_NOFOLLOW) with exactly `mode`. The fd or -errno.
int32_t wisp_at_create(int32_t dir, const char *name, uint32_t mode);

/// unlinkat / renameat within one directory. 0 or -errno.
int32_t wisp_at_unlink(int32_t dir, const char *name);
int32_t wisp_at_rename(int32_t dir, const char *from, const char *to);

/// Copies `from` (from its start) to `to`: the bytes copied, or -errno (-EFBIG past `limit`).
int64_t wisp_copy_fd(int32_t from, int32_t to, int64_t limit);

/// The value of an environment variable copied into `buf` (NUL-terminated); its length,
/// or -1 when unset or too long.
int32_t wisp_getenv(const char *name, char *buf, size_t cap);

/// Runs argv[0] with the NULL-terminated `argv` (no shell) and a minimal
/// environment (PATH, LC_ALL=C), stdin from /dev/null, stdout into `out` (at most `out_cap` bytes kept; its
/// length in `*out_len`), stderr to ours. Waits at most `timeout_ms`, then kills it.
/// Returns its exit status, 128 + the signal that ended it, or -errno (-ETIMEDOUT).
int32_t wisp_run(const char *const *argv, uint8_t *out, size_t out_cap, int64_t *out_len, int32_t timeout_ms);

/// chmod(2). 0 or -errno.
int32_t wisp_chmod(const char *path, uint32_t mode);

/// mkdir(2) with `mode`; 0 also when it exists as a directory, or -errno.
int32_t wisp_mkdir(const char *path, uint32_t mode);

/// The size of the file at `path` (lstat: a symlink is -ELOOP), or -errno.
int64_t wisp_file_size(const char *path);

/// The path of the running executable (/proc/self/exe) into `buf`, NUL-terminated: its
/// length, or -errno.
int32_t wisp_self_path(char *buf, size_t cap);

/// Monotonic milliseconds (CLOCK_MONOTONIC), for deadlines.
uint64_t wisp_monotonic_ms(void);

/// Wall-clock milliseconds since the Unix epoch (CLOCK_REALTIME), for signatures.
uint64_t wisp_realtime_ms(void);

/// The text for an errno value, copied into `buf` (NUL-terminated).
void wisp_strerror(int32_t err, char *buf, size_t cap);

/// Names in directory `path` (without "." and ".."), each followed by a NUL, into `buf`.
/// Returns the bytes used, or -errno; names that do not fit are left out.
int64_t wisp_list_dir(const char *path, uint8_t *buf, size_t cap);

/// This build's OTA security counter: ten decimal digits (behind `wisp-ota-counter=`).
const char *wisp_security_counter(void);

/// wisp's version ("0.1.0"): the CLI, the package and the OTA version report.
const char *wisp_version(void);

/// The git revision this binary was built from ("unknown" when not built from git).
const char *wisp_build_revision(void);

/// The Linux target triple this binary was compiled for, e.g. "aarch64-linux-gnu".
const char *wisp_build_triple(void);

/// The kernel's release and machine (uname(2)), NUL-terminated, cut to fit: 0 or -errno.
int32_t wisp_uname(char *release, size_t release_cap, char *machine, size_t machine_cap);

/// The IPv4 address of interface `name` (SIOCGIFADDR) as dotted text into `out`: 0, or
/// -errno (-EADDRNOTAVAIL: it has none).
int32_t wisp_interface_ipv4(const char *name, char *out, size_t cap);

/// The process's arguments (Embedded Swift has no CommandLine): captured at start-up.
int32_t wisp_argc(void);
const char *wisp_argv(int32_t index);

/// Ends the process with `code`.
void wisp_exit(int32_t code) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif
#endif
