/* http: payload.url, method (GET), headers (object), body (string or JSON).
 * A 2xx answer is success; the status and a bounded body are kept. The job
 * sees X-Rota-Job-Id, X-Rota-Attempt and X-Rota-Lease-Token. */

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/worker.h"

static size_t body_cb(char *p, size_t size, size_t n, void *data)
{
    tail_add(data, p, size * n);
    return size * n;
}

static int progress_cb(void *data,
                       curl_off_t a,
                       curl_off_t b,
                       curl_off_t c,
                       curl_off_t d)
{
    struct run *r = data;
    (void)a, (void)b, (void)c, (void)d;
    return r->cancel || r->lost; /* Non-zero aborts the transfer. */
}

void exec_http(struct run *r, struct outcome *out)
{
    json_t *payload = json_object_get(r->job, "payload");
    const char *url = json_string_value(json_object_get(payload, "url"));
    const char *method = json_string_value(json_object_get(payload, "method"));
    json_t *headers = json_object_get(payload, "headers");
    json_t *body = json_object_get(payload, "body");
    long long timeout = worker_duration_ms(
        json_string_value(json_object_get(r->job, "timeout")));
    struct curl_slist *h = NULL;
    char line[512], *body_text = NULL;
    struct tail t;
    const char *key;
    json_t *v;
    CURL *c;
    CURLcode cc;
    long status = 0;

    if (url == NULL ||
        (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        snprintf(out->error, sizeof out->error,
                 "http: payload.url must be an http(s) URL");
        return; /* Not retryable. */
    }
    if (!worker_http_permitted(url, out->error, sizeof out->error)) {
        return; /* Not retryable. */
    }
    c = curl_easy_init();
    snprintf(line, sizeof line, "X-Rota-Job-Id: %s", r->id);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "X-Rota-Attempt: %u", r->attempt);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "X-Rota-Lease-Token: %llu",
             (unsigned long long)r->token);
    h = curl_slist_append(h, line);
    json_object_foreach(headers, key, v)
    {
        if (json_is_string(v)) {
            snprintf(line, sizeof line, "%s: %s", key, json_string_value(v));
            h = curl_slist_append(h, line);
        }
    }
    if (body != NULL) {
        body_text = json_is_string(body) ? strdup(json_string_value(body))
                                         : json_dumps(body, JSON_COMPACT);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body_text);
    }
    tail_init(&t, worker_output_limit);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST,
                     method != NULL ? method
                     : body != NULL ? "POST"
                                    : "GET");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout > 0 ? (long)timeout : 0L);
    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    out->exit_code = (int)status;
    out->output = tail_take(&t);
    if (cc != CURLE_OK) {
        snprintf(out->error, sizeof out->error, "http: %s",
                 r->cancel ? "cancelled" : curl_easy_strerror(cc));
        out->retryable = !r->cancel;
    } else if (status >= 200 && status < 300) {
        out->ok = true;
        out->result = json_pack("{s:i}", "status", (int)status);
    } else {
        snprintf(out->error, sizeof out->error, "http: status %ld", status);
        out->retryable = true;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(body_text);
}
