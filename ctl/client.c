/* rotactl's HTTP client: one request to the first server that answers. */

#include "ctl/ctl.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

int ctl_request(struct ctl *ctl,
                const char *method,
                const char *path,
                const char *body,
                long *status,
                json_t **out)
{
    char servers[1024];
    char *save = NULL;
    int rv = CTL_EXIT_CONN;

    snprintf(servers, sizeof servers, "%s", ctl->servers);
    if (ctl->curl == NULL) {
        ctl->curl = curl_easy_init();
    }
    for (char *s = strtok_r(servers, ",", &save); s != NULL;
         s = strtok_r(NULL, ",", &save)) {
        char url[2048];
        struct buf b;
        struct curl_slist *h = NULL;
        CURLcode cc;

        snprintf(url, sizeof url, "%s%s%s",
                 strncmp(s, "http", 4) == 0      ? ""
                 : ctl->creds.ca_file[0] != '\0' ? "https://"
                                                 : "http://",
                 s, path);
        buf_init(&b, 0);
        curl_easy_reset(ctl->curl);
        h = curl_slist_append(h, "Content-Type: application/json");
        if (ctl->creds.auth[0] != '\0') {
            h = curl_slist_append(h, ctl->creds.auth);
        }
        if (ctl->creds.ca_file[0] != '\0') {
            curl_easy_setopt(ctl->curl, CURLOPT_CAINFO, ctl->creds.ca_file);
        }
        curl_easy_setopt(ctl->curl, CURLOPT_URL, url);
        curl_easy_setopt(ctl->curl, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(ctl->curl, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(ctl->curl, CURLOPT_WRITEFUNCTION, buf_curl_write);
        curl_easy_setopt(ctl->curl, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(ctl->curl, CURLOPT_TIMEOUT, ctl->timeout);
        if (body != NULL) {
            curl_easy_setopt(ctl->curl, CURLOPT_POSTFIELDS, body);
        }
        cc = curl_easy_perform(ctl->curl);
        curl_slist_free_all(h);
        if (cc != CURLE_OK) {
            fprintf(stderr, "rotactl: %s: %s\n", url, curl_easy_strerror(cc));
            buf_free(&b);
            continue; /* Try the next server. */
        }
        curl_easy_getinfo(ctl->curl, CURLINFO_RESPONSE_CODE, status);
        *out = b.p != NULL ? json_loads(b.p, JSON_DECODE_ANY, NULL) : NULL;
        if (*out == NULL && b.p != NULL) {
            *out = json_string(b.p);
        }
        buf_free(&b);
        return 0;
    }
    return rv;
}

int ctl_call(struct ctl *ctl,
             const char *method,
             const char *path,
             const char *body,
             json_t **out)
{
    long status = 0;
    json_t *resp = NULL;
    int rv = ctl_request(ctl, method, path, body, &status, &resp);

    if (rv != 0) {
        fprintf(stderr, "rotactl: no server answered (%s)\n", ctl->servers);
        return rv;
    }
    if (status >= 400) {
        json_t *err = json_object_get(resp, "error");
        const char *field = json_string_value(json_object_get(err, "field"));
        if (err != NULL) {
            fprintf(stderr, "error: %s: %s%s%s%s (HTTP %ld)\n",
                    json_string_value(json_object_get(err, "code")),
                    json_string_value(json_object_get(err, "message")),
                    field != NULL && field[0] ? " (field " : "",
                    field != NULL && field[0] ? field : "",
                    field != NULL && field[0] ? ")" : "", status);
        } else {
            fprintf(stderr, "error: HTTP %ld\n", status);
        }
        json_decref(resp);
        return CTL_EXIT_ERROR;
    }
    *out = resp;
    return 0;
}

void ctl_add_query(char *q, size_t size, const char *key, const char *val)
{
    char *esc = curl_easy_escape(NULL, val, 0);
    size_t n = strlen(q);
    snprintf(q + n, size - n, "%c%s=%s", strchr(q, '?') != NULL ? '&' : '?',
             key, esc);
    curl_free(esc);
}
