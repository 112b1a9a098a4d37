#ifndef TESTS_LIB_FIXTURE_IO_H_
#define TESTS_LIB_FIXTURE_IO_H_

/* Orders disk requests on a raft_fixture server's io the way raft_uv
 * does, working around two bugs of raft 0.15's fixture io:
 *
 * - ioMethodTruncate acts at once on the entries already flushed, so a
 *   truncate issued while an append is still in flight (disk latency)
 *   reads past its array. Here a truncate waits until every earlier
 *   append completed, and later appends wait for it.
 * - it keeps entries in an array it assumes starts at index 1; after a
 *   snapshot install the array starts at the snapshot's index + 1. Here
 *   truncate indexes are translated to positions in that array.
 *
 * Install after raft_fixture_grow, before the server starts; remove after
 * raft_fixture_close. Test-only (rotad runs on raft_uv). */

#include <raft.h>

int fixture_io_install(struct raft_io *io);
void fixture_io_remove(struct raft_io *io);

/* Call @fn(@data) after raft's callback of every completed append on @io
 * (where rotad's loop reaches its check phase). */
void fixture_io_set_after_append(struct raft_io *io,
                                 void (*fn)(void *data),
                                 void *data);

#endif /* TESTS_LIB_FIXTURE_IO_H_ */
