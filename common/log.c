#include "common/log.h"

#include <execinfo.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* ---- Fatal signals ------------------------------------------------------ */

#if defined(__SANITIZE_ADDRESS__)
#define LOG_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOG_UNDER_ASAN 1
#endif
#endif

#ifndef LOG_UNDER_ASAN
/* Async-signal-safe appends for the handler (no stdio, no malloc). */
static size_t put_str(char *buf, size_t n, size_t size, const char *s)
{
    while (*s != '\0' && n + 1 < size) {
        buf[n++] = *s++;
    }
    return n;
}

static size_t put_num(char *buf,
                      size_t n,
                      size_t size,
                      unsigned long long v,
                      unsigned base)
{
    char digits[24];
    int k = 0;
    do {
        digits[k++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v != 0 && k < (int)sizeof digits);
    while (k > 0 && n + 1 < size) {
        buf[n++] = digits[--k];
    }
    return n;
}

static void fatal_handler(int sig, siginfo_t *si, void *uctx)
{
    void *frames[64];
    char line[256];
    size_t n = 0;
    int depth;
    (void)uctx;

    n = put_str(line, n, sizeof line, "lvl=error mod=main");
    if (log_node_id != 0) {
        n = put_str(line, n, sizeof line, " node=");
        n = put_num(line, n, sizeof line, log_node_id, 10);
    }
    n = put_str(line, n, sizeof line, " msg=\"fatal signal\" signal=");
    n = put_num(line, n, sizeof line, (unsigned)sig, 10);
    n = put_str(line, n, sizeof line, " code=");
    if (si->si_code < 0 && n + 1 < sizeof line) {
        line[n++] = '-'; /* Sent by a process (SI_TKILL, SI_QUEUE...). */
    }
    n = put_num(line, n, sizeof line,
                (unsigned)(si->si_code < 0 ? -si->si_code : si->si_code), 10);
    n = put_str(line, n, sizeof line, " addr=0x");
    n = put_num(line, n, sizeof line, (uintptr_t)si->si_addr, 16);
    n = put_str(line, n, sizeof line, " note=\"stack follows\"\n");
    (void)!write(STDERR_FILENO, line, n);
    depth = backtrace(frames, (int)(sizeof frames / sizeof frames[0]));
    backtrace_symbols_fd(frames, depth, STDERR_FILENO);
    /* SA_RESETHAND restored the default: die of the same signal. */
    raise(sig);
}

#endif /* LOG_UNDER_ASAN */

void log_fatal_signals(void)
{
#ifndef LOG_UNDER_ASAN
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    static char altstack[64 * 1024]; /* A stack overflow still reports. */
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    struct sigaction sa;
    void *warm[1];

    /* The first backtrace() loads libgcc_s: not in a signal handler. */
    (void)backtrace(warm, 1);
    sigaltstack(&ss, NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fatal_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        sigaction(sigs[i], &sa, NULL);
    }
#endif
}
