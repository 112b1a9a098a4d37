#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int log_level = LOG_INFO;
bool log_trace_enabled = false;
unsigned long long log_node_id = 0;

static const char *level_names[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

void log_init(void)
{
    const char *t = getenv("ROTA_TRACE");
    const char *l = getenv("ROTA_LOG_LEVEL");
    log_trace_enabled = t != NULL && strcmp(t, "1") == 0;
    if (l != NULL && log_level_parse(l) >= 0) {
        log_level = log_level_parse(l);
    }
}

static void timestamp(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

void log_emit(int level, const char *mod, const char *msg, const char *fmt, ...)
{
    char line[2048];
    char ts[40];
    int n;
    va_list ap;

    if (level < LOG_DEBUG || level > LOG_ERROR) {
        level = LOG_ERROR;
    }
    timestamp(ts, sizeof ts);
    n = snprintf(line, sizeof line, "ts=%s lvl=%s mod=%s", ts,
                 level_names[level], mod);
    if (log_node_id != 0 && n < (int)sizeof line) {
        n += snprintf(line + n, sizeof line - (size_t)n, " node=%llu",
                      log_node_id);
    }
    if (n < (int)sizeof line) {
        n += snprintf(line + n, sizeof line - (size_t)n, " msg=\"%s\"", msg);
    }
    if (fmt != NULL && fmt[0] != '\0' && n < (int)sizeof line - 1) {
        line[n++] = ' ';
        va_start(ap, fmt);
        n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
    }
    if (n >= (int)sizeof line) {
        n = (int)sizeof line - 1;
    }
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr);
}

void log_trace(const char *file, int line, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "trace %s:%d %s\n", file, line, buf);
}
