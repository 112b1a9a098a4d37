#ifndef COMMON_FS_H_
#define COMMON_FS_H_

/* mkdir -p: create @path and its parents (mode 0755). 0, or -1 with errno
 * set. */
int fs_mkdir_p(const char *path);

#endif /* COMMON_FS_H_ */
