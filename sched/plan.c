/* The cron firing plan: what a FIRE decides for a due schedule, a pure
 * function of the schedule, its previous run and the time.
 *
 * Catch-up: occurrences o1 < ... < on are due (<= now). One is "missed"
 * if it is more than MISFIRE_MS late. skip: run on if it is not missed;
 * latest: run on; all: run the last catchup_max. Every occurrence not run
 * is recorded (one record per contiguous range) with its reason.
 *
 * Overlap: forbid skips an occurrence while the previous run is
 * unfinished; allow runs it beside; replace cancels the previous run (in
 * apply). The decision goes into the log as FIRE items naming each
 * occurrence (fsm/apply_sched.c), so a leader change can neither skip nor
 * double one. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sched/internal.h"

#define MISFIRE_MS 1000
#define MAX_ENUM 200000 /* Occurrences counted when catching up. */

/* ISO 8601 UTC with milliseconds, for reasons. */
static void fmt_time(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(ms % 1000));
}

/* The previous run of @s if it has not ended (0 otherwise). */
uint64_t sched__busy_run(struct fsm_reader *rd,
                         const struct fsm_job *s,
                         int *status)
{
    struct fsm_job prev;
    if (s->last_run != 0 && fsm_get_job(rd, s->last_run, &prev) == 0 &&
        !fsm_status_is_final(prev.status)) {
        *status = prev.status;
        return s->last_run;
    }
    return 0;
}

unsigned sched__plan(struct fsm_reader *rd,
                     const struct fsm_job *s,
                     int64_t now,
                     struct fsm_item *items,
                     char (*reasons)[SCHED_REASON_SIZE],
                     unsigned cap)
{
    struct sched_spec sp;
    unsigned n = 0;
    int st = 0;

    if (cap < 2) {
        return 0;
    }
    memset(items, 0, 2 * sizeof *items);
    items[0].job_id = s->id;
    items[0].nominal = s->run_at;
    sched__spec_read(s, &sp);
    if (!sp.has_cron) {
        /* Cannot happen for a job the API accepted; stop it, say why. */
        items[0].action = FSM_FIRE_SKIP;
        items[0].next_at = FSM_NEVER;
        items[0].skipped = 1;
        snprintf(reasons[0], SCHED_REASON_SIZE, "the schedule does not parse");
        items[0].error.p = reasons[0];
        items[0].error.len = (uint32_t)strlen(reasons[0]);
        return 1;
    }
    /* Enumerate the due occurrences, keeping the first, the count, and the
     * last K (K = how many may run). */
    unsigned keep = sp.catchup == CATCHUP_ALL ? sp.catchup_max : 1;
    keep = keep < cap - 1 ? keep : cap - 1;
    int64_t *last = calloc(keep, sizeof *last);
    int64_t first = s->run_at, cur = s->run_at, next = FSM_NEVER;
    uint64_t count = 0;
    if (last == NULL) {
        return 0;
    }
    while (cur <= now && count < MAX_ENUM) {
        last[count % keep] = cur;
        count++;
        if (cron_next(&sp.cron, sp.tz, cur, &next) != 0) {
            next = FSM_NEVER;
            break;
        }
        cur = next;
    }
    if (count == MAX_ENUM && cur <= now) {
        /* Far behind: jump to the present. */
        if (cron_next(&sp.cron, sp.tz, now, &next) != 0) {
            next = FSM_NEVER;
        }
    } else if (count > 0 && cur > now) {
        next = cur;
    }
    if (count == 0) {
        free(last);
        return 0;
    }
    /* Which of the kept ones run: the newest @runs of them. */
    int64_t newest = last[(count - 1) % keep];
    uint64_t runs;
    if (sp.catchup == CATCHUP_ALL) {
        runs = count < keep ? count : keep;
    } else if (sp.catchup == CATCHUP_LATEST) {
        runs = 1;
    } else {
        runs = now - newest <= MISFIRE_MS ? 1 : 0;
    }
    uint64_t missed = count - runs;
    /* The run occurrences, oldest first. */
    int64_t run_at[1024];
    runs = runs < 1024 ? runs : 1024;
    for (uint64_t i = 0; i < runs; i++) {
        run_at[i] = last[(count - runs + i) % keep];
    }
    free(last);
    if (missed > 0) {
        char a[40], b[40];
        struct fsm_item *it = &items[n];
        memset(it, 0, sizeof *it);
        it->job_id = s->id;
        it->action = FSM_FIRE_SKIP;
        it->nominal = first;
        it->next_at = runs > 0 ? run_at[0] : next;
        it->skipped = missed > UINT32_MAX ? UINT32_MAX : (uint32_t)missed;
        fmt_time(first, a, sizeof a);
        fmt_time(runs > 0 ? run_at[0] - 1 : newest, b, sizeof b);
        snprintf(reasons[n], SCHED_REASON_SIZE,
                 "missed: %llu occurrence%s %s%s%s late by more than %d ms "
                 "(catchup=%s)",
                 (unsigned long long)missed, missed > 1 ? "s" : "", a,
                 missed > 1 ? " .. " : "", missed > 1 ? b : "", MISFIRE_MS,
                 sp.catchup == CATCHUP_ALL      ? "all"
                 : sp.catchup == CATCHUP_LATEST ? "latest"
                                                : "skip");
        it->error.p = reasons[n];
        it->error.len = (uint32_t)strlen(reasons[n]);
        n++;
    }
    uint64_t busy = sched__busy_run(rd, s, &st);
    bool ran = false; /* A run of this plan: its id is not known yet. */
    int64_t ran_at = 0;
    for (uint64_t i = 0; i < runs && n < cap; i++) {
        struct fsm_item *it = &items[n];
        memset(it, 0, sizeof *it);
        it->job_id = s->id;
        it->nominal = run_at[i];
        it->next_at = i + 1 < runs ? run_at[i + 1] : next;
        if ((busy != 0 || ran) && sp.overlap == OVERLAP_FORBID) {
            it->action = FSM_FIRE_SKIP;
            it->skipped = 1;
            if (ran) {
                char a[40];
                fmt_time(ran_at, a, sizeof a);
                snprintf(reasons[n], SCHED_REASON_SIZE,
                         "overlap=forbid: the run of %s is still pending", a);
            } else {
                snprintf(reasons[n], SCHED_REASON_SIZE,
                         "overlap=forbid: run %016llx is still %s",
                         (unsigned long long)busy,
                         st != 0 ? fsm_status_name(st) : "running");
            }
            it->error.p = reasons[n];
            it->error.len = (uint32_t)strlen(reasons[n]);
        } else {
            it->action =
                sp.overlap == OVERLAP_REPLACE ? FSM_FIRE_REPLACE : FSM_FIRE_RUN;
            ran = true; /* The run just created is unfinished. */
            ran_at = run_at[i];
        }
        n++;
    }
    return n;
}
