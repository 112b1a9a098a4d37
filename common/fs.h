#ifndef COMMON_FS_H_
#define COMMON_FS_H_

/* mkdir -p: create @path and its parents (mode 0755). 0, or -1 with errno
 * set. */
int fs_mkdir_p(const char *path);

#include <stddef.h>

/* fsync the directory @dir (after a rename in it). 0, or -1 with errno. */
int fs_sync_dir(const char *dir);

/* Replace <@dir>/<@name> with @len bytes of @data durably: a temporary
 * file beside it, fsync, rename over, fsync of @dir. 0, or -1 with errno
 * set (the old file, if any, stays). */
int fs_write_durable(const char *dir,
                     const char *name,
                     const void *data,
                     size_t len);

#endif /* COMMON_FS_H_ */
