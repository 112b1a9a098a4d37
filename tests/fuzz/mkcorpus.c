/* Seed inputs for the fsm fuzzers, made by the real encoders: writes
 * DIR/codec/<name> (commands and records) and DIR/snapshot/small (a
 * snapshot of a state with jobs in several states, a worker, a queue, a
 * token and a node). Run by scripts/fuzz.sh --seeds; the output is kept in
 * tests/fuzz/corpus/. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsm/internal.h"

static const char *Out;

static void die(const char *what)
{
    fprintf(stderr, "mkcorpus: %s\n", what);
    exit(1);
}

static void save(const char *sub, const char *name, const void *p, size_t n)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", Out, sub);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", Out, sub, name);
    if ((f = fopen(path, "wb")) == NULL || fwrite(p, 1, n, f) != n) {
        die(path);
    }
    fclose(f);
}

static struct fsm_str S(const char *s)
{
    return (struct fsm_str){s, (uint32_t)strlen(s)};
}

static struct fsm_job
job(const char *type, const char *spec)
{
    struct fsm_job j;
    memset(&j, 0, sizeof j);
    j.type = S(type);
    j.queue = S("default");
    j.spec = S(spec);
    j.max_attempts = 3;
    return j;
}

static void save_cmd(const char *name, const struct fsm_cmd *c)
{
    void *buf;
    size_t len;
    if (fsm_cmd_encode(c, &buf, &len) != 0) {
        die(name);
    }
    save("codec", name, buf, len);
    free(buf);
}

static struct fsm *F;

/* A snapshot of F (@block 0: default sizes), its chunks concatenated. */
static void save_snapshot(const char *name, size_t block)
{
    struct fsm_snapshot *s;
    struct fsm_snapshot_chunks ch;
    unsigned char *buf;
    size_t len = 0;

    if (fsm_snapshot_begin(F, &s) != 0) {
        die("snapshot");
    }
    if (block != 0) {
        fsm_snapshot_set_sizes(s, block, 0);
    }
    if (fsm_snapshot_write(s, &ch) != 0) {
        die("snapshot");
    }
    fsm_snapshot_end(s);
    for (unsigned i = 0; i < ch.n; i++) {
        len += ch.v[i].len;
    }
    if ((buf = malloc(len)) == NULL) {
        die("snapshot");
    }
    len = 0;
    for (unsigned i = 0; i < ch.n; i++) {
        memcpy(buf + len, ch.v[i].base, ch.v[i].len);
        len += ch.v[i].len;
    }
    fsm_snapshot_chunks_free(&ch);
    save("snapshot", name, buf, len);
    free(buf);
}
static uint64_t Index;
static const int64_t Now = 1767225600000LL;
static const char *Hash =
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/* Apply @c alone at the next index; the result's first id. */
static uint64_t apply(const struct fsm_cmd *c, int64_t now)
{
    struct fsm_batch b;
    const struct fsm_result *res;
    unsigned n;
    void *buf;
    size_t len;

    fsm_batch_init(&b);
    if (fsm_cmd_encode(c, &buf, &len) != 0 ||
        fsm_batch_append(&b, buf, len) != 0) {
        die("encode");
    }
    free(buf);
    fsm_batch_seal(&b, now);
    if (fsm_apply(F, ++Index, b.buf, b.len, &res, &n) != 0 || n != 1 ||
        res[0].code != 0) {
        die("apply");
    }
    fsm_batch_close(&b);
    return res[0].n_ids > 0 ? res[0].ids[0] : 0;
}

/* Jobs, a schedule, a worker, a lease and its failure: applied, and the
 * commands saved. Returns the first job's id; the worker's in *wid. */
static uint64_t jobs_and_leases(uint64_t *wid_out)
{
    const int64_t now = Now;
    const char *hash = Hash;
    struct fsm_job jobs[3];
    uint64_t hashes[3] = {0, 0, 0x1234};
    uint64_t deps[1];
    struct fsm_item items[1];
    struct fsm_cmd c;

    /* A submit of three jobs: plain, scheduled with a key, a dependant. */
    jobs[0] = job("shell", "{\"payload\":{\"command\":\"echo hi\"}}");
    jobs[1] = job("http",
                  "{\"payload\":{\"url\":\"http://x/\"},"
                  "\"backoff\":{\"base\":\"1s\"}}");
    jobs[1].run_at = now + 60000;
    jobs[1].priority = 5;
    jobs[1].idem_key = S("key-1");
    jobs[1].ckey = S("tenant-a");
    jobs[1].ckey_limit = 2;
    jobs[1].timeout_ms = 30000;
    jobs[2] = job("noop", "{\"payload\":{}}");
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_SUBMIT;
    c.n_jobs = 3;
    c.jobs = jobs;
    c.hashes = hashes;
    save_cmd("submit", &c);
    uint64_t first = apply(&c, now);

    deps[0] = first;
    jobs[2].deps = deps;
    jobs[2].n_deps = 1;
    c.n_jobs = 1;
    c.jobs = &jobs[2];
    save_cmd("submit_deps", &c);
    apply(&c, now);

    struct fsm_job sched = job("noop",
                               "{\"payload\":{},\"schedule\":"
                               "\"*/5 * * * *\"}");
    sched.flags = FSM_JOB_RECURRING;
    sched.run_at = now + 300000;
    c.jobs = &sched;
    apply(&c, now);

    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_WORKER_REG;
    c.worker.name = S("w1");
    c.worker.queues = S("default,email");
    c.worker.concurrency = 4;
    c.worker.types = S("noop,http");
    c.worker.secret_hash = S(hash);
    save_cmd("worker_reg", &c);
    uint64_t wid = apply(&c, now);

    memset(items, 0, sizeof items);
    items[0].job_id = first;
    items[0].worker_id = wid;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_ASSIGN;
    c.n_items = 1;
    c.items = items;
    save_cmd("assign", &c);
    apply(&c, now + 1000);
    uint64_t token = Index;

    items[0].token = token;
    items[0].ok = 0;
    items[0].retryable = 1;
    items[0].exit_code = 2;
    items[0].retry_at = now + 5000;
    items[0].error = S("exit status 2");
    items[0].output = S("hi\n");
    items[0].result = S("{\"n\":1}");
    c.type = FSM_CMD_COMPLETE;
    save_cmd("complete", &c);
    apply(&c, now + 2000);
    *wid_out = wid;
    return first;
}

/* Queue, token, node, patch, cancel and fire commands. */
static void settings(uint64_t first)
{
    const int64_t now = Now;
    const char *hash = Hash;
    struct fsm_item items[2];
    struct fsm_cmd c;

    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_QUEUE_SET;
    c.queue.name = S("email");
    c.queue.paused = 1;
    c.queue.concurrency = 10;
    save_cmd("queue_set", &c);
    apply(&c, now);

    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_TOKEN_SET;
    c.token.name = S("ci");
    c.token.role = S("submit");
    c.token.queues = S("default");
    c.token.hash = S(hash);
    save_cmd("token_set", &c);
    apply(&c, now);

    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_NODE_SET;
    c.node_id = 1;
    c.raft_addr = S("127.0.0.1:7001");
    c.http_addr = S("127.0.0.1:8001");
    save_cmd("node_set", &c);
    apply(&c, now);

    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_PATCH;
    c.id = first + 1;
    c.mask = FSM_PATCH_PRIORITY | FSM_PATCH_QUEUE;
    c.patch.priority = 9;
    c.patch.queue = S("email");
    save_cmd("patch", &c);
    apply(&c, now);

    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_CANCEL;
    c.id = first + 1;
    save_cmd("cancel", &c);

    memset(items, 0, sizeof items);
    items[0].job_id = first + 3;
    items[0].nominal = now + 300000;
    items[0].next_at = now + 600000;
    items[0].action = FSM_FIRE_RUN;
    items[1].job_id = first + 3;
    items[1].action = FSM_FIRE_SKIP;
    items[1].skipped = 2;
    items[1].error = S("overlap");
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_FIRE;
    c.n_items = 2;
    c.items = items;
    save_cmd("fire", &c);
}

/* Records as the state holds them, and the snapshot of it all. */
static void records(uint64_t first, uint64_t wid)
{
    const int64_t now = Now;
    struct fsm_reader *rd;
    struct fsm_job j;
    void *buf = NULL;
    size_t len = 0;
    if (fsm_read_begin(F, &rd) != 0 || fsm_get_job(rd, first, &j) != 0 ||
        fsm_job_encode(&j, &buf, &len) != 0) {
        die("job record");
    }
    save("codec", "job_record", buf, len);
    save("codec", "history", j.history.p, j.history.len);
    free(buf);
    fsm_read_end(rd);

    struct fsm_worker w;
    memset(&w, 0, sizeof w);
    w.id = wid;
    w.name = S("w1");
    w.queues = S("default");
    w.concurrency = 2;
    w.types = S("noop");
    if (fsm_worker_encode(&w, &buf, &len) != 0) {
        die("worker record");
    }
    save("codec", "worker_record", buf, len);
    free(buf);

    struct fsm_token t;
    memset(&t, 0, sizeof t);
    t.id = 7;
    t.name = S("ci");
    t.role = S("read");
    t.expires_at = now;
    if (fsm_token_encode(&t, &buf, &len) != 0) {
        die("token record");
    }
    save("codec", "token_record", buf, len);
    free(buf);

    /* The snapshot of all that: default blocks (one), and blocks of 64
     * bytes (records spanning blocks). small_v1 is the v1 writer's. */
    save_snapshot("small", 0);
    save_snapshot("small_blocks", 64);
}

int main(int argc, char **argv)
{
    char dir[64];
    struct fsm_options o = {dir, 64 << 20, true};
    uint64_t first, wid;

    if (argc != 2) {
        die("usage: fuzz_mkcorpus DIR");
    }
    Out = argv[1];
    mkdir(Out, 0755);
    snprintf(dir, sizeof dir, "/tmp/rota-mkcorpus-XXXXXX");
    if (mkdtemp(dir) == NULL || fsm_open(&o, &F) != 0) {
        die("fsm_open");
    }
    first = jobs_and_leases(&wid);
    settings(first);
    records(first, wid);
    fsm_close(F);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
