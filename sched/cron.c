#include "sched/cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <unicode/ucal.h>
#include <unicode/ustring.h>

/* ---- Parsing ---------------------------------------------------------- */

/* Where a parse error goes: the caller's buffers. */
struct perr
{
    char *field;
    size_t field_size;
    char *msg;
    size_t msg_size;
};

static void copy_str(char *dst, size_t size, const char *src)
{
    if (dst != NULL && size > 0) {
        snprintf(dst, size, "%s", src);
    }
}

/* Record the error and return -1, so callers can `return fail(...)`. */
static int fail(const struct perr *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(const struct perr *e, const char *field, const char *fmt, ...)
{
    va_list ap;
    copy_str(e->field, e->field_size, field);
    if (e->msg != NULL && e->msg_size > 0) {
        va_start(ap, fmt);
        vsnprintf(e->msg, e->msg_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MONTH, F_DOW, F__COUNT };

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR",
                                          "MAY", "JUN", "JUL", "AUG",
                                          "SEP", "OCT", "NOV", "DEC"};
static const char *const dow_names[] = {"SUN", "MON", "TUE", "WED",
                                        "THU", "FRI", "SAT"};

struct field_spec
{
    const char *name; /* Reported in errors. */
    int min, max;     /* Values accepted in the input. */
    /* Where '*' and 'a/step' stop. Below max only for day of week, whose
     * 7 is an alias of 0: '*' must not visit Sunday twice. */
    int top;
    const char *const *names; /* names[i] is the value name_base + i. */
    int name_base, name_count;
    const char *name_kind; /* "month name", for "not a number or ..." */
};

static const struct field_spec specs[F__COUNT] = {
    {"seconds", 0, 59, 59, NULL, 0, 0, NULL},
    {"minutes", 0, 59, 59, NULL, 0, 0, NULL},
    {"hours", 0, 23, 23, NULL, 0, 0, NULL},
    {"day_of_month", 1, 31, 31, NULL, 0, 0, NULL},
    {"month", 1, 12, 12, month_names, 1, 12, "month name"},
    {"day_of_week", 0, 7, 6, dow_names, 0, 7, "day name"},
};

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' ||
           ch == '\f';
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static char to_upper(char ch)
{
    return ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
}

/* ASCII case-insensitive comparison of the slice @p/@n with @word; our own
 * so the result does not depend on the C locale. */
static bool slice_eq_nocase(const char *p, size_t n, const char *word)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (word[i] == '\0' || to_upper(p[i]) != to_upper(word[i])) {
            return false;
        }
    }
    return word[i] == '\0';
}

/* A decimal number or a name of the field; @item is only for messages. */
static int parse_value(const struct field_spec *fs,
                       const char *p,
                       size_t n,
                       const char *item,
                       size_t item_len,
                       int *out,
                       const struct perr *e)
{
    bool digits = n > 0;
    for (size_t i = 0; i < n; i++) {
        digits = digits && is_digit(p[i]);
    }
    if (n == 0) {
        return fail(e, fs->name, "\"%.*s\" is missing a value", (int)item_len,
                    item);
    }
    if (digits) {
        /* More than 3 digits can only be out of range; stop early so the
         * accumulation cannot overflow. */
        int v = 0;
        if (n <= 3) {
            for (size_t i = 0; i < n; i++) {
                v = v * 10 + (p[i] - '0');
            }
        }
        if (n > 3 || v < fs->min || v > fs->max) {
            return fail(e, fs->name, "\"%.*s\" is out of range %d-%d", (int)n,
                        p, fs->min, fs->max);
        }
        *out = v;
        return 0;
    }
    for (int i = 0; i < fs->name_count; i++) {
        if (slice_eq_nocase(p, n, fs->names[i])) {
            *out = fs->name_base + i;
            return 0;
        }
    }
    if (fs->names != NULL) {
        return fail(e, fs->name, "\"%.*s\" is not a number or %s", (int)n, p,
                    fs->name_kind);
    }
    return fail(e, fs->name, "\"%.*s\" is not a number", (int)n, p);
}

/* One list item: '*', '?', 'a', 'a-b', each with an optional '/step'. */
static int parse_item(const struct field_spec *fs,
                      const char *p,
                      size_t n,
                      uint64_t *bits,
                      bool *star,
                      const struct perr *e)
{
    const char *slash = memchr(p, '/', n);
    size_t base_len = slash != NULL ? (size_t)(slash - p) : n;
    int lo, hi, step = 1;

    if (slash != NULL) {
        const char *s = slash + 1;
        size_t sn = n - base_len - 1;
        int span = fs->top - fs->min + 1;
        bool ok = sn > 0 && sn <= 3;
        step = 0;
        for (size_t i = 0; ok && i < sn; i++) {
            ok = is_digit(s[i]);
            step = step * 10 + (s[i] - '0');
        }
        /* A step beyond the span would select the start alone: almost
         * surely a mistake, so reject it rather than guess. */
        if (!ok || step < 1 || step > span) {
            return fail(e, fs->name, "\"%.*s\" has an invalid step (1-%d)",
                        (int)n, p, span);
        }
    }

    if (base_len == 1 && (p[0] == '*' || p[0] == '?')) {
        lo = fs->min;
        hi = fs->top;
        /* Only a full-range item leaves the field unrestricted; this is
         * what the day-of-month/day-of-week OR rule looks at. */
        if (step == 1) {
            *star = true;
        }
    } else {
        const char *dash = memchr(p, '-', base_len);
        if (dash != NULL) {
            size_t ln = (size_t)(dash - p);
            if (parse_value(fs, p, ln, p, n, &lo, e) != 0 ||
                parse_value(fs, dash + 1, base_len - ln - 1, p, n, &hi, e) !=
                    0) {
                return -1;
            }
        } else {
            if (parse_value(fs, p, base_len, p, n, &lo, e) != 0) {
                return -1;
            }
            /* 'a/step' runs from a to the end of the field, as in most
             * cron dialects (Quartz "0/15"). */
            hi = slash != NULL ? fs->top : lo;
        }
        if (lo > hi) {
            return fail(e, fs->name, "\"%.*s\" is a backwards range", (int)n,
                        p);
        }
    }

    for (int v = lo; v <= hi; v += step) {
        /* Day of week 7 is Sunday, bit 0. */
        int bit = fs == &specs[F_DOW] && v == 7 ? 0 : v;
        *bits |= UINT64_C(1) << bit;
    }
    return 0;
}

/* A comma-separated list of items. */
static int parse_field(const struct field_spec *fs,
                       const char *p,
                       size_t n,
                       uint64_t *bits,
                       bool *star,
                       const struct perr *e)
{
    size_t start = 0;
    *bits = 0;
    *star = false;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != ',') {
            continue;
        }
        if (i == start) {
            return fail(e, fs->name, "\"%.*s\" has an empty list item", (int)n,
                        p);
        }
        if (parse_item(fs, p + start, i - start, bits, star, e) != 0) {
            return -1;
        }
        start = i + 1;
    }
    return 0;
}

/* "<int><unit>..." with units ms, s, m, h, into milliseconds. */
static int parse_every(const char *p,
                       size_t n,
                       int64_t *out,
                       const struct perr *e)
{
    int64_t total = 0;
    size_t i = 0;

    if (n == 0) {
        return fail(e, "every", "\"@every\" needs a duration such as 30s");
    }
    while (i < n) {
        int64_t num = 0, unit;
        if (!is_digit(p[i])) {
            return fail(e, "every",
                        "\"%.*s\" is not a duration (e.g. 30s, 5m, 1h30m)",
                        (int)n, p);
        }
        while (i < n && is_digit(p[i])) {
            if (num > (INT64_MAX - 9) / 10) {
                return fail(e, "every", "\"%.*s\" is too long", (int)n, p);
            }
            num = num * 10 + (p[i++] - '0');
        }
        if (i + 1 < n && p[i] == 'm' && p[i + 1] == 's') {
            unit = 1;
            i += 2;
        } else if (i < n && (p[i] == 'h' || p[i] == 'm' || p[i] == 's')) {
            unit = p[i] == 'h' ? 3600000 : p[i] == 'm' ? 60000 : 1000;
            i++;
        } else {
            return fail(e, "every",
                        "\"%.*s\" is not a duration (units are ms, s, m, h)",
                        (int)n, p);
        }
        if (num > (INT64_MAX - total) / unit) {
            return fail(e, "every", "\"%.*s\" is too long", (int)n, p);
        }
        total += num * unit;
    }
    /* Shorter intervals would turn the scheduler into a busy loop. */
    if (total < 1000) {
        return fail(e, "every", "\"%.*s\" is shorter than 1s", (int)n, p);
    }
    *out = total;
    return 0;
}

static const struct
{
    const char *name;
    const char *expansion;
} macros[] = {
    {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

int cron_parse(const char *expr,
               struct cron *out,
               char *field,
               size_t field_size,
               char *msg,
               size_t msg_size)
{
    const struct perr e = {field, field_size, msg, msg_size};
    const char *tok[7];
    size_t tok_len[7];
    int ntok = 0;
    size_t len = 0;
    const struct field_spec *fs;
    uint64_t bits[F__COUNT];
    bool star[F__COUNT];

    copy_str(field, field_size, "");
    copy_str(msg, msg_size, "");
    if (out == NULL) {
        return fail(&e, "expression", "no output");
    }
    memset(out, 0, sizeof *out);
    if (expr == NULL) {
        return fail(&e, "expression", "expression is missing");
    }
    /* Bounded scan: never read past CRON_MAX_EXPR, whatever the input. */
    while (len < CRON_MAX_EXPR && expr[len] != '\0') {
        len++;
    }
    if (len >= CRON_MAX_EXPR) {
        return fail(&e, "expression", "expression is longer than %d characters",
                    CRON_MAX_EXPR - 1);
    }

    /* Split on whitespace; a 7th token is enough to know there are too
     * many, so stop collecting there. */
    for (size_t i = 0; i < len;) {
        size_t j;
        if (is_space(expr[i])) {
            i++;
            continue;
        }
        for (j = i; j < len && !is_space(expr[j]); j++) {
        }
        if (ntok < 7) {
            tok[ntok] = expr + i;
            tok_len[ntok] = j - i;
        }
        ntok++;
        i = j;
    }

    if (ntok > 0 && tok[0][0] == '@') {
        if (slice_eq_nocase(tok[0], tok_len[0], "@every")) {
            if (ntok > 2) {
                return fail(&e, "every", "\"%.*s\" is not part of a duration",
                            (int)tok_len[2], tok[2]);
            }
            return parse_every(ntok == 2 ? tok[1] : "",
                               ntok == 2 ? tok_len[1] : 0, &out->every_ms, &e);
        }
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
            if (!slice_eq_nocase(tok[0], tok_len[0], macros[i].name)) {
                continue;
            }
            if (ntok > 1) {
                return fail(&e, "expression", "unexpected \"%.*s\" after %s",
                            (int)tok_len[1], tok[1], macros[i].name);
            }
            return cron_parse(macros[i].expansion, out, field, field_size, msg,
                              msg_size);
        }
        return fail(&e, "expression", "\"%.*s\" is not a known macro",
                    (int)tok_len[0], tok[0]);
    }

    if (ntok != 5 && ntok != 6) {
        return fail(&e, "expression", "\"%.*s\" has %d fields, expected 5 or 6",
                    (int)len, expr, ntok);
    }
    /* With 5 fields there is no seconds field: second 0. */
    fs = ntok == 6 ? &specs[F_SEC] : &specs[F_MIN];
    bits[F_SEC] = 1;
    star[F_SEC] = false;
    for (int i = 0; i < ntok; i++, fs++) {
        size_t k = (size_t)(fs - specs);
        if (parse_field(fs, tok[i], tok_len[i], &bits[k], &star[k], &e) != 0) {
            memset(out, 0, sizeof *out);
            return -1;
        }
    }
    out->sec = bits[F_SEC];
    out->min = bits[F_MIN];
    out->hour = (uint32_t)bits[F_HOUR];
    out->dom = (uint32_t)bits[F_DOM];
    out->month = (uint16_t)bits[F_MONTH];
    out->dow = (uint8_t)bits[F_DOW];
    out->dom_star = star[F_DOM];
    out->dow_star = star[F_DOW];
    return 0;
}

/* ---- Timezones -------------------------------------------------------- */

#define TZ_NAME_MAX 64   /* IANA names are at most ~32 characters. */
#define TZ_CACHE_SIZE 16 /* A cluster uses a handful of zones. */

/* Opening a UCalendar loads zone rules: keep them open. Entries are never
 * closed except when evicted, so the table is not thread-safe (see the
 * header). */
static struct
{
    char name[TZ_NAME_MAX];
    UCalendar *cal;
} tz_cache[TZ_CACHE_SIZE];
static unsigned tz_cache_victim;

/* NULL and "" are UTC. */
static const char *tz_name(const char *tz)
{
    return tz == NULL || tz[0] == '\0' ? "UTC" : tz;
}

/* To UTF-16 for ICU. Only the characters of IANA names are let through,
 * which are all invariant, so u_charsToUChars converts them exactly. */
static bool tz_to_uchars(const char *name, UChar *u)
{
    size_t n = strlen(name);
    if (n >= TZ_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              is_digit(ch) || ch == '/' || ch == '_' || ch == '-' ||
              ch == '+')) {
            return false;
        }
    }
    u_charsToUChars(name, u, (int32_t)n + 1);
    return true;
}

/* ICU's ucal_open() silently falls back to GMT for an unknown name, so
 * validity must be asked separately. Custom ids ("GMT+05:00") are not
 * system zones: rejected, as they are not IANA names. */
static bool tz_check(const UChar *u)
{
    UChar canon[TZ_NAME_MAX];
    UBool is_system = 0;
    UErrorCode st = U_ZERO_ERROR;
    ucal_getCanonicalTimeZoneID(u, -1, canon, TZ_NAME_MAX, &is_system, &st);
    return U_SUCCESS(st) && is_system;
}

bool cron_tz_valid(const char *tz)
{
    UChar u[TZ_NAME_MAX];
    return tz_to_uchars(tz_name(tz), u) && tz_check(u);
}

static UCalendar *tz_calendar(const char *tz)
{
    const char *name = tz_name(tz);
    UChar u[TZ_NAME_MAX];
    UErrorCode st = U_ZERO_ERROR;
    UCalendar *cal;
    unsigned slot;

    for (unsigned i = 0; i < TZ_CACHE_SIZE; i++) {
        if (tz_cache[i].cal != NULL && strcmp(tz_cache[i].name, name) == 0) {
            return tz_cache[i].cal;
        }
    }
    if (!tz_to_uchars(name, u) || !tz_check(u)) {
        return NULL;
    }
    cal = ucal_open(u, -1, "en_US_POSIX", UCAL_GREGORIAN, &st);
    if (U_FAILURE(st)) {
        return NULL;
    }
    /* The DST rules of the header: a skipped wall time resolves to the end
     * of the gap, a repeated one to its first (earlier) instant. */
    ucal_setAttribute(cal, UCAL_SKIPPED_WALL_TIME, UCAL_WALLTIME_NEXT_VALID);
    ucal_setAttribute(cal, UCAL_REPEATED_WALL_TIME, UCAL_WALLTIME_FIRST);
    /* Proleptic Gregorian, like our own day arithmetic: without this ICU
     * uses the Julian calendar before 1582. */
    ucal_setGregorianChange(cal, -1e17, &st);
    if (U_FAILURE(st)) {
        ucal_close(cal);
        return NULL;
    }

    slot = TZ_CACHE_SIZE;
    for (unsigned i = 0; i < TZ_CACHE_SIZE; i++) {
        if (tz_cache[i].cal == NULL) {
            slot = i;
            break;
        }
    }
    if (slot == TZ_CACHE_SIZE) {
        /* Full: evict round-robin. More than 16 zones in use is rare;
         * then it just costs reopening. */
        slot = tz_cache_victim++ % TZ_CACHE_SIZE;
        ucal_close(tz_cache[slot].cal);
    }
    snprintf(tz_cache[slot].name, TZ_NAME_MAX, "%s", name);
    tz_cache[slot].cal = cal;
    return cal;
}

/* ---- Civil time ------------------------------------------------------- */

/* A local wall-clock time (proleptic Gregorian). */
struct civil
{
    int year, mon, day; /* mon 1..12, day 1..31 */
    int hour, min, sec;
};

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* Floor division: C's '/' truncates toward zero, wrong for years < 1. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days from 0001-01-01 to the 1st of January of @y. */
static int64_t days_before_year(int y)
{
    int64_t p = (int64_t)y - 1;
    return 365 * p + floor_div(p, 4) - floor_div(p, 100) + floor_div(p, 400);
}

/* A day number, only compared or taken mod 7: 0001-01-01 is 0. */
static int64_t day_number(int y, int m, int d)
{
    static const int before[12] = {0,   31,  59,  90,  120, 151,
                                   181, 212, 243, 273, 304, 334};
    return days_before_year(y) + before[m - 1] + (m > 2 && is_leap(y)) + d - 1;
}

/* 0 = Sunday. 0001-01-01 (proleptic Gregorian) was a Monday. */
static int weekday(int y, int m, int d)
{
    int64_t r = (day_number(y, m, d) + 1) % 7;
    return (int)(r < 0 ? r + 7 : r);
}

static bool day_matches(const struct cron *c, const struct civil *w)
{
    bool dom = (c->dom >> w->day) & 1;
    bool dow = (c->dow >> weekday(w->year, w->mon, w->day)) & 1;
    /* Vixie rule: two restricted fields widen the match. */
    if (!c->dom_star && !c->dow_star) {
        return dom || dow;
    }
    return dom && dow;
}

/* Move @w to the first wall time strictly after it that matches @c, trying
 * whole months, days, hours and minutes at a time. Returns -1 if that is
 * beyond day number @limit. */
static int next_civil(const struct cron *c, struct civil *w, int64_t limit)
{
    w->sec++;
    for (;;) {
        /* Carry: each step below raises at most one field by one. */
        if (w->sec > 59) {
            w->sec = 0;
            w->min++;
        }
        if (w->min > 59) {
            w->min = 0;
            w->hour++;
        }
        if (w->hour > 23) {
            w->hour = 0;
            w->day++;
        }
        if (w->day > days_in_month(w->year, w->mon)) {
            w->day = 1;
            w->mon++;
        }
        if (w->mon > 12) {
            w->mon = 1;
            w->year++;
        }
        if (day_number(w->year, w->mon, w->day) > limit) {
            return -1;
        }
        if (!((c->month >> w->mon) & 1)) {
            /* Carry now: the day check above needs a valid month. */
            if (++w->mon > 12) {
                w->mon = 1;
                w->year++;
            }
            w->day = 1;
            w->hour = w->min = w->sec = 0;
        } else if (!day_matches(c, w)) {
            w->day++;
            w->hour = w->min = w->sec = 0;
        } else if (!((c->hour >> w->hour) & 1)) {
            w->hour++;
            w->min = w->sec = 0;
        } else if (!((c->min >> w->min) & 1)) {
            w->min++;
            w->sec = 0;
        } else if (!((c->sec >> w->sec) & 1)) {
            w->sec++;
        } else {
            return 0;
        }
    }
}

static int to_civil(UCalendar *cal, int64_t ms, struct civil *w)
{
    UErrorCode st = U_ZERO_ERROR;
    ucal_setMillis(cal, (UDate)ms, &st);
    /* EXTENDED_YEAR is signed; YEAR would need the era. */
    w->year = ucal_get(cal, UCAL_EXTENDED_YEAR, &st);
    w->mon = ucal_get(cal, UCAL_MONTH, &st) + 1;
    w->day = ucal_get(cal, UCAL_DATE, &st);
    w->hour = ucal_get(cal, UCAL_HOUR_OF_DAY, &st);
    w->min = ucal_get(cal, UCAL_MINUTE, &st);
    w->sec = ucal_get(cal, UCAL_SECOND, &st);
    return U_SUCCESS(st) ? 0 : -1;
}

/* Wall time to instant, with the calendar's DST attributes. */
static int from_civil(UCalendar *cal, const struct civil *w, int64_t *ms)
{
    UErrorCode st = U_ZERO_ERROR;
    UDate d;
    ucal_clear(cal);
    ucal_set(cal, UCAL_EXTENDED_YEAR, w->year);
    ucal_set(cal, UCAL_MONTH, w->mon - 1);
    ucal_set(cal, UCAL_DATE, w->day);
    ucal_set(cal, UCAL_HOUR_OF_DAY, w->hour);
    ucal_set(cal, UCAL_MINUTE, w->min);
    ucal_set(cal, UCAL_SECOND, w->sec);
    ucal_set(cal, UCAL_MILLISECOND, 0);
    d = ucal_getMillis(cal, &st);
    if (U_FAILURE(st)) {
        return -1;
    }
    *ms = (int64_t)d;
    return 0;
}

/* Inputs beyond this are refused: it keeps years in int and every
 * instant exact in ICU's double. */
#define CRON_MS_LIMIT INT64_C(1000000000000000)
#define CRON_SEARCH_DAYS (5 * 366)
/* Wall times tried per call. Only a repeated hour makes a wall time map
 * to an instant not after @after_ms, so this is never reached in
 * practice; it just bounds the work. */
#define CRON_MAX_TRIES 100000

int cron_next(const struct cron *c,
              const char *tz,
              int64_t after_ms,
              int64_t *next_ms)
{
    UCalendar *cal;
    struct civil w;
    int64_t limit;

    if (c == NULL || next_ms == NULL || c->every_ms < 0 ||
        after_ms < -CRON_MS_LIMIT || after_ms > CRON_MS_LIMIT) {
        return -1;
    }
    /* Looked up for @every too, so an invalid tz fails the same way. */
    cal = tz_calendar(tz);
    if (cal == NULL) {
        return -1;
    }
    if (c->every_ms > 0) {
        /* Cannot overflow: |after_ms| <= 1e15 and a quotient >= 1 means
         * every_ms <= after_ms. */
        *next_ms = (floor_div(after_ms, c->every_ms) + 1) * c->every_ms;
        return 0;
    }

    if (to_civil(cal, after_ms, &w) != 0) {
        return -1;
    }
    limit = day_number(w.year, w.mon, w.day) + CRON_SEARCH_DAYS;
    /* Instants are non-decreasing in wall time (gaps map forward to their
     * end, repeats to their first pass), so the first wall time after the
     * local time of @after_ms whose instant is after @after_ms is the
     * answer. In a repeated hour's second pass, wall times map to the
     * first pass, before @after_ms: keep going. */
    for (int i = 0; i < CRON_MAX_TRIES; i++) {
        int64_t ms;
        if (next_civil(c, &w, limit) != 0 || from_civil(cal, &w, &ms) != 0) {
            return -1;
        }
        if (ms > after_ms) {
            *next_ms = ms;
            return 0;
        }
    }
    return -1;
}
