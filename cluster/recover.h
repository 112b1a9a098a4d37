#ifndef CLUSTER_RECOVER_H_
#define CLUSTER_RECOVER_H_

/* Restore and disaster recovery (docs/operations.md, "Backup, restore and
 * disaster recovery"). Both run between cluster_create() and
 * cluster_start(), on the loop thread, before raft starts. */

#include <stddef.h>

#include "cluster/cluster.h"

/* rotad --restore FILE: seed a NEW one-node cluster on a fresh data dir
 * with the state of the backup file @path (cluster/snapfile.h). Verifies
 * the header and the SHA-256 of the body and that the body decodes, then
 * stores it as this node's raft snapshot (index = the file's applied
 * index, configuration = this node alone). Others join with --join.
 * ERR_INVALID (@errmsg says why) for a corrupt file or a data dir that
 * already holds raft state. */
int cluster_restore_file(struct cluster *c,
                         const char *path,
                         char *errmsg,
                         size_t size);

/* rotad --force-new-cluster: rewrite this node's raft configuration to
 * this node alone (raft_recover), keeping its log and snapshots; logged
 * at warn level. Once per data dir: a marker file
 * (<data-dir>/force-new-cluster.done) makes later starts with the flag
 * skip it (with a warning), so a flag left in a unit file does not throw
 * out nodes that joined since. ERR_INVALID on a data dir with no raft
 * state. */
int cluster_force_new(struct cluster *c, char *errmsg, size_t size);

#endif /* CLUSTER_RECOVER_H_ */
