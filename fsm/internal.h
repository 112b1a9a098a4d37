#ifndef FSM_INTERNAL_H_
#define FSM_INTERNAL_H_

#include <lmdb.h>

#include "common/err.h"
#include "fsm/fsm.h"

enum {
    DB_JOBS,
    DB_BY_STATUS,
    DB_BY_USER,
    DB_BY_QUEUE,
    DB_BY_TYPE,
    DB_READY,
    DB_DEPS,
    DB_IDEM,
    DB_NODES,
    DB_META,
    DB__COUNT
};

extern const char *const fsm__db_names[DB__COUNT];

struct fsm
{
    MDB_env *env;
    MDB_dbi dbi[DB__COUNT];
    char errmsg[ERRMSG_SIZE];
    /* Results of the last apply, reused. */
    struct fsm_result *results;
    unsigned results_cap;
    uint64_t *ids;
    uint8_t *existed;
    size_t ids_cap;
    size_t ids_used;
};

struct fsm_reader
{
    struct fsm *f;
    MDB_txn *txn;
};

/* Write "what: mdb_strerror" into f->errmsg and map the code. */
int fsm__lmdb_error(struct fsm *f, int rv, const char *what);

/* Big-endian helpers for keys. */
void fsm__put_be64(unsigned char *p, uint64_t v);
uint64_t fsm__get_be64(const unsigned char *p);

/* Read a job in @txn: 0, ERR_NOTFOUND, ERR_CORRUPT, ERR_STORAGE. */
int fsm__get_job(struct fsm *f, MDB_txn *txn, uint64_t id, struct fsm_job *job);
/* Write @job, replacing @old (NULL for a new job): keeps every index and
 * the per-status counters in step. */
int fsm__put_job(struct fsm *f,
                 MDB_txn *txn,
                 const struct fsm_job *old,
                 const struct fsm_job *job);

uint64_t fsm__get_meta_u64(struct fsm *f, MDB_txn *txn, const char *key);
int fsm__put_meta_u64(struct fsm *f, MDB_txn *txn, const char *key, uint64_t v);

#define FSM_META_APPLIED "applied_index"

#endif /* FSM_INTERNAL_H_ */
