#include "common/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_mkdir_p(const char *path)
{
    char buf[1024];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                return -1;
            }
            buf[i] = c;
        }
    }
    return 0;
}

int fs_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rv;
    if (fd < 0) {
        return -1;
    }
    rv = fsync(fd);
    close(fd);
    return rv;
}

int fs_write_durable(const char *dir,
                     const char *name,
                     const void *data,
                     size_t len)
{
    char path[1100], tmp[1100];
    int fd, rv = 0, saved;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -1;
    }
    if (write(fd, data, len) != (ssize_t)len || fsync(fd) != 0) {
        rv = -1;
    }
    saved = errno;
    if (close(fd) != 0 && rv == 0) {
        rv = -1;
        saved = errno;
    }
    if (rv == 0 && rename(tmp, path) != 0) {
        rv = -1;
        saved = errno;
    }
    if (rv != 0) {
        unlink(tmp);
        errno = saved;
        return -1;
    }
    return fs_sync_dir(dir);
}
