/* rotactl's output: the server's JSON (--json, -o json) or tables. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl/ctl.h"

void ctl_print_json(json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
    puts(s != NULL ? s : "null");
    free(s);
}

int ctl_get_table(struct ctl *ctl, const char *path, json_t **out)
{
    int rv = ctl_call(ctl, "GET", path, NULL, out);
    if (rv == 0 && ctl->json) {
        ctl_print_json(*out);
        json_decref(*out);
        *out = NULL;
    }
    return rv;
}

const char *ctl_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) && json_string_value(v)[0] != '\0'
               ? json_string_value(v)
               : "-";
}

long long ctl_int(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

void ctl_job_header(void)
{
    printf("%-16s  %-14s %-10s %6s  %-10s %4s  %s\n", "ID", "TYPE", "QUEUE",
           "PRIO", "STATUS", "TRY", "CREATED");
}

void ctl_job_row(json_t *j)
{
    printf("%-16s  %-14.14s %-10.10s %6lld  %-10s %4lld  %s\n",
           ctl_str(j, "id"), ctl_str(j, "type"), ctl_str(j, "queue"),
           ctl_int(j, "priority"), ctl_str(j, "status"), ctl_int(j, "attempts"),
           ctl_str(j, "created_at"));
}

void ctl_jobs_table(json_t *jobs)
{
    json_t *j;
    size_t i;
    ctl_job_header();
    json_array_foreach(jobs, i, j)
    {
        ctl_job_row(j);
    }
}

/* "2026-12-02T10:07:57.123Z" -> milliseconds since the epoch; -1 if not. */
static long long parse_time_ms(const char *s)
{
    struct tm tm;
    int ms = 0, n = 0;
    memset(&tm, 0, sizeof tm);
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6) {
        return -1;
    }
    if (s[n] == '.') {
        sscanf(s + n + 1, "%3d", &ms);
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm) * 1000 + ms;
}

void ctl_age(json_t *o, const char *key, char *out, size_t size)
{
    json_t *v = json_object_get(o, key);
    long long t = json_is_string(v) ? parse_time_ms(json_string_value(v)) : -1;
    struct timespec now;
    long long secs;

    if (t < 0) {
        snprintf(out, size, "-");
        return;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    secs = ((long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 - t) / 1000;
    if (secs < 0) {
        secs = 0; /* The server's clock is ahead of ours. */
    }
    if (secs < 120) {
        snprintf(out, size, "%llds ago", secs);
    } else if (secs < 7200) {
        snprintf(out, size, "%lldm ago", secs / 60);
    } else if (secs < 172800) {
        snprintf(out, size, "%lldh ago", secs / 3600);
    } else {
        snprintf(out, size, "%lldd ago", secs / 86400);
    }
}
