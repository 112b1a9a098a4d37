/* Fuzz the job JSON parser: a POST /v1/jobs body as http__jobs_submit
 * reads it (one job, an array or {"jobs": [...]}), each job through
 * http__job_parse, the accepted ones encoded into a SUBMIT command and
 * decoded back; and the same body as a PATCH (http__job_patch_parse). */

#include <stdlib.h>
#include <string.h>

#include "http/internal.h"
#include "tests/fuzz/fuzz.h"

#define NOW_MS 1767225600000LL /* 2026-01-01T00:00:00Z */
#define MAX_PAYLOAD 65536

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    json_object_seed(1); /* Same input, same run. */
    return 0;
}

/* The SUBMIT the handler would propose must encode and decode. */
static void submit(const struct job_input *ins, size_t n)
{
    struct fsm_job *jobs = calloc(n, sizeof *jobs);
    uint64_t *hashes = calloc(n, sizeof *hashes);
    struct fsm_cmd cmd, back;
    struct fsm_job *store;
    void *buf;
    size_t len;

    for (size_t i = 0; i < n; i++) {
        jobs[i] = ins[i].job;
        hashes[i] = ins[i].hash;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_CMD_SUBMIT;
    cmd.n_jobs = (uint32_t)n;
    cmd.jobs = jobs;
    cmd.hashes = hashes;
    if (fsm_cmd_encode(&cmd, &buf, &len) == 0) {
        if (fsm_cmd_decode(buf, len, &back, &store) != 0 || back.n_jobs != n) {
            FUZZ_FAIL(); /* The parser accepted what the codec cannot carry. */
        }
        fsm_cmd_free(&back, store);
        free(buf);
    }
    free(jobs);
    free(hashes);
}

static void create(json_t *body)
{
    bool batch = json_is_array(body) ||
                 (json_is_object(body) && json_object_size(body) == 1 &&
                  json_is_array(json_object_get(body, "jobs")));
    json_t *list = json_is_array(body) ? body : json_object_get(body, "jobs");
    size_t n = batch ? json_array_size(list) : 1;
    struct job_input *ins;
    size_t ok = 0;

    if (n == 0 || n > FSM_MAX_BATCH_JOBS) {
        return;
    }
    ins = calloc(n, sizeof *ins);
    for (size_t i = 0; i < n; i++) {
        char field[64], msg[400];
        int rv = http__job_parse(
            &(struct job_parse_ctx){NOW_MS, MAX_PAYLOAD, batch ? (long)i : -1},
            batch ? json_array_get(list, i) : body, &ins[i],
            &(struct job_parse_err){field, sizeof field, msg, sizeof msg});
        ok++;
        if (rv != 0) {
            break;
        }
        if (ins[i].job.type.len == 0 || ins[i].spec == NULL) {
            FUZZ_FAIL();
        }
    }
    if (ok == n && ins[n - 1].spec != NULL) {
        submit(ins, n);
    }
    for (size_t i = 0; i < ok; i++) {
        http__job_input_free(&ins[i]);
    }
    free(ins);
}

static void patch(json_t *body)
{
    struct job_input in;
    uint32_t mask;
    char field[64], msg[400];
    if (http__job_patch_parse(
            &(struct job_parse_ctx){NOW_MS, MAX_PAYLOAD, -1}, body, &in, &mask,
            &(struct job_parse_err){field, sizeof field, msg, sizeof msg}) ==
        0) {
        struct fsm_cmd cmd, back;
        struct fsm_job *store;
        void *buf;
        size_t len;
        memset(&cmd, 0, sizeof cmd);
        cmd.type = FSM_CMD_PATCH;
        cmd.id = 1;
        cmd.mask = mask;
        cmd.patch = in.job;
        if (fsm_cmd_encode(&cmd, &buf, &len) == 0) {
            if (fsm_cmd_decode(buf, len, &back, &store) != 0) {
                FUZZ_FAIL();
            }
            fsm_cmd_free(&back, store);
            free(buf);
        }
    }
    http__job_input_free(&in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body =
        json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (body == NULL) {
        return 0;
    }
    create(body);
    patch(body);
    json_decref(body);
    return 0;
}
