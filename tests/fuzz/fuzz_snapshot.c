/* Fuzz snapshot restore: each input is restored with fsm_restore into one
 * LMDB environment opened once in a temporary directory (a restore drops
 * every database first, so each input starts from nothing), and what
 * restored is read back the way the node reads it: the digest, job
 * listings (every page), workers, queues, tokens, nodes. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsm/fsm.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fsm *F;
static char Dir[64];

static void cleanup(void)
{
    char cmd[128];
    fsm_close(F);
    snprintf(cmd, sizeof cmd, "rm -rf %s", Dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "fuzz_snapshot: could not remove %s\n", Dir);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct fsm_options o = {Dir, 64 << 20, true};
    snprintf(Dir, sizeof Dir, "/tmp/rota-fuzz-snap-XXXXXX");
    if (mkdtemp(Dir) == NULL || fsm_open(&o, &F) != 0) {
        fprintf(stderr, "fuzz_snapshot: cannot open an fsm in /tmp\n");
        exit(1);
    }
    atexit(cleanup);
    return 0;
}

static int on_job(void *data, const struct fsm_job *j)
{
    struct fsm_str h = j->history;
    struct fsm_attempt a;
    int n = 0;
    (*(unsigned *)data)++;
    while (fsm_attempt_next(&h, &a) == 1 && n++ < 100) {
    }
    return 0;
}

static void on_worker(void *data, const struct fsm_worker *w)
{
    (*(unsigned *)data)++;
}

static void on_queue(void *data,
                     const struct fsm_queue *q,
                     const uint64_t counts[8])
{
    (*(unsigned *)data)++;
}

static void on_token(void *data, const struct fsm_token *t)
{
    (*(unsigned *)data)++;
}

static void on_node(void *data,
                    uint64_t id,
                    struct fsm_str raft_addr,
                    struct fsm_str http_addr)
{
    (*(unsigned *)data)++;
}

static void read_back(void)
{
    struct fsm_reader *rd;
    struct fsm_query q;
    char next[FSM_CURSOR_SIZE];
    uint64_t counts[8], digest;
    unsigned n = 0;

    (void)fsm_digest(F, &digest);
    if (fsm_read_begin(F, &rd) != 0) {
        return;
    }
    memset(&q, 0, sizeof q);
    q.limit = 50;
    for (int page = 0; page < 20; page++) {
        if (fsm_list(rd, &q, on_job, &n, next) != 0 || next[0] == '\0') {
            break;
        }
        q.cursor = next;
    }
    (void)fsm_count_by_status(rd, counts);
    (void)fsm_workers(rd, on_worker, &n);
    (void)fsm_queues(rd, on_queue, &n);
    (void)fsm_tokens(rd, on_token, &n);
    (void)fsm_nodes(rd, on_node, &n);
    (void)fsm_acl_bootstrapped(rd);
    fsm_read_end(rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fsm_restore(F, data, size) == 0) {
        read_back();
    }
    return 0;
}
