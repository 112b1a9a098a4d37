/* rotactl's HTTP client: one request to the first server that answers. */

#include "ctl/ctl.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

void ctl_url(const struct ctl *ctl,
             const char *server,
             const char *path,
             char *url,
             size_t size)
{
    snprintf(url, size, "%s%s%s",
             strncmp(server, "http", 4) == 0 ? ""
             : ctl->creds.ca_file[0] != '\0' ? "https://"
                                             : "http://",
             server, path);
}

struct curl_slist *ctl_setup(struct ctl *ctl,
                             void *curl,
                             const char *url,
                             struct curl_slist *h)
{
    if (ctl->creds.auth[0] != '\0') {
        h = curl_slist_append(h, ctl->creds.auth);
    }
    if (ctl->creds.ca_file[0] != '\0') {
        curl_easy_setopt(curl, CURLOPT_CAINFO, ctl->creds.ca_file);
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    return h;
}

int ctl_servers(const struct ctl *ctl, char list[][256], int max)
{
    char servers[1024];
    char *save = NULL;
    int n = 0;

    snprintf(servers, sizeof servers, "%s", ctl->servers);
    for (char *s = strtok_r(servers, ",", &save); s != NULL && n < max;
         s = strtok_r(NULL, ",", &save)) {
        snprintf(list[n++], 256, "%s", s);
    }
    return n;
}

int ctl_request(struct ctl *ctl,
                const char *method,
                const char *path,
                const char *body,
                long *status,
                json_t **out)
{
    char servers[CTL_MAX_SERVERS][256];
    int n = ctl_servers(ctl, servers, CTL_MAX_SERVERS);

    if (ctl->curl == NULL) {
        ctl->curl = curl_easy_init();
    }
    for (int i = 0; i < n; i++) {
        char url[8192];
        struct buf b;
        struct curl_slist *h = NULL;
        CURLcode cc;

        ctl_url(ctl, servers[i], path, url, sizeof url);
        buf_init(&b, 0);
        curl_easy_reset(ctl->curl);
        h = curl_slist_append(h, "Content-Type: application/json");
        h = ctl_setup(ctl, ctl->curl, url, h);
        curl_easy_setopt(ctl->curl, CURLOPT_CUSTOMREQUEST, method);
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
    return CTL_EXIT_CONN;
}

void ctl_print_error(long status, json_t *resp)
{
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
        ctl_print_error(status, resp);
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
