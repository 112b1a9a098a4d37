#ifndef CTL_CTL_H_
#define CTL_CTL_H_

/* rotactl: command-line client of the HTTP API (docs/api.md). */

#include <jansson.h>
#include <stdbool.h>

#include "common/creds.h"

/* Exit codes. */
enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_ERROR = 1, /* The server refused: its message is printed. */
    CTL_EXIT_USAGE = 2,
    CTL_EXIT_CONN = 3, /* No server answered. */
};

struct ctl
{
    const char *servers; /* "http://a:1,http://b:2" */
    bool json;
    long timeout; /* seconds */
    void *curl;   /* CURL *, reused (keep-alive). */
    /* The CA to verify HTTPS against and the ACL token sent as Bearer
     * (common/creds.h: --ca-file, --token-file, ROTA_CA_FILE, ROTA_TOKEN,
     * ROTA_TOKEN_FILE; else a quickstart's .rota/ in this directory). */
    struct creds creds;
};

/* One request; tries each server in turn on connection errors. Returns 0
 * with *status and *out (JSON, or a JSON string for other text), or
 * CTL_EXIT_CONN. */
int ctl_request(struct ctl *ctl,
                const char *method,
                const char *path,
                const char *body,
                long *status,
                json_t **out);

/* The servers of ctl->servers (comma-separated) into @list; their count. */
#define CTL_MAX_SERVERS 16
int ctl_servers(const struct ctl *ctl, char list[][256], int max);

/* The URL of @path on @server: "host:port" gets https:// when a CA file is
 * set, else http://. */
void ctl_url(const struct ctl *ctl,
             const char *server,
             const char *path,
             char *url,
             size_t size);

/* Set @url, the CA and the token (appended to the headers @h) on the CURL
 * handle @curl; returns the header list, which the caller frees after the
 * transfer. */
struct curl_slist;
struct curl_slist *ctl_setup(struct ctl *ctl,
                             void *curl,
                             const char *url,
                             struct curl_slist *h);

/* Print the server's {"error":{...}} (or the HTTP status) on stderr. */
void ctl_print_error(long status, json_t *resp);

/* ctl_request that prints the server's error and returns CTL_EXIT_ERROR on
 * a 4xx/5xx. */
int ctl_call(struct ctl *ctl,
             const char *method,
             const char *path,
             const char *body,
             json_t **out);

/* Append key=val (URL-escaped) to the path or query string @q: '?' if it
 * has none yet, else '&'. */
void ctl_add_query(char *q, size_t size, const char *key, const char *val);

/* output.c: the server's JSON, or tables. */
void ctl_print_json(json_t *v); /* Indented; @v stays owned by the caller. */
/* GET @path into *out (the caller's); with --json it is printed instead and
 * *out is NULL. Returns ctl_call()'s status. */
int ctl_get_table(struct ctl *ctl, const char *path, json_t **out);
const char *ctl_str(json_t *o, const char *key); /* "-" if absent or "". */
long long ctl_int(json_t *o, const char *key);
void ctl_job_header(void);
void ctl_job_row(json_t *job);
void ctl_jobs_table(json_t *jobs); /* Header and one row per job. */
/* The age of the time (RFC 3339, UTC) in o[key]: "3s ago", "5m ago"; "-"
 * if there is none. */
void ctl_age(json_t *o, const char *key, char *out, size_t size);

/* A job: its JSON with --json, else one "key value" line per field.
 * Takes @job. */
int ctl_show_job(struct ctl *ctl, json_t *job);

/* wait.c: wait ID [--timeout D]; watch.c: the event stream. */
int ctl_cmd_wait(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_watch(struct ctl *ctl, int argc, char **argv);

/* workers: GET /v1/workers as a table. */
int ctl_cmd_workers(struct ctl *ctl, int argc, char **argv);

/* sched.c: schedules, dead letters, workflows, queues. */
int ctl_cmd_job_action(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_dlq(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_queues(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_workflow(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_preview(struct ctl *ctl, int argc, char **argv);

/* webhook.c: webhook create|list|get|delete|deliveries. */
int ctl_cmd_webhook(struct ctl *ctl, int argc, char **argv);

/* acl.c: acl bootstrap | token create|list|delete. */
int ctl_cmd_acl(struct ctl *ctl, int argc, char **argv);

/* snapshot.c: snapshot save FILE | verify FILE (the backup file). */
int ctl_cmd_snapshot(struct ctl *ctl, int argc, char **argv);

#endif /* CTL_CTL_H_ */
