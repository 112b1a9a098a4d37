#ifndef COMMON_LOG_H_
#define COMMON_LOG_H_

/* Operator logs: one line per event in key=value form, e.g.
 *   ts=2026-11-22T10:00:00.123Z lvl=info mod=cluster node=2 msg="leader
 *   changed" leader=1 term=3
 * Each .c defines LOG_MODULE before including this header. The level is
 * checked before formatting. TRACE is for developers: file:line, printed
 * only when ROTA_TRACE=1. */

#include <stdbool.h>

enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

extern int log_level;                  /* Minimum level printed (LOG_INFO). */
extern bool log_trace_enabled;         /* ROTA_TRACE=1. */
extern unsigned long long log_node_id; /* Printed as node=..., 0 = none. */

/* Read ROTA_TRACE and ROTA_LOG_LEVEL from the environment. */
void log_init(void);

/* On SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT: write one line naming
 * the signal and the faulting address, then the stack (one frame a line,
 * "binary(+offset)": addr2line -e BINARY OFFSET), to stderr, and die of
 * the same signal (the exit status and any core dump stay as they were).
 * Not installed under AddressSanitizer, whose own report says more. */
void log_fatal_signals(void);

/* Parse "debug", "info", "warn", "error"; -1 if unknown. */
int log_level_parse(const char *name);

/* @fmt continues the line after msg=...: pass key=value pairs. */
void log_emit(int level, const char *mod, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void log_trace(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifndef LOG_MODULE
#define LOG_MODULE "rota"
#endif

/* LOG(LOG_INFO, "leader changed", "leader=%llu term=%llu", a, b) */
#define LOG(level, msg, ...)                                   \
    do {                                                       \
        if ((level) >= log_level) {                            \
            log_emit((level), LOG_MODULE, (msg), __VA_ARGS__); \
        }                                                      \
    } while (0)

#define TRACE(...)                                      \
    do {                                                \
        if (log_trace_enabled) {                        \
            log_trace(__FILE__, __LINE__, __VA_ARGS__); \
        }                                               \
    } while (0)

#endif /* COMMON_LOG_H_ */
