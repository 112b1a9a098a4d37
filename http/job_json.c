/* The job record in JSON: parse and validate user input (every error names
 * its field), render stored records. The shape is docs/api.md's. */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "http/internal.h"
#include "sched/cron.h"

#define MAX_NAME 256
#define MAX_QUEUE 128
#define MAX_TAGS 64
#define MAX_TAG_KEY 128
#define MAX_TAG_VALUE 256
#define MAX_PRIORITY 1000000
#define MAX_ATTEMPTS 1000
#define DEFAULT_ATTEMPTS 3
#define MAX_CATCHUP 1000
#define MAX_CKEY_LIMIT 10000

#define MAX_DELAY_MS (10LL * 366 * 24 * 3600 * 1000)

/* ---- Times and durations ------------------------------------------------ */

static void format_time_slow(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    size_t n;
    gmtime_r(&secs, &tm);
    n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(ms % 1000));
}

/* Answers carry several times per job (created, updated, started,
 * finished), mostly within a few seconds of each other: the text of the
 * last seconds formatted is kept per thread (four, by the second's low
 * bits), and only the milliseconds are written for each time. A bulk
 * answer of 100 jobs used to format ~300 times with strftime and snprintf,
 * 10% of the leader's CPU. The initial-exec TLS model: this library is
 * linked into executables only, and the default model for -fPIC code would
 * call __tls_get_addr on every use and make the binaries link ld.so. */
#define TIME_CACHE 4
void http__format_time(int64_t ms, char *buf, size_t size)
{
    static _Thread_local struct
    {
        int64_t secs; /* 0 = empty (the epoch's first second: slow path). */
        size_t len;
        char text[40];
    } cache[TIME_CACHE] __attribute__((tls_model("initial-exec")));
    int64_t secs = ms / 1000;
    int frac = (int)(ms % 1000);

    if (secs <= 0) {
        format_time_slow(ms, buf, size);
        return;
    }
    __typeof__(cache[0]) *e = &cache[secs & (TIME_CACHE - 1)];
    if (e->secs != secs) {
        time_t t = (time_t)secs;
        struct tm tm;
        gmtime_r(&t, &tm);
        e->len = strftime(e->text, sizeof e->text, "%Y-%m-%dT%H:%M:%S", &tm);
        e->secs = e->len > 0 ? secs : 0;
    }
    if (e->len == 0 || size < e->len + 6) {
        format_time_slow(ms, buf, size);
        return;
    }
    memcpy(buf, e->text, e->len);
    buf[e->len] = '.';
    buf[e->len + 1] = (char)('0' + frac / 100);
    buf[e->len + 2] = (char)('0' + frac / 10 % 10);
    buf[e->len + 3] = (char)('0' + frac % 10);
    buf[e->len + 4] = 'Z';
    buf[e->len + 5] = '\0';
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) {
            return -1;
        }
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/* RFC 3339: 2026-11-22T10:00:00[.123][Z|+01:00]. */
int http__parse_time(const char *s, int64_t *ms)
{
    struct tm tm;
    int y, mo, d, h, mi, sec, frac = 0, off = 0;
    const char *p = s;

    memset(&tm, 0, sizeof tm);
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' ')) {
        return -1;
    }
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
        digits(&p, 2, &sec)) {
        return -1;
    }
    if (*p == '.') {
        int scale = 100;
        p++;
        if (!isdigit((unsigned char)*p)) {
            return -1;
        }
        while (isdigit((unsigned char)*p)) {
            frac += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) ||
            oh > 23 || om > 59) {
            return -1;
        }
        off = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
        mi > 59 || sec > 60 || y < 1970) {
        return -1;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *ms = ((int64_t)timegm(&tm) - off * 60) * 1000 + frac;
    return 0;
}

/* "250ms", "30s", "5m", "1h30m", "2d", or a number of seconds. */
int http__parse_duration(json_t *v, int64_t *ms)
{
    if (json_is_number(v)) {
        double secs = json_number_value(v);
        if (secs < 0 || secs * 1000 > (double)MAX_DELAY_MS) {
            return -1;
        }
        *ms = (int64_t)(secs * 1000);
        return 0;
    }
    return sched_parse_duration(json_string_value(v), MAX_DELAY_MS, ms);
}

/* ---- Parsing ------------------------------------------------------------ */

/* One parse in progress: what the field parsers fill in. */
struct pstate
{
    const struct job_parse_ctx *ctx;
    struct job_parse_err *err;
    struct job_input *in;
    json_t *spec;    /* Create: the fields kept in the stored spec. */
    json_t *payload; /* Create: checked against the limit at the end. */
    const char *type, *queue, *user, *key, *schedule, *tz, *ckey;
    struct cron cron;
    bool has_run_at, has_delay;
    uint32_t mask; /* Patch: FSM_PATCH_* of the fields seen so far. */
};

static int fail(struct pstate *p,
                int code,
                const char *field,
                const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

static int fail(struct pstate *p,
                int code,
                const char *field,
                const char *fmt,
                ...)
{
    struct job_parse_err *e = p->err;
    va_list ap;
    int n;
    size_t fl;
    if (p->ctx->index < 0) {
        snprintf(e->field, e->field_size, "%s", field);
    } else {
        snprintf(e->field, e->field_size, "jobs[%ld].%s", p->ctx->index, field);
    }
    /* The object itself in a batch: "jobs[2]." names "jobs[2]". */
    fl = strlen(e->field);
    if (fl > 0 && e->field[fl - 1] == '.') {
        e->field[fl - 1] = '\0';
    }
    n = snprintf(e->msg, e->msg_size, "%s: ", e->field);
    va_start(ap, fmt);
    vsnprintf(e->msg + n, e->msg_size - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

static int get_string(struct pstate *p,
                      json_t *v,
                      const char *field,
                      size_t max,
                      bool allow_empty,
                      const char **out)
{
    if (!json_is_string(v)) {
        return fail(p, ERR_INVALID, field, "must be a string");
    }
    if (json_string_length(v) > max) {
        return fail(p, ERR_INVALID, field, "longer than %zu bytes", max);
    }
    if (!allow_empty && json_string_length(v) == 0) {
        return fail(p, ERR_INVALID, field, "must not be empty");
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        return fail(p, ERR_INVALID, field, "must not contain NUL");
    }
    *out = json_string_value(v);
    return 0;
}

static int get_int(struct pstate *p,
                   json_t *v,
                   const char *field,
                   long long lo,
                   long long hi,
                   long long *out)
{
    if (!json_is_integer(v)) {
        return fail(p, ERR_INVALID, field, "must be an integer");
    }
    if (json_integer_value(v) < lo || json_integer_value(v) > hi) {
        return fail(p, ERR_INVALID, field, "must be between %lld and %lld", lo,
                    hi);
    }
    *out = json_integer_value(v);
    return 0;
}

/* @v must be one of the NULL-terminated @ok; @list is them for the message. */
static int get_choice(struct pstate *p,
                      json_t *v,
                      const char *field,
                      const char *const *ok,
                      const char *list)
{
    const char *str;
    int rv = get_string(p, v, field, MAX_NAME, false, &str);
    while (rv == 0 && *ok != NULL && strcmp(*ok, str) != 0) {
        ok++;
    }
    if (rv == 0 && *ok == NULL) {
        rv = fail(p, ERR_INVALID, field, "must be one of %s", list);
    }
    return rv;
}

int http__parse_id(const char *s, size_t len, uint64_t *id)
{
    uint64_t v = 0;
    if (len == 0 || len > 16) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        int c = tolower((unsigned char)s[i]);
        int d = isdigit(c)               ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                         : -1;
        if (d < 0) {
            return -1;
        }
        v = v * 16 + (uint64_t)d;
    }
    *id = v;
    return v == 0 ? -1 : 0;
}

static bool queue_name_valid(const char *q)
{
    for (; *q != '\0'; q++) {
        if (!isalnum((unsigned char)*q) && strchr("_.:-", *q) == NULL) {
            return false;
        }
    }
    return true;
}

/* ---- Field parsers: one per JSON key (see the table below) ------------- */

static int parse_type(struct pstate *p, json_t *v)
{
    return get_string(p, v, "type", MAX_NAME, false, &p->type);
}

static int parse_name(struct pstate *p, json_t *v)
{
    const char *str;
    return get_string(p, v, "name", MAX_NAME, true, &str);
}

static int parse_payload(struct pstate *p, json_t *v)
{
    p->payload = v;
    return 0;
}

static int parse_queue(struct pstate *p, json_t *v)
{
    int rv = get_string(p, v, "queue", MAX_QUEUE, false, &p->queue);
    if (rv == 0 && !queue_name_valid(p->queue)) {
        rv = fail(p, ERR_INVALID, "queue",
                  "only letters, digits and _.:- are allowed");
    }
    return rv;
}

static int parse_priority(struct pstate *p, json_t *v)
{
    long long n = 0;
    int rv = get_int(p, v, "priority", -MAX_PRIORITY, MAX_PRIORITY, &n);
    if (rv == 0) {
        p->in->job.priority = (int32_t)n;
    }
    return rv;
}

static int parse_user_id(struct pstate *p, json_t *v)
{
    return get_string(p, v, "user_id", MAX_NAME, false, &p->user);
}

static int parse_tags(struct pstate *p, json_t *tags)
{
    const char *key;
    json_t *val;
    if (!json_is_object(tags)) {
        return fail(p, ERR_INVALID, "tags", "must be an object of strings");
    }
    if (json_object_size(tags) > MAX_TAGS) {
        return fail(p, ERR_INVALID, "tags", "more than %d entries", MAX_TAGS);
    }
    json_object_foreach(tags, key, val)
    {
        if (strlen(key) > MAX_TAG_KEY || strlen(key) == 0) {
            return fail(p, ERR_INVALID, "tags", "keys must be 1..%d bytes",
                        MAX_TAG_KEY);
        }
        if (!json_is_string(val) || json_string_length(val) > MAX_TAG_VALUE) {
            return fail(p, ERR_INVALID, "tags",
                        "value of \"%s\" must be a string of at most %d "
                        "bytes",
                        key, MAX_TAG_VALUE);
        }
    }
    return 0;
}

static int parse_run_at(struct pstate *p, json_t *v)
{
    p->has_run_at = true;
    if (!json_is_string(v) ||
        http__parse_time(json_string_value(v), &p->in->job.run_at)) {
        return fail(p, ERR_INVALID, "run_at",
                    "must be an RFC 3339 time, e.g. "
                    "2026-11-22T10:00:00Z");
    }
    return 0;
}

static int parse_delay(struct pstate *p, json_t *v)
{
    int64_t ms;
    p->has_delay = true;
    if (http__parse_duration(v, &ms) != 0) {
        return fail(p, ERR_INVALID, "delay",
                    "must be a duration such as \"30s\" or \"5m\"");
    }
    p->in->job.run_at = p->ctx->now_ms + ms;
    return 0;
}

static int parse_schedule(struct pstate *p, json_t *v)
{
    char part[32], why[160];
    int rv =
        get_string(p, v, "schedule", CRON_MAX_EXPR - 1, false, &p->schedule);
    if (rv == 0 && cron_parse(p->schedule, &p->cron, part, sizeof part, why,
                              sizeof why) != 0) {
        rv = fail(p, ERR_INVALID, "schedule", "%s: %s", part, why);
    }
    return rv;
}

static int parse_timezone(struct pstate *p, json_t *v)
{
    int rv = get_string(p, v, "timezone", MAX_NAME, false, &p->tz);
    if (rv == 0 && !cron_tz_valid(p->tz)) {
        rv = fail(p, ERR_INVALID, "timezone",
                  "unknown time zone \"%s\" (want an IANA name "
                  "such as Europe/Berlin)",
                  p->tz);
    }
    return rv;
}

static int parse_overlap(struct pstate *p, json_t *v)
{
    static const char *const ok[] = {"forbid", "allow", "replace", NULL};
    return get_choice(p, v, "overlap", ok, "forbid, allow, replace");
}

static int parse_catchup(struct pstate *p, json_t *v)
{
    static const char *const ok[] = {"skip", "latest", "all", NULL};
    return get_choice(p, v, "catchup", ok, "skip, latest, all");
}

static int parse_catchup_max(struct pstate *p, json_t *v)
{
    long long n = 0;
    return get_int(p, v, "catchup_max", 1, MAX_CATCHUP, &n);
}

static int parse_trigger(struct pstate *p, json_t *v)
{
    const char *str;
    int rv = get_string(p, v, "trigger", MAX_NAME, false, &str);
    if (rv == 0 && strcmp(str, "all_done") == 0) {
        p->in->job.flags |= FSM_JOB_ALL_DONE;
    } else if (rv == 0 && strcmp(str, "all_success") != 0) {
        rv = fail(p, ERR_INVALID, "trigger", "must be all_success or all_done");
    }
    return rv;
}

static int parse_concurrency_key(struct pstate *p, json_t *v)
{
    return get_string(p, v, "concurrency_key", MAX_NAME, false, &p->ckey);
}

static int parse_concurrency_limit(struct pstate *p, json_t *v)
{
    long long n = 0;
    int rv = get_int(p, v, "concurrency_limit", 1, MAX_CKEY_LIMIT, &n);
    if (rv == 0) {
        p->in->job.ckey_limit = (uint32_t)n;
    }
    return rv;
}

static int parse_no_retry_exit_codes(struct pstate *p, json_t *v)
{
    size_t i;
    json_t *c;
    if (!json_is_array(v) || json_array_size(v) > 64) {
        return fail(p, ERR_INVALID, "no_retry_exit_codes",
                    "must be an array of at most "
                    "64 exit codes");
    }
    json_array_foreach(v, i, c)
    {
        if (!json_is_integer(c) || json_integer_value(c) < -255 ||
            json_integer_value(c) > 1000) {
            return fail(p, ERR_INVALID, "no_retry_exit_codes",
                        "element %zu is not an exit code", i);
        }
    }
    return 0;
}

static int parse_max_attempts(struct pstate *p, json_t *v)
{
    long long n = 0;
    int rv = get_int(p, v, "max_attempts", 1, MAX_ATTEMPTS, &n);
    if (rv == 0) {
        p->in->job.max_attempts = (uint32_t)n;
    }
    return rv;
}

static int parse_backoff(struct pstate *p, json_t *b)
{
    const char *key;
    json_t *val;
    int64_t ms;
    if (!json_is_object(b)) {
        return fail(p, ERR_INVALID, "backoff", "must be an object");
    }
    json_object_foreach(b, key, val)
    {
        if (strcmp(key, "initial") == 0 || strcmp(key, "max") == 0) {
            if (http__parse_duration(val, &ms) != 0) {
                return fail(p, ERR_INVALID, "backoff", "%s: bad duration", key);
            }
        } else if (strcmp(key, "multiplier") == 0) {
            if (!json_is_number(val) || json_number_value(val) < 1 ||
                json_number_value(val) > 100) {
                return fail(p, ERR_INVALID, "backoff",
                            "multiplier must be a number in 1..100");
            }
        } else if (strcmp(key, "jitter") == 0) {
            if (!json_is_number(val) || json_number_value(val) < 0 ||
                json_number_value(val) > 1) {
                return fail(p, ERR_INVALID, "backoff",
                            "jitter must be a number in 0..1");
            }
        } else {
            return fail(p, ERR_INVALID, "backoff", "unknown field \"%s\"", key);
        }
    }
    return 0;
}

static int parse_timeout(struct pstate *p, json_t *v)
{
    if (http__parse_duration(v, &p->in->job.timeout_ms) != 0) {
        return fail(p, ERR_INVALID, "timeout",
                    "must be a duration such as \"30s\"");
    }
    return 0;
}

static int parse_depends_on(struct pstate *p, json_t *deps)
{
    struct job_input *in = p->in;
    size_t i;
    json_t *v;
    if (!json_is_array(deps)) {
        return fail(p, ERR_INVALID, "depends_on", "must be an array of ids");
    }
    if (json_array_size(deps) > FSM_MAX_DEPS) {
        return fail(p, ERR_INVALID, "depends_on", "more than %d ids",
                    FSM_MAX_DEPS);
    }
    if (json_array_size(deps) == 0) {
        return 0;
    }
    in->deps = calloc(json_array_size(deps), sizeof *in->deps);
    if (in->deps == NULL) {
        return ERR_NOMEM;
    }
    json_array_foreach(deps, i, v)
    {
        if (!json_is_string(v) ||
            http__parse_id(json_string_value(v), json_string_length(v),
                           &in->deps[i]) != 0) {
            return fail(p, ERR_INVALID, "depends_on",
                        "element %zu is not a job id", i);
        }
    }
    in->job.deps = in->deps;
    in->job.n_deps = (uint32_t)json_array_size(deps);
    return 0;
}

static int parse_idempotency_key(struct pstate *p, json_t *v)
{
    return get_string(p, v, "idempotency_key", MAX_NAME, false, &p->key);
}

/* PATCH has its own wording for times and durations, and checks the
 * payload at once. */

static int patch_payload(struct pstate *p, json_t *v)
{
    size_t len = json_dumpb(v, NULL, 0, JSON_COMPACT);
    if (len > p->ctx->max_payload) {
        return fail(p, ERR_TOOLARGE, "payload",
                    "%zu bytes encoded, over the limit of %zu", len,
                    p->ctx->max_payload);
    }
    return 0;
}

static int patch_run_at(struct pstate *p, json_t *v)
{
    if (p->mask & FSM_PATCH_RUN_AT) {
        return fail(p, ERR_INVALID, "delay", "give run_at or delay, not both");
    }
    if (!json_is_string(v) ||
        http__parse_time(json_string_value(v), &p->in->job.run_at)) {
        return fail(p, ERR_INVALID, "run_at", "must be an RFC 3339 time");
    }
    return 0;
}

static int patch_delay(struct pstate *p, json_t *v)
{
    int64_t ms;
    if (p->mask & FSM_PATCH_RUN_AT) {
        return fail(p, ERR_INVALID, "delay", "give run_at or delay, not both");
    }
    if (http__parse_duration(v, &ms) != 0) {
        return fail(p, ERR_INVALID, "delay", "bad duration");
    }
    p->in->job.run_at = p->ctx->now_ms + ms;
    return 0;
}

static int patch_timeout(struct pstate *p, json_t *v)
{
    if (http__parse_duration(v, &p->in->job.timeout_ms) != 0) {
        return fail(p, ERR_INVALID, "timeout", "bad duration");
    }
    return 0;
}

/* ---- The field table ---------------------------------------------------- */

typedef int field_fn(struct pstate *p, json_t *v);

enum {
    F_SPEC = 1 << 0,  /* Create: copied as-is into the stored spec. */
    F_SCHED = 1 << 1, /* Only makes sense on a recurring job. */
};

struct field
{
    const char *key;
    field_fn *create; /* POST /v1/jobs (and workflow members). */
    field_fn *patch;  /* PATCH /v1/jobs/{id}; NULL: not changeable. */
    uint32_t patch_bit;
    unsigned flags;
};

/* Keys not listed are rejected. The order only matters for F_SCHED: the
 * first such field present names the "needs a schedule" error. */
static const struct field fields[] = {
    {"type", parse_type, NULL, 0, 0},
    {"name", parse_name, NULL, 0, F_SPEC},
    {"payload", parse_payload, patch_payload, FSM_PATCH_SPEC, 0},
    {"queue", parse_queue, parse_queue, FSM_PATCH_QUEUE, 0},
    {"priority", parse_priority, parse_priority, FSM_PATCH_PRIORITY, 0},
    {"user_id", parse_user_id, NULL, 0, 0},
    {"tags", parse_tags, NULL, 0, F_SPEC},
    {"run_at", parse_run_at, patch_run_at, FSM_PATCH_RUN_AT, 0},
    {"delay", parse_delay, patch_delay, FSM_PATCH_RUN_AT, 0},
    {"schedule", parse_schedule, NULL, 0, F_SPEC},
    {"timezone", parse_timezone, NULL, 0, F_SPEC | F_SCHED},
    {"overlap", parse_overlap, NULL, 0, F_SPEC | F_SCHED},
    {"catchup", parse_catchup, NULL, 0, F_SPEC | F_SCHED},
    {"catchup_max", parse_catchup_max, NULL, 0, F_SPEC | F_SCHED},
    {"trigger", parse_trigger, NULL, 0, 0},
    {"concurrency_key", parse_concurrency_key, NULL, 0, 0},
    {"concurrency_limit", parse_concurrency_limit, NULL, 0, 0},
    {"no_retry_exit_codes", parse_no_retry_exit_codes, NULL, 0, F_SPEC},
    {"max_attempts", parse_max_attempts, parse_max_attempts,
     FSM_PATCH_MAX_ATTEMPTS, 0},
    {"backoff", parse_backoff, NULL, 0, F_SPEC},
    {"timeout", parse_timeout, patch_timeout, FSM_PATCH_TIMEOUT, 0},
    {"depends_on", parse_depends_on, NULL, 0, 0},
    {"idempotency_key", parse_idempotency_key, NULL, 0, 0},
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

static const struct field *find_field(const char *key)
{
    for (size_t i = 0; i < N_FIELDS; i++) {
        if (strcmp(fields[i].key, key) == 0) {
            return &fields[i];
        }
    }
    return NULL;
}

/* Each key of @obj through its parser, in the object's order; the first
 * error wins. */
static int parse_fields(struct pstate *p, json_t *obj, bool patch)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        const struct field *f = find_field(k);
        field_fn *fn = f == NULL ? NULL : patch ? f->patch : f->create;
        int rv;
        if (fn == NULL) {
            return fail(
                p, ERR_INVALID, k,
                patch ? "unknown field or not changeable" : "unknown field");
        }
        rv = fn(p, v);
        if (rv != 0) {
            return rv;
        }
        if (patch) {
            p->mask |= f->patch_bit;
        } else if (f->flags & F_SPEC) {
            json_object_set(p->spec, k, v);
        }
    }
    return 0;
}

/* ---- Create ------------------------------------------------------------- */

/* Checks across fields, once each one is valid on its own. Settles run_at
 * of a recurring job and the default concurrency limit. */
static int check_job(struct pstate *p)
{
    struct fsm_job *job = &p->in->job;
    int64_t now_ms = p->ctx->now_ms;
    if (p->type == NULL) {
        return fail(p, ERR_INVALID, "type", "is required");
    }
    if (p->has_delay && p->has_run_at) {
        return fail(p, ERR_INVALID, "delay", "give run_at or delay, not both");
    }
    for (size_t i = 0; i < N_FIELDS && p->schedule == NULL; i++) {
        if ((fields[i].flags & F_SCHED) &&
            json_object_get(p->spec, fields[i].key) != NULL) {
            return fail(p, ERR_INVALID, fields[i].key, "needs a schedule");
        }
    }
    if (p->schedule != NULL) {
        /* The first occurrence: after now, or after run_at/delay ("not
         * before"). Later ones are computed by the leader as it fires. */
        int64_t after = job->run_at > now_ms ? job->run_at - 1 : now_ms;
        if (job->n_deps > 0) {
            return fail(p, ERR_INVALID, "depends_on",
                        "a recurring job cannot depend on other jobs");
        }
        if (cron_next(&p->cron, p->tz, after, &job->run_at) != 0) {
            return fail(p, ERR_INVALID, "schedule",
                        "the expression never matches (within 5 years)");
        }
        job->flags |= FSM_JOB_RECURRING;
    }
    if (p->ckey != NULL && p->ckey[0] != '\0') {
        job->ckey_limit = job->ckey_limit > 0 ? job->ckey_limit : 1;
    } else if (job->ckey_limit > 0) {
        return fail(p, ERR_INVALID, "concurrency_limit",
                    "needs a concurrency_key");
    }
    return 0; /* The payload's size: build_job, once the spec is written. */
}

static uint64_t fnv64(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void set_str(struct fsm_str *dst, const char *s)
{
    dst->p = s;
    dst->len = s != NULL ? (uint32_t)strlen(s) : 0;
}

/* Copies of the strings we keep, in one allocation. */
static int keep_strings(struct pstate *ps)
{
    const char *src[] = {ps->type, ps->queue, ps->user, ps->key, ps->ckey};
    struct fsm_job *job = &ps->in->job;
    struct fsm_str *dst[] = {&job->type, &job->queue, &job->user_id,
                             &job->idem_key, &job->ckey};
    size_t len[5], total = 0;
    char *p;
    for (size_t i = 0; i < 5; i++) {
        len[i] = src[i] != NULL ? strlen(src[i]) + 1 : 1;
        total += len[i];
    }
    p = malloc(total);
    if (p == NULL) {
        return ERR_NOMEM;
    }
    ps->in->strs = p;
    for (size_t i = 0; i < 5; i++) {
        memcpy(p, src[i] != NULL ? src[i] : "", len[i]);
        set_str(dst[i], p);
        p += len[i];
    }
    return 0;
}

/* The stored spec, the kept strings and the idempotency hash. */
static int build_job(struct pstate *p, json_t *obj)
{
    struct job_input *in = p->in;
    int rv;
    if (p->payload != NULL) {
        json_object_set(p->spec, "payload", p->payload);
    } else {
        json_object_set_new(p->spec, "payload", json_object());
    }
    in->spec = json_dumps(p->spec, JSON_COMPACT | JSON_SORT_KEYS);
    if (in->spec == NULL) {
        return ERR_NOMEM;
    }
    set_str(&in->job.spec, in->spec);
    /* The spec holds the payload written the same way: only a spec over
     * the limit needs the payload's own size (one encoding per job, not
     * two, for the usual small payload). */
    if (p->payload != NULL && in->job.spec.len > p->ctx->max_payload) {
        size_t len = json_dumpb(p->payload, NULL, 0, JSON_COMPACT);
        if (len > p->ctx->max_payload) {
            return fail(p, ERR_TOOLARGE, "payload",
                        "%zu bytes encoded, over the limit of %zu", len,
                        p->ctx->max_payload);
        }
    }
    rv = keep_strings(p);
    if (rv != 0) {
        return rv;
    }
    /* The idempotency hash covers the request as sent (sorted keys); only
     * a job with a key needs it. */
    if (p->key != NULL) {
        char *canon = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
        if (canon == NULL) {
            return ERR_NOMEM;
        }
        in->hash = fnv64(canon, strlen(canon));
        free(canon);
    }
    return 0;
}

int http__job_parse(const struct job_parse_ctx *ctx,
                    json_t *obj,
                    struct job_input *in,
                    struct job_parse_err *err)
{
    struct pstate p = {.ctx = ctx, .err = err, .in = in, .queue = "default"};
    int rv;

    memset(in, 0, sizeof *in);
    in->job.max_attempts = DEFAULT_ATTEMPTS;
    if (!json_is_object(obj)) {
        return fail(&p, ERR_INVALID, "", "a job must be a JSON object");
    }
    p.spec = json_object();
    rv = parse_fields(&p, obj, false);
    if (rv == 0) {
        rv = check_job(&p);
    }
    if (rv == 0) {
        rv = build_job(&p, obj);
    }
    json_decref(p.spec);
    return rv;
}

/* ---- Patch -------------------------------------------------------------- */

int http__job_patch_parse(const struct job_parse_ctx *ctx,
                          json_t *obj,
                          struct job_input *in,
                          uint32_t *mask,
                          struct job_parse_err *err)
{
    struct pstate p = {.ctx = ctx, .err = err, .in = in};
    int rv;

    memset(in, 0, sizeof *in);
    *mask = 0;
    if (!json_is_object(obj) || json_object_size(obj) == 0) {
        return fail(&p, ERR_INVALID, "",
                    "want a JSON object with at least "
                    "one field to change");
    }
    rv = parse_fields(&p, obj, true);
    if (rv != 0) {
        return rv;
    }
    *mask = p.mask;
    if (p.queue != NULL) {
        in->strs = strdup(p.queue);
        set_str(&in->job.queue, in->strs);
    }
    return 0;
}

void http__job_input_free(struct job_input *in)
{
    free(in->spec);
    free(in->strs);
    free(in->deps);
    memset(in, 0, sizeof *in);
}
