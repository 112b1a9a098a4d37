/* The job record in JSON: parse and validate user input (every error names
 * its field), render stored records. The shape is docs/api.md's. */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sched/cron.h"
#include "common/err.h"
#include "http/internal.h"

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

/* Fields that only make sense on a recurring job. */
static const char *const sched_only[] = {"timezone", "overlap", "catchup",
                                         "catchup_max", NULL};
#define MAX_DELAY_MS (10LL * 366 * 24 * 3600 * 1000)

/* ---- Times and durations ------------------------------------------------ */

void http__format_time(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    size_t n;
    gmtime_r(&secs, &tm);
    n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(ms % 1000));
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
    const char *p;
    double total = 0;

    if (json_is_number(v)) {
        double secs = json_number_value(v);
        if (secs < 0 || secs * 1000 > (double)MAX_DELAY_MS) {
            return -1;
        }
        *ms = (int64_t)(secs * 1000);
        return 0;
    }
    if (!json_is_string(v)) {
        return -1;
    }
    p = json_string_value(v);
    if (*p == '\0') {
        return -1;
    }
    while (*p != '\0') {
        char *end;
        double n = strtod(p, &end);
        double unit;
        if (end == p || n < 0) {
            return -1;
        }
        p = end;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = 1000;
            p++;
        } else if (*p == 'm') {
            unit = 60000;
            p++;
        } else if (*p == 'h') {
            unit = 3600000;
            p++;
        } else if (*p == 'd') {
            unit = 86400000;
            p++;
        } else {
            return -1;
        }
        total += n * unit;
    }
    if (total > (double)MAX_DELAY_MS) {
        return -1;
    }
    *ms = (int64_t)total;
    return 0;
}

/* ---- Parsing ------------------------------------------------------------ */

struct perr
{
    char *field;
    size_t field_size;
    char *msg;
    size_t msg_size;
    const char *prefix;
};

static int fail(struct perr *e,
                int code,
                const char *field,
                const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

static int fail(struct perr *e,
                int code,
                const char *field,
                const char *fmt,
                ...)
{
    va_list ap;
    int n;
    snprintf(e->field, e->field_size, "%s%s", e->prefix, field);
    n = snprintf(e->msg, e->msg_size, "%s: ", e->field);
    va_start(ap, fmt);
    vsnprintf(e->msg + n, e->msg_size - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

static int get_string(struct perr *e,
                      json_t *v,
                      const char *field,
                      size_t max,
                      bool allow_empty,
                      const char **out)
{
    if (!json_is_string(v)) {
        return fail(e, ERR_INVALID, field, "must be a string");
    }
    if (json_string_length(v) > max) {
        return fail(e, ERR_INVALID, field, "longer than %zu bytes", max);
    }
    if (!allow_empty && json_string_length(v) == 0) {
        return fail(e, ERR_INVALID, field, "must not be empty");
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        return fail(e, ERR_INVALID, field, "must not contain NUL");
    }
    *out = json_string_value(v);
    return 0;
}

static int get_int(struct perr *e,
                   json_t *v,
                   const char *field,
                   long long lo,
                   long long hi,
                   long long *out)
{
    if (!json_is_integer(v)) {
        return fail(e, ERR_INVALID, field, "must be an integer");
    }
    if (json_integer_value(v) < lo || json_integer_value(v) > hi) {
        return fail(e, ERR_INVALID, field, "must be between %lld and %lld", lo,
                    hi);
    }
    *out = json_integer_value(v);
    return 0;
}

static int check_tags(struct perr *e, json_t *tags)
{
    const char *key;
    json_t *val;
    if (!json_is_object(tags)) {
        return fail(e, ERR_INVALID, "tags", "must be an object of strings");
    }
    if (json_object_size(tags) > MAX_TAGS) {
        return fail(e, ERR_INVALID, "tags", "more than %d entries", MAX_TAGS);
    }
    json_object_foreach(tags, key, val)
    {
        if (strlen(key) > MAX_TAG_KEY || strlen(key) == 0) {
            return fail(e, ERR_INVALID, "tags", "keys must be 1..%d bytes",
                        MAX_TAG_KEY);
        }
        if (!json_is_string(val) || json_string_length(val) > MAX_TAG_VALUE) {
            return fail(e, ERR_INVALID, "tags",
                        "value of \"%s\" must be a string of at most %d "
                        "bytes",
                        key, MAX_TAG_VALUE);
        }
    }
    return 0;
}

static int check_backoff(struct perr *e, json_t *b)
{
    const char *key;
    json_t *val;
    int64_t ms;
    if (!json_is_object(b)) {
        return fail(e, ERR_INVALID, "backoff", "must be an object");
    }
    json_object_foreach(b, key, val)
    {
        if (strcmp(key, "initial") == 0 || strcmp(key, "max") == 0) {
            if (http__parse_duration(val, &ms) != 0) {
                return fail(e, ERR_INVALID, "backoff", "%s: bad duration", key);
            }
        } else if (strcmp(key, "multiplier") == 0) {
            if (!json_is_number(val) || json_number_value(val) < 1 ||
                json_number_value(val) > 100) {
                return fail(e, ERR_INVALID, "backoff",
                            "multiplier must be a number in 1..100");
            }
        } else if (strcmp(key, "jitter") == 0) {
            if (!json_is_number(val) || json_number_value(val) < 0 ||
                json_number_value(val) > 1) {
                return fail(e, ERR_INVALID, "backoff",
                            "jitter must be a number in 0..1");
            }
        } else {
            return fail(e, ERR_INVALID, "backoff", "unknown field \"%s\"", key);
        }
    }
    return 0;
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

static int check_deps(struct perr *e, json_t *deps, struct job_input *in)
{
    size_t i;
    json_t *v;
    if (!json_is_array(deps)) {
        return fail(e, ERR_INVALID, "depends_on", "must be an array of ids");
    }
    if (json_array_size(deps) > FSM_MAX_DEPS) {
        return fail(e, ERR_INVALID, "depends_on", "more than %d ids",
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
            return fail(e, ERR_INVALID, "depends_on",
                        "element %zu is not a job id", i);
        }
    }
    in->job.deps = in->deps;
    in->job.n_deps = (uint32_t)json_array_size(deps);
    return 0;
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
static int keep_strings(struct job_input *in,
                        const char *type,
                        const char *queue,
                        const char *user,
                        const char *key,
                        const char *ckey)
{
    size_t lt = strlen(type) + 1, lq = strlen(queue) + 1;
    size_t lu = user != NULL ? strlen(user) + 1 : 1;
    size_t lk = key != NULL ? strlen(key) + 1 : 1;
    size_t lc = ckey != NULL ? strlen(ckey) + 1 : 1;
    char *p = malloc(lt + lq + lu + lk + lc);
    if (p == NULL) {
        return ERR_NOMEM;
    }
    in->strs = p;
    memcpy(p, type, lt);
    set_str(&in->job.type, p);
    p += lt;
    memcpy(p, queue, lq);
    set_str(&in->job.queue, p);
    p += lq;
    memcpy(p, user != NULL ? user : "", lu);
    set_str(&in->job.user_id, p);
    p += lu;
    memcpy(p, key != NULL ? key : "", lk);
    set_str(&in->job.idem_key, p);
    p += lk;
    memcpy(p, ckey != NULL ? ckey : "", lc);
    set_str(&in->job.ckey, p);
    return 0;
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

int http__job_parse(struct http_server *s,
                    json_t *obj,
                    int64_t now_ms,
                    const char *prefix,
                    struct job_input *in,
                    char *field,
                    size_t field_size,
                    char *msg,
                    size_t msg_size)
{
    struct perr e = {field, field_size, msg, msg_size, prefix};
    const char *type = NULL, *queue = "default", *user = NULL, *key = NULL;
    const char *str, *schedule = NULL, *tz = NULL, *ckey = NULL;
    struct cron cron;
    json_t *spec, *payload = NULL;
    const char *k;
    json_t *v;
    long long n;
    int64_t ms;
    bool has_delay = false, has_run_at = false;
    int rv;

    memset(in, 0, sizeof *in);
    in->job.max_attempts = DEFAULT_ATTEMPTS;
    if (!json_is_object(obj)) {
        return fail(&e, ERR_INVALID, "", "a job must be a JSON object");
    }
    spec = json_object();
    json_object_foreach(obj, k, v)
    {
        rv = 0;
        if (strcmp(k, "type") == 0) {
            rv = get_string(&e, v, "type", MAX_NAME, false, &type);
        } else if (strcmp(k, "name") == 0) {
            rv = get_string(&e, v, "name", MAX_NAME, true, &str);
            json_object_set(spec, "name", v);
        } else if (strcmp(k, "payload") == 0) {
            payload = v;
        } else if (strcmp(k, "queue") == 0) {
            rv = get_string(&e, v, "queue", MAX_QUEUE, false, &queue);
            if (rv == 0 && !queue_name_valid(queue)) {
                rv = fail(&e, ERR_INVALID, "queue",
                          "only letters, digits and _.:- are allowed");
            }
        } else if (strcmp(k, "priority") == 0) {
            rv = get_int(&e, v, "priority", -MAX_PRIORITY, MAX_PRIORITY, &n);
            in->job.priority = (int32_t)n;
        } else if (strcmp(k, "user_id") == 0) {
            rv = get_string(&e, v, "user_id", MAX_NAME, false, &user);
        } else if (strcmp(k, "tags") == 0) {
            rv = check_tags(&e, v);
            json_object_set(spec, "tags", v);
        } else if (strcmp(k, "run_at") == 0) {
            has_run_at = true;
            if (!json_is_string(v) ||
                http__parse_time(json_string_value(v), &in->job.run_at)) {
                rv = fail(&e, ERR_INVALID, "run_at",
                          "must be an RFC 3339 time, e.g. "
                          "2026-11-22T10:00:00Z");
            }
        } else if (strcmp(k, "delay") == 0) {
            has_delay = true;
            if (http__parse_duration(v, &ms) != 0) {
                rv = fail(&e, ERR_INVALID, "delay",
                          "must be a duration such as \"30s\" or \"5m\"");
            }
            in->job.run_at = now_ms + ms;
        } else if (strcmp(k, "schedule") == 0) {
            char part[32], why[160];
            rv = get_string(&e, v, "schedule", CRON_MAX_EXPR - 1, false,
                            &schedule);
            if (rv == 0 && cron_parse(schedule, &cron, part, sizeof part, why,
                                      sizeof why) != 0) {
                rv = fail(&e, ERR_INVALID, "schedule", "%s: %s", part, why);
            }
            json_object_set(spec, "schedule", v);
        } else if (strcmp(k, "timezone") == 0) {
            rv = get_string(&e, v, "timezone", MAX_NAME, false, &tz);
            if (rv == 0 && !cron_tz_valid(tz)) {
                rv = fail(&e, ERR_INVALID, "timezone",
                          "unknown time zone \"%s\" (want an IANA name "
                          "such as Europe/Berlin)",
                          tz);
            }
            json_object_set(spec, "timezone", v);
        } else if (strcmp(k, "overlap") == 0 || strcmp(k, "catchup") == 0) {
            static const char *const overlap[] = {"forbid", "allow", "replace",
                                                  NULL};
            static const char *const catchup[] = {"skip", "latest", "all",
                                                  NULL};
            const char *const *ok = k[0] == 'o' ? overlap : catchup;
            rv = get_string(&e, v, k, MAX_NAME, false, &str);
            while (rv == 0 && *ok != NULL && strcmp(*ok, str) != 0) {
                ok++;
            }
            if (rv == 0 && *ok == NULL) {
                rv = fail(&e, ERR_INVALID, k, "must be one of %s",
                          k[0] == 'o' ? "forbid, allow, replace"
                                      : "skip, latest, all");
            }
            json_object_set(spec, k, v);
        } else if (strcmp(k, "catchup_max") == 0) {
            rv = get_int(&e, v, "catchup_max", 1, MAX_CATCHUP, &n);
            json_object_set(spec, k, v);
        } else if (strcmp(k, "trigger") == 0) {
            rv = get_string(&e, v, "trigger", MAX_NAME, false, &str);
            if (rv == 0 && strcmp(str, "all_done") == 0) {
                in->job.flags |= FSM_JOB_ALL_DONE;
            } else if (rv == 0 && strcmp(str, "all_success") != 0) {
                rv = fail(&e, ERR_INVALID, "trigger",
                          "must be all_success or all_done");
            }
        } else if (strcmp(k, "concurrency_key") == 0) {
            rv = get_string(&e, v, "concurrency_key", MAX_NAME, false, &ckey);
        } else if (strcmp(k, "concurrency_limit") == 0) {
            rv = get_int(&e, v, "concurrency_limit", 1, MAX_CKEY_LIMIT, &n);
            in->job.ckey_limit = (uint32_t)n;
        } else if (strcmp(k, "no_retry_exit_codes") == 0) {
            size_t i;
            json_t *c;
            if (!json_is_array(v) || json_array_size(v) > 64) {
                rv = fail(&e, ERR_INVALID, k,
                          "must be an array of at most "
                          "64 exit codes");
            }
            json_array_foreach(v, i, c)
            {
                if (rv == 0 &&
                    (!json_is_integer(c) || json_integer_value(c) < -255 ||
                     json_integer_value(c) > 1000)) {
                    rv = fail(&e, ERR_INVALID, k,
                              "element %zu is not an exit code", i);
                }
            }
            json_object_set(spec, k, v);
        } else if (strcmp(k, "max_attempts") == 0) {
            rv = get_int(&e, v, "max_attempts", 1, MAX_ATTEMPTS, &n);
            in->job.max_attempts = (uint32_t)n;
        } else if (strcmp(k, "backoff") == 0) {
            rv = check_backoff(&e, v);
            json_object_set(spec, "backoff", v);
        } else if (strcmp(k, "timeout") == 0) {
            if (http__parse_duration(v, &in->job.timeout_ms) != 0) {
                rv = fail(&e, ERR_INVALID, "timeout",
                          "must be a duration such as \"30s\"");
            }
        } else if (strcmp(k, "depends_on") == 0) {
            rv = check_deps(&e, v, in);
        } else if (strcmp(k, "idempotency_key") == 0) {
            rv = get_string(&e, v, "idempotency_key", MAX_NAME, false, &key);
        } else {
            rv = fail(&e, ERR_INVALID, k, "unknown field");
        }
        if (rv != 0) {
            json_decref(spec);
            return rv;
        }
    }
    if (type == NULL) {
        json_decref(spec);
        return fail(&e, ERR_INVALID, "type", "is required");
    }
    if (has_delay && has_run_at) {
        json_decref(spec);
        return fail(&e, ERR_INVALID, "delay",
                    "give run_at or delay, not "
                    "both");
    }
    for (const char *const *f = sched_only; *f != NULL; f++) {
        if (schedule == NULL && json_object_get(spec, *f) != NULL) {
            json_decref(spec);
            return fail(&e, ERR_INVALID, *f, "needs a schedule");
        }
    }
    if (schedule != NULL) {
        /* The first occurrence: after now, or after run_at/delay ("not
         * before"). Later ones are computed by the leader as it fires. */
        int64_t after = in->job.run_at > now_ms ? in->job.run_at - 1 : now_ms;
        if (in->job.n_deps > 0) {
            json_decref(spec);
            return fail(&e, ERR_INVALID, "depends_on",
                        "a recurring job cannot depend on other jobs");
        }
        if (cron_next(&cron, tz, after, &in->job.run_at) != 0) {
            json_decref(spec);
            return fail(&e, ERR_INVALID, "schedule",
                        "the expression never matches (within 5 years)");
        }
        in->job.flags |= FSM_JOB_RECURRING;
    }
    if (ckey != NULL && ckey[0] != '\0') {
        in->job.ckey_limit = in->job.ckey_limit > 0 ? in->job.ckey_limit : 1;
    } else if (in->job.ckey_limit > 0) {
        json_decref(spec);
        return fail(&e, ERR_INVALID, "concurrency_limit",
                    "needs a concurrency_key");
    }
    if (payload != NULL) {
        size_t len = json_dumpb(payload, NULL, 0, JSON_COMPACT);
        if (len > s->cfg.max_payload) {
            json_decref(spec);
            return fail(&e, ERR_TOOLARGE, "payload",
                        "%zu bytes encoded, over the limit of %zu", len,
                        s->cfg.max_payload);
        }
        json_object_set(spec, "payload", payload);
    } else {
        json_object_set_new(spec, "payload", json_object());
    }
    in->spec = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(spec);
    if (in->spec == NULL) {
        return ERR_NOMEM;
    }
    set_str(&in->job.spec, in->spec);
    rv = keep_strings(in, type, queue, user, key, ckey);
    if (rv != 0) {
        return rv;
    }
    /* The idempotency hash covers the request as sent (sorted keys); only
     * a job with a key needs it. */
    if (key != NULL) {
        char *canon = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
        if (canon == NULL) {
            return ERR_NOMEM;
        }
        in->hash = fnv64(canon, strlen(canon));
        free(canon);
    }
    return 0;
}

int http__job_patch_parse(struct http_server *s,
                          json_t *obj,
                          int64_t now_ms,
                          struct job_input *in,
                          uint32_t *mask,
                          char *field,
                          size_t field_size,
                          char *msg,
                          size_t msg_size)
{
    struct perr e = {field, field_size, msg, msg_size, ""};
    const char *k, *queue = NULL;
    json_t *v;
    long long n;
    int64_t ms;
    int rv = 0;

    memset(in, 0, sizeof *in);
    *mask = 0;
    if (!json_is_object(obj) || json_object_size(obj) == 0) {
        return fail(&e, ERR_INVALID, "",
                    "want a JSON object with at least "
                    "one field to change");
    }
    json_object_foreach(obj, k, v)
    {
        if (strcmp(k, "priority") == 0) {
            rv = get_int(&e, v, "priority", -MAX_PRIORITY, MAX_PRIORITY, &n);
            in->job.priority = (int32_t)n;
            *mask |= FSM_PATCH_PRIORITY;
        } else if (strcmp(k, "payload") == 0) {
            size_t len = json_dumpb(v, NULL, 0, JSON_COMPACT);
            if (len > s->cfg.max_payload) {
                rv = fail(&e, ERR_TOOLARGE, "payload",
                          "%zu bytes encoded, over the limit of %zu", len,
                          s->cfg.max_payload);
            }
            *mask |= FSM_PATCH_SPEC;
        } else if (strcmp(k, "run_at") == 0 || strcmp(k, "delay") == 0) {
            if (*mask & FSM_PATCH_RUN_AT) {
                rv = fail(&e, ERR_INVALID, "delay",
                          "give run_at or delay, not both");
            } else if (k[0] == 'r') {
                if (!json_is_string(v) ||
                    http__parse_time(json_string_value(v), &in->job.run_at)) {
                    rv = fail(&e, ERR_INVALID, "run_at",
                              "must be an RFC 3339 time");
                }
            } else if (http__parse_duration(v, &ms) != 0) {
                rv = fail(&e, ERR_INVALID, "delay", "bad duration");
            } else {
                in->job.run_at = now_ms + ms;
            }
            *mask |= FSM_PATCH_RUN_AT;
        } else if (strcmp(k, "queue") == 0) {
            rv = get_string(&e, v, "queue", MAX_QUEUE, false, &queue);
            if (rv == 0 && !queue_name_valid(queue)) {
                rv = fail(&e, ERR_INVALID, "queue",
                          "only letters, digits and _.:- are allowed");
            }
            *mask |= FSM_PATCH_QUEUE;
        } else if (strcmp(k, "max_attempts") == 0) {
            rv = get_int(&e, v, "max_attempts", 1, MAX_ATTEMPTS, &n);
            in->job.max_attempts = (uint32_t)n;
            *mask |= FSM_PATCH_MAX_ATTEMPTS;
        } else if (strcmp(k, "timeout") == 0) {
            if (http__parse_duration(v, &in->job.timeout_ms) != 0) {
                rv = fail(&e, ERR_INVALID, "timeout", "bad duration");
            }
            *mask |= FSM_PATCH_TIMEOUT;
        } else {
            rv = fail(&e, ERR_INVALID, k, "unknown field or not changeable");
        }
        if (rv != 0) {
            return rv;
        }
    }
    if (queue != NULL) {
        in->strs = strdup(queue);
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
