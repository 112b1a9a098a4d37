#include "common/creds.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int read_token(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    size_t n;
    if (f == NULL) {
        return -1;
    }
    n = fread(out, 1, size - 1, f);
    fclose(f);
    out[n] = '\0';
    return 0;
}

/* Trim white space; the rest must be printable without spaces. */
static int clean(char *t)
{
    char *s = t, *e;
    while (isspace((unsigned char)*s)) {
        s++;
    }
    memmove(t, s, strlen(s) + 1);
    e = t + strlen(t);
    while (e > t && isspace((unsigned char)e[-1])) {
        *--e = '\0';
    }
    for (s = t; *s != '\0'; s++) {
        if (!isgraph((unsigned char)*s)) {
            return -1;
        }
    }
    return t[0] != '\0' ? 0 : -1;
}

int creds_load(struct creds *c,
               const char *ca_file,
               const char *token_file,
               char *err,
               size_t size)
{
    char token[400] = "";
    const char *env;

    memset(c, 0, sizeof *c);
    if (ca_file == NULL) {
        ca_file = getenv("ROTA_CA_FILE");
    }
    if (ca_file != NULL && ca_file[0] != '\0') {
        if (access(ca_file, R_OK) != 0) {
            snprintf(err, size, "CA file %s cannot be read", ca_file);
            return -1;
        }
        snprintf(c->ca_file, sizeof c->ca_file, "%s", ca_file);
    }
    if (token_file == NULL && (env = getenv("ROTA_TOKEN")) != NULL &&
        env[0] != '\0') {
        snprintf(token, sizeof token, "%s", env);
    } else {
        if (token_file == NULL) {
            token_file = getenv("ROTA_TOKEN_FILE");
        }
        if (token_file != NULL && token_file[0] != '\0' &&
            read_token(token_file, token, sizeof token) != 0) {
            snprintf(err, size, "token file %s cannot be read", token_file);
            return -1;
        }
    }
    if (token[0] != '\0') {
        if (clean(token) != 0) {
            snprintf(err, size, "the token is empty or has bad characters");
            return -1;
        }
        snprintf(c->auth, sizeof c->auth, "Authorization: Bearer %s", token);
    }
    return 0;
}
