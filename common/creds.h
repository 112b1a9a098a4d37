#ifndef COMMON_CREDS_H_
#define COMMON_CREDS_H_

/* What a client of the API (rota-worker, rotactl, rota-bench) presents: the
 * cluster CA to verify HTTPS against, and an ACL token sent as
 * "Authorization: Bearer SECRET". From options, else the environment:
 *   CA file:  --ca-file F, else ROTA_CA_FILE
 *   token:    --token-file F, else ROTA_TOKEN (the secret itself), else
 *             ROTA_TOKEN_FILE
 * A token file holds the secret (surrounding white space ignored). No
 * library headers here: callers hand the strings to libcurl. */

#include <stddef.h>

struct creds
{
    char ca_file[1024]; /* "" = the system's trust store. */
    char auth[512];     /* "Authorization: Bearer ..." or "" (no token). */
};

/* 0, or -1 with the reason in @err (an unreadable or empty token file, a
 * token with bad characters, a CA file that does not exist). */
int creds_load(struct creds *c,
               const char *ca_file,
               const char *token_file,
               char *err,
               size_t size);

#endif /* COMMON_CREDS_H_ */
