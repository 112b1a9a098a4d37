/* The one reader of a job spec's scheduling keys: the retry backoff
 * ("backoff": initial, max, multiplier, jitter), "no_retry_exit_codes" and
 * a schedule ("schedule", "timezone", "overlap", "catchup", "catchup_max").
 * The API validated them on submit (http/job_json.c); here a key that
 * does not read takes its default, so a decision never fails on a spec. */

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/duration.h"
#include "sched/internal.h"
#include "sched/policy.h"

int sched_parse_duration(const char *s, int64_t max_ms, int64_t *ms)
{
    return duration_parse_ms(s, max_ms, ms);
}

static bool duration_of(json_t *v, double *out)
{
    int64_t ms;
    if (json_is_number(v)) {
        double secs = json_number_value(v);
        if (secs < 0) {
            return false;
        }
        *out = secs * 1000;
        return true;
    }
    if (sched_parse_duration(json_string_value(v), INT64_MAX / 2, &ms) != 0) {
        return false;
    }
    *out = (double)ms;
    return true;
}

static void read_backoff(json_t *b, struct sched_spec *sp)
{
    json_t *v;
    if (!json_is_object(b)) {
        return;
    }
    duration_of(json_object_get(b, "initial"), &sp->initial_ms);
    duration_of(json_object_get(b, "max"), &sp->max_ms);
    if (json_is_number(v = json_object_get(b, "multiplier"))) {
        sp->multiplier = json_number_value(v);
    }
    if (json_is_number(v = json_object_get(b, "jitter"))) {
        sp->jitter = json_number_value(v);
    }
}

static int choice(const char *s, const char *const *names, int n)
{
    for (int i = 0; s != NULL && i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            return i;
        }
    }
    return 0;
}

static void read_schedule(json_t *spec, struct sched_spec *sp)
{
    static const char *const overlaps[] = {"forbid", "allow", "replace"};
    static const char *const catchups[] = {"skip", "latest", "all"};
    const char *expr = json_string_value(json_object_get(spec, "schedule"));
    const char *tz = json_string_value(json_object_get(spec, "timezone"));
    json_t *max = json_object_get(spec, "catchup_max");

    if (expr == NULL || cron_parse(expr, &sp->cron, NULL, 0, NULL, 0) != 0) {
        return;
    }
    sp->has_cron = true;
    snprintf(sp->tz, sizeof sp->tz, "%s", tz != NULL ? tz : "UTC");
    sp->overlap = choice(json_string_value(json_object_get(spec, "overlap")),
                         overlaps, 3);
    sp->catchup = choice(json_string_value(json_object_get(spec, "catchup")),
                         catchups, 3);
    sp->catchup_max = json_is_integer(max) && json_integer_value(max) > 0
                          ? (unsigned)json_integer_value(max)
                          : CATCHUP_DEFAULT;
}

void sched__spec_read(const struct fsm_job *job, struct sched_spec *sp)
{
    json_t *spec, *codes, *v;
    size_t i;

    memset(sp, 0, sizeof *sp);
    sp->initial_ms = 1000;
    sp->multiplier = 2;
    sp->max_ms = 3600000;
    sp->catchup_max = CATCHUP_DEFAULT;
    if (job->spec.len == 0) {
        return;
    }
    spec = json_loadb(job->spec.p, job->spec.len, 0, NULL);
    read_backoff(json_object_get(spec, "backoff"), sp);
    codes = json_object_get(spec, "no_retry_exit_codes");
    json_array_foreach(codes, i, v)
    {
        if (json_is_integer(v) && sp->n_no_retry < MAX_NO_RETRY) {
            sp->no_retry[sp->n_no_retry++] = (int32_t)json_integer_value(v);
        }
    }
    read_schedule(spec, sp);
    json_decref(spec);
}

bool sched__spec_no_retry(const struct sched_spec *sp, int32_t code)
{
    for (unsigned i = 0; i < sp->n_no_retry; i++) {
        if (sp->no_retry[i] == code) {
            return true;
        }
    }
    return false;
}

int64_t sched__retry_at(const struct fsm_job *job, int64_t now, double u)
{
    struct sched_spec sp;
    sched__spec_read(job, &sp);
    return now + policy_backoff_ms(job->attempts, sp.initial_ms, sp.multiplier,
                                   sp.max_ms, sp.jitter, u);
}
