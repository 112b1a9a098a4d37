/* rotactl snapshot save FILE | verify FILE: the backup file of the whole
 * state (GET /v1/snapshot, format in cluster/snapfile.h; restore with
 * rotad --restore, docs/operations.md).
 *
 * save asks any server for the leader (GET /v1/cluster) and downloads from
 * the leader directly (a follower would forward it, holding the whole
 * answer in its memory), streaming to FILE.tmp.<pid>; then it checks the
 * header and the SHA-256 of the body read back from disk, fsyncs, and
 * renames it to FILE. FILE is never a partial or unverified file. */

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/snapfile.h"
#include "common/buf.h"
#include "common/fs.h"
#include "ctl/ctl.h"

/* ---- verify ----------------------------------------------------------- */

/* Check @path: header, size and SHA-256 of the body. 0, or -1 with @why. */
static int verify_file(const char *path,
                       struct snapfile_header *h,
                       char *why,
                       size_t size)
{
    unsigned char head[SNAPFILE_HEADER_LEN], sha[32];
    static unsigned char chunk[1 << 20];
    uint64_t left;
    unsigned int n = 0;
    const char *bad;
    size_t got;
    EVP_MD_CTX *md;
    FILE *f = fopen(path, "rb");

    if (f == NULL) {
        snprintf(why, size, "%s", strerror(errno));
        return -1;
    }
    got = fread(head, 1, sizeof head, f);
    bad = snapfile_decode(head, got, h);
    if (bad != NULL) {
        snprintf(why, size, "%s", bad);
        fclose(f);
        return -1;
    }
    md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    for (left = h->body_len; left > 0;) {
        size_t want = left < sizeof chunk ? (size_t)left : sizeof chunk;
        got = fread(chunk, 1, want, f);
        if (got == 0) {
            break;
        }
        EVP_DigestUpdate(md, chunk, got);
        left -= got;
    }
    EVP_DigestFinal_ex(md, sha, &n);
    EVP_MD_CTX_free(md);
    got = fread(chunk, 1, 1, f);
    fclose(f);
    if (left > 0 || got != 0) {
        snprintf(why, size,
                 "the file size does not match the header's body length "
                 "(truncated or appended to)");
        return -1;
    }
    if (memcmp(sha, h->sha256, 32) != 0) {
        snprintf(why, size,
                 "SHA-256 of the body does not match the header: the file "
                 "is corrupt");
        return -1;
    }
    return 0;
}

static void print_info(struct ctl *ctl,
                       const char *verb,
                       const char *path,
                       const struct snapfile_header *h)
{
    char sha[65];
    snapfile_hex(h->sha256, sha);
    if (ctl->json) {
        json_t *o =
            json_pack("{s:s,s:I,s:I,s:I,s:s,s:I}", "file", path, "index",
                      (json_int_t)h->index, "term", (json_int_t)h->term,
                      "bytes", (json_int_t)(h->body_len + SNAPFILE_HEADER_LEN),
                      "sha256", sha, "node", (json_int_t)h->node_id);
        ctl_print_json(o);
        json_decref(o);
        return;
    }
    printf("%s %s: index %llu, %llu bytes, term %llu, node %llu, sha256 %s\n",
           verb, path, (unsigned long long)h->index,
           (unsigned long long)(h->body_len + SNAPFILE_HEADER_LEN),
           (unsigned long long)h->term, (unsigned long long)h->node_id, sha);
}

static int cmd_verify(struct ctl *ctl, const char *path)
{
    struct snapfile_header h;
    char why[256];
    if (verify_file(path, &h, why, sizeof why) != 0) {
        fprintf(stderr, "rotactl snapshot verify: %s: %s\n", path, why);
        return CTL_EXIT_ERROR;
    }
    print_info(ctl, "verified", path, &h);
    return 0;
}

/* ---- save ------------------------------------------------------------- */

struct sink
{
    CURL *curl;
    FILE *f;
    struct buf err; /* The body of a refusal (JSON). */
    int status;     /* 0 until the first bytes: then the HTTP status. */
};

static size_t sink_write(char *p, size_t size, size_t nmemb, void *data)
{
    struct sink *k = data;
    size_t n = size * nmemb;
    if (k->status == 0) {
        long st = 0;
        curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &st);
        k->status = (int)st;
    }
    if (k->status != 200) {
        return buf_curl_write(p, size, nmemb, &k->err);
    }
    return fwrite(p, 1, n, k->f) == n ? n : 0;
}

/* The base URL ("http://127.0.0.1:8001") of the leader, or "" if no
 * server says. The scheme is that of the first server. */
static void leader_base(struct ctl *ctl, char *out, size_t size)
{
    long status = 0;
    json_t *v = NULL;
    const char *addr;
    bool tls = ctl->creds.ca_file[0] != '\0' ||
               strncmp(ctl->servers, "https:", 6) == 0;

    out[0] = '\0';
    if (ctl_request(ctl, "GET", "/v1/cluster", NULL, &status, &v) != 0) {
        return;
    }
    addr = json_string_value(
        json_object_get(json_object_get(v, "leader"), "http_addr"));
    if (status == 200 && addr != NULL && addr[0] != '\0') {
        snprintf(out, size, "%s://%s", tls ? "https" : "http", addr);
    }
    json_decref(v);
}

/* GET /v1/snapshot from @base into @f. 0, or an exit code (printed). */
static int download(struct ctl *ctl, const char *base, FILE *f)
{
    char url[1200];
    struct curl_slist *hd = NULL;
    struct sink k = {ctl->curl, f, {0}, 0};
    CURLcode cc;
    int rv = 0;

    snprintf(url, sizeof url, "%s%s/v1/snapshot",
             strncmp(base, "http", 4) == 0   ? ""
             : ctl->creds.ca_file[0] != '\0' ? "https://"
                                             : "http://",
             base);
    buf_init(&k.err, 1 << 16);
    curl_easy_reset(ctl->curl);
    if (ctl->creds.auth[0] != '\0') {
        hd = curl_slist_append(hd, ctl->creds.auth);
    }
    if (ctl->creds.ca_file[0] != '\0') {
        curl_easy_setopt(ctl->curl, CURLOPT_CAINFO, ctl->creds.ca_file);
    }
    curl_easy_setopt(ctl->curl, CURLOPT_URL, url);
    curl_easy_setopt(ctl->curl, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(ctl->curl, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(ctl->curl, CURLOPT_WRITEDATA, &k);
    /* No total deadline (the state may be large): --timeout bounds the
     * connection and any stall. */
    curl_easy_setopt(ctl->curl, CURLOPT_CONNECTTIMEOUT, ctl->timeout);
    curl_easy_setopt(ctl->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(ctl->curl, CURLOPT_LOW_SPEED_TIME,
                     ctl->timeout > 30 ? ctl->timeout : 30L);
    cc = curl_easy_perform(ctl->curl);
    curl_slist_free_all(hd);
    if (cc != CURLE_OK && k.status != 200 && k.status != 0) {
        cc = CURLE_OK; /* A refusal: its body says why. */
    }
    if (cc != CURLE_OK) {
        fprintf(stderr, "rotactl snapshot save: %s: %s\n", url,
                curl_easy_strerror(cc));
        rv = CTL_EXIT_CONN;
    } else if (k.status != 200) {
        json_t *doc = json_loads(buf_str(&k.err), 0, NULL);
        json_t *e = json_object_get(doc, "error");
        fprintf(
            stderr, "error: %s: %s (HTTP %d)\n",
            e != NULL ? json_string_value(json_object_get(e, "code")) : "http",
            e != NULL ? json_string_value(json_object_get(e, "message"))
                      : buf_str(&k.err),
            k.status);
        json_decref(doc);
        rv = CTL_EXIT_ERROR;
    }
    buf_free(&k.err);
    return rv;
}

static int sync_dir_of(const char *path)
{
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", path);
    return fs_sync_dir(dirname(copy));
}

static int cmd_save(struct ctl *ctl, const char *path)
{
    char tmp[1100], base[256], why[256];
    struct snapfile_header h;
    FILE *f;
    int rv = CTL_EXIT_CONN;

    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    f = fopen(tmp, "wb");
    if (f == NULL) {
        fprintf(stderr, "rotactl snapshot save: %s: %s\n", tmp,
                strerror(errno));
        return CTL_EXIT_ERROR;
    }
    if (ctl->curl == NULL) {
        ctl->curl = curl_easy_init();
    }
    leader_base(ctl, base, sizeof base);
    if (base[0] != '\0') {
        rv = download(ctl, base, f);
    }
    if (rv == CTL_EXIT_CONN) { /* No leader known: any server (forwards). */
        char servers[1024], *save = NULL;
        snprintf(servers, sizeof servers, "%s", ctl->servers);
        for (char *s = strtok_r(servers, ",", &save);
             s != NULL && rv == CTL_EXIT_CONN; s = strtok_r(NULL, ",", &save)) {
            rewind(f);
            if (ftruncate(fileno(f), 0) != 0) {
                break;
            }
            rv = download(ctl, s, f);
        }
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fprintf(stderr, "rotactl snapshot save: %s: %s\n", tmp,
                strerror(errno));
        rv = rv != 0 ? rv : CTL_EXIT_ERROR;
    }
    fclose(f);
    if (rv == 0 && verify_file(tmp, &h, why, sizeof why) != 0) {
        fprintf(stderr,
                "rotactl snapshot save: the download does not verify: "
                "%s\n",
                why);
        rv = CTL_EXIT_ERROR;
    }
    if (rv == 0 && (rename(tmp, path) != 0 || sync_dir_of(path) != 0)) {
        fprintf(stderr, "rotactl snapshot save: %s: %s\n", path,
                strerror(errno));
        rv = CTL_EXIT_ERROR;
    }
    if (rv != 0) {
        unlink(tmp);
        return rv;
    }
    print_info(ctl, "saved", path, &h);
    return 0;
}

int ctl_cmd_snapshot(struct ctl *ctl, int argc, char **argv)
{
    if (argc != 3 ||
        (strcmp(argv[1], "save") != 0 && strcmp(argv[1], "verify") != 0)) {
        fprintf(stderr,
                "usage: rotactl snapshot save FILE | verify FILE\n"
                "  (restore: rotad --restore FILE on an empty --data-dir; "
                "docs/operations.md)\n");
        return CTL_EXIT_USAGE;
    }
    return strcmp(argv[1], "save") == 0 ? cmd_save(ctl, argv[2])
                                        : cmd_verify(ctl, argv[2]);
}
