#ifndef SCHED_CRON_H_
#define SCHED_CRON_H_

/* Cron expressions for recurring jobs: parsing, and "when is the next run".
 *
 * Syntax (cron_parse):
 *   - 5 fields "min hour dom month dow", or 6 with a leading seconds field
 *     "sec min hour dom month dow". With 5 fields the second is 0.
 *   - Each field is a comma list of items. An item is '*', '?', 'a' or
 *     'a-b', optionally followed by '/step'. '*' and '?' mean the whole
 *     range of the field. 'a/step' means 'a-<field max>/step'.
 *   - Ranges: seconds and minutes 0-59, hours 0-23, day of month 1-31,
 *     month 1-12 or JAN..DEC, day of week 0-7 or SUN..SAT (0 and 7 are both
 *     Sunday). Names are case-insensitive. A range must not run backwards
 *     ("FRI-MON" is an error).
 *   - Macros (case-insensitive): @yearly = @annually = "0 0 1 1 *",
 *     @monthly = "0 0 1 * *", @weekly = "0 0 * * 0",
 *     @daily = @midnight = "0 0 * * *", @hourly = "0 * * * *".
 *   - "@every <duration>": a sequence of <integer><unit> with units ms, s, m,
 *     h, e.g. 30s, 5m, 1h30m, 1s500ms. Fractions ("1.5h") are not accepted.
 *     The total must be at least 1s.
 *   - The expression must be shorter than CRON_MAX_EXPR characters.
 *
 * Matching (cron_next):
 *   - Fields match the local wall-clock time of the job's timezone.
 *   - Day of month and day of week: if both are restricted (neither field
 *     is '*' or '?'), a day matches when EITHER matches (the Vixie cron
 *     rule: "0 0 13 * FRI" runs on every 13th and on every Friday).
 *     Otherwise both must match, which means the restricted one decides.
 *     A field counts as unrestricted when one of its items is '*' or '?'
 *     with no step (or step 1); '*' with a step of 2 is a restriction.
 *   - DST spring forward: a wall time that does not exist (02:30 on the day
 *     the clocks jump from 02:00 to 03:00) runs once, at the first valid
 *     instant after the gap (03:00 local). Several nonexistent times in the
 *     same gap map to that same instant, so they produce ONE run: the next
 *     search is strictly after it.
 *   - DST fall back: a wall time that occurs twice runs once, at its first
 *     occurrence (the summer-time one). "0,15,30,45 * * * *" in the repeated
 *     hour runs 01:00, 01:15, 01:30, 01:45 on the first pass and next at 02:00
 *     standard time; nothing runs during the second pass.
 *   - "@every D" is a fixed interval in absolute time, independent of the
 *     timezone: the next multiple of D since the Unix epoch that is
 *     strictly after the given instant. So every node computes the same
 *     instants, whatever the time it started.
 *   - Resolution is one second: returned instants have 0 milliseconds
 *     (except for @every intervals that are not whole seconds).
 *
 * Timezones are IANA names ("Europe/Berlin"), resolved by ICU. "UTC", ""
 * and NULL all mean UTC.
 *
 * Thread: cron_parse() is thread-safe. cron_next() and cron_tz_valid() keep
 * a small static cache of open ICU calendars (one per timezone name, opened
 * once, never closed), so they must be called from a single thread (the
 * node's loop thread). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRON_MAX_EXPR 128

/* A parsed expression. Bit i of a field set means value i matches. */
struct cron
{
    uint64_t sec;            /* bit i set: second i matches (0..59) */
    uint64_t min;            /* 0..59 */
    uint32_t hour;           /* 0..23 */
    uint32_t dom;            /* bit 1..31 */
    uint16_t month;          /* bit 1..12 */
    uint8_t dow;             /* bit 0..6, 0 = Sunday (7 in input too) */
    bool dom_star, dow_star; /* field was '*' (or '?') */
    int64_t every_ms;        /* @every: > 0, then the fields above unused */
};

/* Parse @expr into @out. Returns 0 on success. On error returns -1, writes
 * into @field the name of the offending part ("seconds", "minutes",
 * "hours", "day_of_month", "month", "day_of_week", "every", or
 * "expression" for a wrong number of fields, an unknown macro or an
 * over-long expression) and into @msg a short reason quoting the bad token,
 * e.g. `"61" is out of range 0-59`. @field and @msg may be NULL (or have
 * size 0); they are always NUL-terminated otherwise. */
int cron_parse(const char *expr,
               struct cron *out,
               char *field,
               size_t field_size,
               char *msg,
               size_t msg_size);

/* True if @tz names a timezone ICU knows as a system (IANA) zone. "UTC", ""
 * and NULL are valid. Custom offsets ("GMT+05:00") and unknown names
 * ("Mars/Base", "Etc/Unknown") are not. Names are case-sensitive. */
bool cron_tz_valid(const char *tz);

/* The first occurrence of @c strictly after @after_ms (Unix milliseconds)
 * in timezone @tz. Returns 0 and sets *next_ms, or -1 if there is none
 * within 5 years of civil time (e.g. "0 0 30 2 *", or "0 0 29 2 *" across
 * the non-leap 2100), if @tz is invalid, or if @after_ms is beyond
 * +-10^15 ms (about 31,000 years). */
int cron_next(const struct cron *c,
              const char *tz,
              int64_t after_ms,
              int64_t *next_ms);

#endif /* SCHED_CRON_H_ */
