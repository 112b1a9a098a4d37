/* rotactl cert: create the certificates of secure mode (issue 11).
 *
 *   rotactl cert create-ca --certs-dir D [--lifetime DAYS] [--overwrite]
 *   rotactl cert create-node --certs-dir D [--lifetime DAYS] [--overwrite]
 *                            HOST...
 *
 * create-ca writes D/ca.crt and D/ca.key: a self-signed CA with an ECDSA
 * P-256 key. create-node writes D/node.crt and D/node.key, signed by the
 * CA in D, valid as a TLS server and as a TLS client for every HOST.
 *
 * Every file is written to a temporary file in D, fsynced and then renamed
 * into place, so a crash leaves the old file or the new one, never a part.
 * Keys are created with mode 0600 from the start. Without --overwrite an
 * existing file is never replaced (checked up front, and again atomically
 * when the file is put in place). */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ctl/cert.h"
#include "ctl/ctl.h"

#define CA_DAYS 3650
#define NODE_DAYS 365
#define MAX_DAYS 36500
/* notBefore is this far in the past, for clocks that trail ours. */
#define BACKDATE_SECONDS 3600
#define ORG "Rota"

struct cert_args
{
    const char *sub; /* "create-ca" or "create-node" */
    const char *dir;
    long days;
    bool overwrite;
    char **hosts;
    int n_hosts;
};

static const char *sub_usage(const char *sub)
{
    if (strcmp(sub, "create-ca") == 0) {
        return "--certs-dir D [--lifetime DAYS (default 3650)] "
               "[--overwrite]";
    }
    return "--certs-dir D [--lifetime DAYS (default 365)] [--overwrite] "
           "HOST...";
}

static int cert_usage(const char *sub, const char *msg)
{
    if (sub == NULL) {
        fprintf(stderr,
                "rotactl cert: %s\nusage: rotactl cert create-ca %s\n"
                "       rotactl cert create-node %s\n",
                msg, sub_usage("create-ca"), sub_usage("create-node"));
    } else {
        fprintf(stderr, "rotactl cert %s: %s\nusage: rotactl cert %s %s\n", sub,
                msg, sub, sub_usage(sub));
    }
    return CTL_EXIT_USAGE;
}

/* Print @what and the oldest queued OpenSSL error; CTL_EXIT_ERROR. */
static int ossl_fail(const char *sub, const char *what)
{
    unsigned long e = ERR_get_error();
    char msg[256] = "unknown error";

    if (e != 0) {
        ERR_error_string_n(e, msg, sizeof msg);
    }
    ERR_clear_error();
    fprintf(stderr, "rotactl cert %s: %s: %s\n", sub, what, msg);
    return CTL_EXIT_ERROR;
}

static int sys_fail(const char *sub, const char *what, const char *path)
{
    fprintf(stderr, "rotactl cert %s: %s %s: %s\n", sub, what, path,
            strerror(errno));
    return CTL_EXIT_ERROR;
}

/* ---- options ------------------------------------------------------------ */

static int parse_args(int argc, char **argv, struct cert_args *a)
{
    static const struct option opts[] = {{"certs-dir", 1, 0, 'd'},
                                         {"lifetime", 1, 0, 'l'},
                                         {"overwrite", 0, 0, 'o'},
                                         {0, 0, 0, 0}};
    bool node = strcmp(a->sub, "create-node") == 0;
    char *end;
    int c;

    a->dir = NULL;
    a->days = node ? NODE_DAYS : CA_DAYS;
    a->overwrite = false;
    /* argv[0] is the subcommand: getopt takes it for the program name. */
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
            case 'd':
                a->dir = optarg;
                break;
            case 'l':
                errno = 0;
                a->days = strtol(optarg, &end, 10);
                if (errno != 0 || end == optarg || *end != '\0' ||
                    a->days < 1 || a->days > MAX_DAYS) {
                    return cert_usage(a->sub,
                                      "--lifetime wants a number of days "
                                      "from 1 to 36500");
                }
                break;
            case 'o':
                a->overwrite = true;
                break;
            default:
                return cert_usage(a->sub, "unknown option or missing argument");
        }
    }
    if (a->dir == NULL || a->dir[0] == '\0') {
        return cert_usage(a->sub, "--certs-dir is required");
    }
    a->hosts = argv + optind;
    a->n_hosts = argc - optind;
    if (node && a->n_hosts == 0) {
        return cert_usage(a->sub, "at least one HOST is required");
    }
    if (!node && a->n_hosts > 0) {
        return cert_usage(a->sub, "unexpected argument");
    }
    return 0;
}

/* ---- files -------------------------------------------------------------- */

/* A file written to a temporary name, waiting to be put in place. */
struct staged
{
    char tmp[PATH_MAX];
    char path[PATH_MAX];
    bool pending; /* tmp exists */
    bool placed;  /* path is ours (created by this run) */
};

static int join_path(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Write @data to a new temporary file in @dir, created with @mode, and
 * fsync it. */
static int stage(const char *sub,
                 const char *dir,
                 const char *name,
                 const char *data,
                 size_t len,
                 mode_t mode,
                 struct staged *s)
{
    unsigned char rnd[6];
    int fd = -1;

    s->pending = s->placed = false;
    if (join_path(s->path, dir, name) != 0) {
        return sys_fail(sub, "cannot write", name);
    }
    for (int tries = 0; fd < 0 && tries < 10; tries++) {
        char tmpname[64];
        if (RAND_bytes(rnd, sizeof rnd) != 1) {
            return ossl_fail(sub, "random bytes");
        }
        snprintf(tmpname, sizeof tmpname, ".%s.tmp-%02x%02x%02x%02x%02x%02x",
                 name, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
        if (join_path(s->tmp, dir, tmpname) != 0) {
            return sys_fail(sub, "cannot write", name);
        }
        fd = open(s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                  mode);
        if (fd < 0 && errno != EEXIST) {
            break;
        }
    }
    if (fd < 0) {
        return sys_fail(sub, "cannot create", s->tmp);
    }
    s->pending = true;
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        int rv = sys_fail(sub, "cannot write", s->tmp);
        close(fd);
        unlink(s->tmp);
        s->pending = false;
        return rv;
    }
    if (close(fd) != 0) {
        int rv = sys_fail(sub, "cannot write", s->tmp);
        unlink(s->tmp);
        s->pending = false;
        return rv;
    }
    return 0;
}

/* Put a staged file in place: rename over an existing file with
 * @overwrite, else fail if the name was taken meanwhile. */
static int place(const char *sub, struct staged *s, bool overwrite)
{
    int rc;

    if (overwrite) {
        rc = rename(s->tmp, s->path);
    } else {
        rc = renameat2(AT_FDCWD, s->tmp, AT_FDCWD, s->path, RENAME_NOREPLACE);
        if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) {
            /* No RENAME_NOREPLACE on this file system: link fails with
             * EEXIST too. */
            rc = link(s->tmp, s->path);
            if (rc == 0) {
                unlink(s->tmp);
            }
        }
    }
    if (rc != 0) {
        if (errno == EEXIST) {
            fprintf(stderr,
                    "rotactl cert %s: %s already exists (created meanwhile?); "
                    "nothing replaced\n",
                    sub, s->path);
            return CTL_EXIT_ERROR;
        }
        return sys_fail(sub, "cannot rename into", s->path);
    }
    s->pending = false;
    s->placed = !overwrite;
    return 0;
}

static void discard(struct staged *s)
{
    if (s->pending) {
        unlink(s->tmp);
        s->pending = false;
    }
}

static int sync_dir(const char *sub, const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int rv = sys_fail(sub, "cannot sync directory", dir);
        if (fd >= 0) {
            close(fd);
        }
        return rv;
    }
    close(fd);
    return 0;
}

/* Without --overwrite, refuse before doing anything if any of @names
 * exists in @dir. */
static int check_absent(const struct cert_args *a, const char *const *names)
{
    char path[PATH_MAX];
    struct stat st;

    if (a->overwrite) {
        return 0;
    }
    for (; *names != NULL; names++) {
        if (join_path(path, a->dir, *names) != 0) {
            return sys_fail(a->sub, "bad path", *names);
        }
        if (lstat(path, &st) == 0) {
            fprintf(stderr,
                    "rotactl cert %s: %s already exists; refusing to "
                    "replace it (use --overwrite to replace it%s)\n",
                    a->sub, path,
                    strcmp(a->sub, "create-ca") == 0
                        ? ": certificates signed by the old CA will no "
                          "longer verify"
                        : "");
            return CTL_EXIT_ERROR;
        }
        if (errno != ENOENT) {
            return sys_fail(a->sub, "cannot stat", path);
        }
    }
    return 0;
}

/* PEM of @cert and @key into two memory BIOs (the key's in secure memory),
 * then staged and placed as @dir/@crt_name and @dir/@key_name. */
static int write_pair(const struct cert_args *a,
                      X509 *cert,
                      EVP_PKEY *key,
                      const char *crt_name,
                      const char *key_name)
{
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_secmem());
    struct staged sc = {.pending = false}, sk = {.pending = false};
    char *cdata, *kdata;
    long clen, klen;
    int rv;

    if (cb == NULL || kb == NULL || PEM_write_bio_X509(cb, cert) != 1 ||
        PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) != 1) {
        rv = ossl_fail(a->sub, "cannot encode PEM");
        goto out;
    }
    clen = BIO_get_mem_data(cb, &cdata);
    klen = BIO_get_mem_data(kb, &kdata);
    /* The key first: a certificate in place always has its key. */
    rv = stage(a->sub, a->dir, key_name, kdata, (size_t)klen, 0600, &sk);
    if (rv == 0) {
        rv = stage(a->sub, a->dir, crt_name, cdata, (size_t)clen, 0644, &sc);
    }
    if (rv == 0) {
        rv = place(a->sub, &sk, a->overwrite);
    }
    if (rv == 0) {
        rv = place(a->sub, &sc, a->overwrite);
        if (rv != 0 && sk.placed) {
            unlink(sk.path); /* A key without its certificate. */
        }
    }
    if (rv == 0) {
        rv = sync_dir(a->sub, a->dir);
    }
out:
    discard(&sk);
    discard(&sc);
    BIO_free(cb);
    BIO_free(kb);
    return rv;
}

/* A PEM pass phrase callback that refuses: never prompt on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int load_ca(const struct cert_args *a, X509 **ca, EVP_PKEY **key)
{
    char crt_path[PATH_MAX], key_path[PATH_MAX];
    BIO *b;

    *ca = NULL;
    *key = NULL;
    if (join_path(crt_path, a->dir, "ca.crt") != 0 ||
        join_path(key_path, a->dir, "ca.key") != 0) {
        return sys_fail(a->sub, "bad path", a->dir);
    }
    b = BIO_new_file(crt_path, "r");
    if (b != NULL) {
        *ca = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
        BIO_free(b);
    }
    if (*ca == NULL) {
        return ossl_fail(a->sub,
                         "cannot read the CA certificate (run "
                         "\"rotactl cert create-ca\" first)");
    }
    b = BIO_new_file(key_path, "r");
    if (b != NULL) {
        *key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
        BIO_free(b);
    }
    if (*key == NULL) {
        return ossl_fail(a->sub,
                         "cannot read the CA key ca.key (encrypted keys "
                         "are not supported)");
    }
    if (X509_check_private_key(*ca, *key) != 1) {
        return ossl_fail(a->sub, "ca.key does not match ca.crt");
    }
    if (X509_check_ca(*ca) < 1) {
        fprintf(stderr, "rotactl cert %s: %s is not a CA certificate\n", a->sub,
                crt_path);
        return CTL_EXIT_ERROR;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(*ca)) <= 0) {
        fprintf(stderr, "rotactl cert %s: %s has expired\n", a->sub, crt_path);
        return CTL_EXIT_ERROR;
    }
    return 0;
}

/* ---- certificates ------------------------------------------------------- */

/* A random positive 128-bit serial number. */
static int set_serial(X509 *x)
{
    unsigned char rnd[16];
    BIGNUM *bn = NULL;
    int ok = 0;

    do {
        if (RAND_bytes(rnd, sizeof rnd) != 1) {
            return 0;
        }
        BN_free(bn);
        bn = BN_bin2bn(rnd, sizeof rnd, NULL);
    } while (bn != NULL && BN_is_zero(bn));
    if (bn != NULL) {
        ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    }
    BN_free(bn);
    return ok;
}

/* A version 3 certificate for @key named O=Rota,CN=@cn, valid from an hour
 * ago for @days days, without issuer, extensions or signature. */
static X509 *new_cert(EVP_PKEY *key, const char *cn, long days)
{
    X509 *x = X509_new();
    X509_NAME *name;

    if (x == NULL) {
        return NULL;
    }
    name = X509_get_subject_name(x);
    if (X509_set_version(x, X509_VERSION_3) != 1 || !set_serial(x) ||
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                   (const unsigned char *)ORG, -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE_SECONDS) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) == NULL ||
        X509_set_pubkey(x, key) != 1) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Add the extension @nid = @value (OpenSSL's config syntax) to @x, which
 * @issuer signs. */
static int add_ext(X509 *issuer, X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) {
        return 0;
    }
    ok = X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/* A host name a DNS SAN may hold: letters, digits, '-', '_', '.', and a
 * leading "*." wildcard label. */
static bool dns_name_ok(const char *h)
{
    size_t n = strlen(h);

    if (n == 0 || n > 253 || h[0] == '.' || h[0] == '-') {
        return false;
    }
    if (strncmp(h, "*.", 2) == 0) {
        h += 2;
    }
    for (; *h != '\0'; h++) {
        char ch = *h;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
              ch == '.')) {
            return false;
        }
    }
    return true;
}

/* One SAN for @host: an IP address for an IPv4 or IPv6 literal (IPv6 also
 * in brackets), else a DNS name. NULL if @host is neither. */
static GENERAL_NAME *host_name(const char *host)
{
    unsigned char addr[16];
    char bare[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(host);
    int len = 0;
    GENERAL_NAME *g;

    if (inet_pton(AF_INET, host, addr) == 1) {
        len = 4;
    } else if (inet_pton(AF_INET6, host, addr) == 1) {
        len = 16;
    } else if (n > 2 && n < sizeof bare && host[0] == '[' &&
               host[n - 1] == ']') {
        snprintf(bare, sizeof bare, "%.*s", (int)(n - 2), host + 1);
        if (inet_pton(AF_INET6, bare, addr) == 1) {
            len = 16;
        }
    }
    if (len == 0 && !dns_name_ok(host)) {
        return NULL;
    }
    g = GENERAL_NAME_new();
    if (g == NULL) {
        return NULL;
    }
    if (len > 0) {
        ASN1_OCTET_STRING *ip = ASN1_OCTET_STRING_new();
        if (ip == NULL || ASN1_OCTET_STRING_set(ip, addr, len) != 1) {
            ASN1_OCTET_STRING_free(ip);
            GENERAL_NAME_free(g);
            return NULL;
        }
        GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
    } else {
        ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
        if (dns == NULL || ASN1_STRING_set(dns, host, (int)n) != 1) {
            ASN1_IA5STRING_free(dns);
            GENERAL_NAME_free(g);
            return NULL;
        }
        GENERAL_NAME_set0_value(g, GEN_DNS, dns);
    }
    return g;
}

/* subjectAltName: one entry per host. */
static int add_sans(const struct cert_args *a, X509 *x)
{
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    int rv = 0;

    if (names == NULL) {
        return ossl_fail(a->sub, "out of memory");
    }
    for (int i = 0; rv == 0 && i < a->n_hosts; i++) {
        GENERAL_NAME *g = host_name(a->hosts[i]);
        if (g == NULL) {
            fprintf(stderr,
                    "rotactl cert %s: \"%s\" is neither an IP address nor a "
                    "DNS name\n",
                    a->sub, a->hosts[i]);
            rv = CTL_EXIT_USAGE;
        } else if (sk_GENERAL_NAME_push(names, g) <= 0) {
            GENERAL_NAME_free(g);
            rv = ossl_fail(a->sub, "out of memory");
        }
    }
    if (rv == 0 &&
        X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, 0) != 1) {
        rv = ossl_fail(a->sub, "cannot add subjectAltName");
    }
    GENERAL_NAMES_free(names);
    return rv;
}

/* mkdir -p @dir, each directory it creates with mode 0700. */
static int mkdir_p(const char *dir)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);

    if (n >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] == '/' || path[i] == '\0') {
            char c = path[i];
            path[i] = '\0';
            if (mkdir(path, 0700) != 0 && errno != EEXIST) {
                return -1;
            }
            path[i] = c;
        }
    }
    return 0;
}

static int create_ca(const struct cert_args *a)
{
    static const char *const names[] = {"ca.crt", "ca.key", NULL};
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    struct stat st;
    int rv;

    if (mkdir_p(a->dir) != 0) {
        return sys_fail(a->sub, "cannot create directory", a->dir);
    }
    if (stat(a->dir, &st) != 0) {
        return sys_fail(a->sub, "cannot stat", a->dir);
    }
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return sys_fail(a->sub, "cannot use", a->dir);
    }
    rv = check_absent(a, names);
    if (rv != 0) {
        return rv;
    }
    key = EVP_EC_gen("P-256");
    if (key == NULL) {
        return ossl_fail(a->sub, "cannot generate the CA key");
    }
    x = new_cert(key, ORG " CA", a->days);
    if (x == NULL || X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
        !add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") ||
        !add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        !add_ext(x, x, NID_subject_key_identifier, "hash") ||
        X509_sign(x, key, EVP_sha256()) <= 0) {
        rv = ossl_fail(a->sub, "cannot build the CA certificate");
    } else {
        rv = write_pair(a, x, key, "ca.crt", "ca.key");
    }
    if (rv == 0) {
        printf("wrote %s/ca.crt and %s/ca.key\n", a->dir, a->dir);
    }
    X509_free(x);
    EVP_PKEY_free(key);
    return rv;
}

/* The node certificate's extensions and signature. */
static int finish_node(const struct cert_args *a,
                       X509 *ca,
                       EVP_PKEY *ca_key,
                       X509 *x)
{
    int rv;

    if (X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1) {
        return ossl_fail(a->sub, "cannot set the issuer");
    }
    /* Not past the CA: a chain is only as valid as its shortest link. */
    if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca)) > 0) {
        fprintf(stderr,
                "rotactl cert %s: warning: the CA expires first; the node "
                "certificate expires with it\n",
                a->sub);
        if (X509_set1_notAfter(x, X509_get0_notAfter(ca)) != 1) {
            return ossl_fail(a->sub, "cannot set notAfter");
        }
    }
    rv = add_sans(a, x);
    if (rv != 0) {
        return rv;
    }
    if (!add_ext(ca, x, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(ca, x, NID_key_usage,
                 "critical,digitalSignature,keyEncipherment") ||
        !add_ext(ca, x, NID_ext_key_usage, "serverAuth,clientAuth") ||
        !add_ext(ca, x, NID_subject_key_identifier, "hash") ||
        !add_ext(ca, x, NID_authority_key_identifier, "keyid:always") ||
        X509_sign(x, ca_key, EVP_sha256()) <= 0) {
        return ossl_fail(a->sub, "cannot build the node certificate");
    }
    return 0;
}

static int create_node(const struct cert_args *a)
{
    static const char *const names[] = {"node.crt", "node.key", NULL};
    EVP_PKEY *ca_key = NULL, *key = NULL;
    X509 *ca = NULL, *x = NULL;
    int rv = check_absent(a, names);

    if (rv == 0) {
        rv = load_ca(a, &ca, &ca_key);
    }
    if (rv == 0) {
        key = EVP_EC_gen("P-256");
        if (key == NULL) {
            rv = ossl_fail(a->sub, "cannot generate the node key");
        }
    }
    if (rv == 0) {
        x = new_cert(key, a->hosts[0], a->days);
        if (x == NULL) {
            rv = ossl_fail(a->sub,
                           "cannot build the node certificate "
                           "(CN is the first HOST: at most 64 "
                           "characters)");
        }
    }
    if (rv == 0) {
        rv = finish_node(a, ca, ca_key, x);
    }
    if (rv == 0) {
        rv = write_pair(a, x, key, "node.crt", "node.key");
    }
    if (rv == 0) {
        printf("wrote %s/node.crt and %s/node.key\n", a->dir, a->dir);
    }
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    return rv;
}

int ctl_cmd_cert(struct ctl *ctl, int argc, char **argv)
{
    struct cert_args a;
    int rv;

    (void)ctl;
    if (argc < 2) {
        return cert_usage(NULL, "missing subcommand");
    }
    if (strcmp(argv[1], "create-ca") != 0 &&
        strcmp(argv[1], "create-node") != 0) {
        return cert_usage(NULL, "unknown subcommand");
    }
    a.sub = argv[1];
    rv = parse_args(argc - 1, argv + 1, &a);
    if (rv != 0) {
        return rv;
    }
    return strcmp(a.sub, "create-ca") == 0 ? create_ca(&a) : create_node(&a);
}
