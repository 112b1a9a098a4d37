/* The raft log's segments, allocated as written zeros.
 *
 * raft 0.15 (libraft's UvFsAllocateFile) creates each open segment of its
 * log with posix_fallocate(), then appends entries to it with O_DIRECT and
 * O_DSYNC through kernel AIO, asking for RWF_NOWAIT. On ext4 (and XFS) an
 * fallocated range is "unwritten": the first write to each block must
 * convert the extent, a metadata change that (1) cannot be done without
 * blocking, so every append fails with EAGAIN and goes to a thread of the
 * libuv pool instead, and (2) makes each synchronous append also commit
 * the file system's journal. Measured (bench/README.md, session 25): that
 * is a large part of each entry's durable commit.
 *
 * This definition of posix_fallocate() is the one libraft's call binds to:
 * an executable's own symbols come first in the dynamic linker's lookup,
 * and ld exports those that a linked shared library uses. It reserves the
 * range like the real one (fallocate(2), so a full disk still fails here
 * with ENOSPC) and then writes zeros over the part past the file's old end,
 * so later appends overwrite written blocks: no extent conversion, no
 * journal commit, no thread. Nothing the file held before is touched, and
 * the contract is the same: afterwards the range is allocated and reads as
 * zeros. Other files (h2o's buffers backed by a temporary file) get the
 * plain allocation. The cost moves to the segment's preparation, which libraft
 * runs ahead of time on the thread pool: one synchronous 8 MiB write per
 * segment. libraft is the only caller in rotad. */

/* libraft calls posix_fallocate itself, not the 64-bit name that
 * _FILE_OFFSET_BITS=64 would give this definition (on 64-bit systems the
 * two are the same function). */
#undef _FILE_OFFSET_BITS

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/uio.h>

#define ZERO_CHUNK (64 << 10)
#define ZERO_IOVS 64 /* Up to 4 MiB per write. */

static const char zeros[ZERO_CHUNK];

/* Not in a header: it replaces the C library's for this process. */
int posix_fallocate(int fd, off_t offset, off_t len);

int posix_fallocate(int fd, off_t offset, off_t len)
{
    struct iovec iov[ZERO_IOVS];
    struct stat st;
    bool reserved;
    off_t at, end;

    if (offset < 0 || len <= 0) {
        return EINVAL;
    }
    if (fstat(fd, &st) != 0) {
        return errno;
    }
    if (!S_ISREG(st.st_mode)) {
        return S_ISFIFO(st.st_mode) ? ESPIPE : ENODEV;
    }
    /* Reserve it at once: contiguous, and ENOSPC now rather than later. */
    reserved = fallocate(fd, 0, offset, len) == 0;
    if (!reserved && errno != EOPNOTSUPP) {
        return errno;
    }
    /* Zeros where the file system cannot reserve (the C library's own
     * fallback), and always for a synchronous file (libraft opens its
     * segments O_DSYNC); anyone else (h2o's buffers backed by a temporary
     * file) keeps the plain allocation. */
    if (reserved && (fcntl(fd, F_GETFL) & O_DSYNC) != O_DSYNC) {
        return 0;
    }
    at = offset > st.st_size ? offset : st.st_size;
    end = offset + len;
    while (at < end) {
        int n = 0;
        off_t left = end - at;
        while (n < ZERO_IOVS && left > 0) {
            iov[n].iov_base = (void *)zeros;
            iov[n].iov_len = left < ZERO_CHUNK ? (size_t)left : ZERO_CHUNK;
            left -= (off_t)iov[n].iov_len;
            n++;
        }
        ssize_t w = pwritev(fd, iov, n, at);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        at += w;
    }
    /* The zeros are on disk (O_DSYNC): their cached pages would only be
     * invalidated by the O_DIRECT appends. */
    (void)posix_fadvise(fd, offset, len, POSIX_FADV_DONTNEED);
    return 0;
}
