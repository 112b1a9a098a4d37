/* The marker file that says whether an LMDB environment opened with
 * fsm_options.keep may be used again at the next start (fsm/fsm.h).
 *
 * LMDB runs with MDB_NOSYNC: a committed write transaction is in the page
 * cache, not necessarily on disk. A process crash loses nothing (the kernel
 * still holds the pages), a system crash (power loss, panic) may leave the
 * file torn. So the file <dir>/FSM_STATE_MARK says one of:
 *   "clean"      fsm_close synced the environment (mdb_env_sync) first;
 *   "boot ID"    written (and synced) before the first write transaction of
 *                a process that ran under kernel boot ID: the environment is
 *                whole as long as that kernel still runs.
 * and on a second line "layout N", FSM_STORE_LAYOUT of the build that wrote
 * it: a build that stores things differently rebuilds instead of reading
 * an environment it would misread. Every write is temp file + fsync +
 * rename + fsync of the directory. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "fsm/internal.h"

#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"

/* The running kernel's boot id into @out (at least 64 bytes); false if it
 * cannot be read. */
static bool boot_id(char *out, size_t size)
{
    FILE *f = fopen(BOOT_ID_PATH, "r");
    size_t n;

    if (f == NULL) {
        return false;
    }
    n = fread(out, 1, size - 1, f);
    fclose(f);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ')) {
        n--;
    }
    out[n] = '\0';
    return n > 0 && strchr(out, ' ') == NULL;
}

const char *fsm__mark_check(const char *dir, bool *keep)
{
    char path[1100], text[128], boot[64], layout[32], *nl;
    FILE *f;
    size_t n;

    *keep = false;
    snprintf(path, sizeof path, "%s/%s", dir, FSM_STATE_MARK);
    f = fopen(path, "r");
    if (f == NULL) {
        return errno == ENOENT ? "no-marker" : "marker-unreadable";
    }
    n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    snprintf(layout, sizeof layout, "\nlayout %d\n", FSM_STORE_LAYOUT);
    nl = strchr(text, '\n');
    if (nl == NULL || strcmp(nl, layout) != 0) {
        return nl == NULL ? "marker-unknown" : "layout-changed";
    }
    *nl = '\0';
    if (strcmp(text, "clean") == 0) {
        *keep = true;
        return "clean";
    }
    if (strncmp(text, "boot ", 5) != 0) {
        return "marker-unknown";
    }
    if (!boot_id(boot, sizeof boot)) {
        return "boot-id-unreadable";
    }
    if (strcmp(text + 5, boot) != 0) {
        return "other-boot";
    }
    *keep = true;
    return "same-boot";
}

/* @state and the layout line as <dir>/FSM_STATE_MARK, durably. */
static int mark_write(const char *dir, const char *state)
{
    char text[128];
    int len =
        snprintf(text, sizeof text, "%s\nlayout %d\n", state, FSM_STORE_LAYOUT);
    return fs_write_durable(dir, FSM_STATE_MARK, text, (size_t)len);
}

int fsm__mark_boot(struct fsm *f, const char *dir)
{
    char text[80], boot[64];

    /* Unknown boot id: a marker that never matches, so the next start
     * rebuilds; it must still replace a "clean" one. */
    snprintf(text, sizeof text, "boot %s",
             boot_id(boot, sizeof boot) ? boot : "unknown");
    if (mark_write(dir, text) != 0) {
        snprintf(f->errmsg, sizeof f->errmsg, "write %s/%s: %s", dir,
                 FSM_STATE_MARK, strerror(errno));
        return ERR_IO;
    }
    return 0;
}

void fsm__mark_clean(struct fsm *f)
{
    int rv = mdb_env_sync(f->env, 1);
    if (rv != 0) {
        /* The "boot" marker stays: the next start, on this kernel, keeps
         * what the page cache holds; after a reboot it rebuilds. */
        return;
    }
    (void)mark_write(f->mark_dir, "clean");
}
