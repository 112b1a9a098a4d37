"""The raft log's open segments are allocated as written zeros
(rotad/prealloc.c): libraft 0.15 preallocates each one with
posix_fallocate(), which on ext4 or XFS leaves "unwritten" extents that
every append must convert (a journal commit per append, and no append
without a thread). rotad's own posix_fallocate() writes the range, so the
segments' extents are plain written ones; the log still works as before: a
node restarted after a kill recovers its entries from them."""

import fcntl
import glob
import os
import struct

import pytest

from conftest import submit

FS_IOC_FIEMAP = 0xC020660B
FIEMAP_FLAG_SYNC = 0x1
FIEMAP_EXTENT_UNWRITTEN = 0x800
HEADER = struct.Struct("=QQIIII")  # struct fiemap
EXTENT = struct.Struct("=QQQQQIIII")  # struct fiemap_extent
MAX_EXTENTS = 256


def extents(path):
    """(logical, length, flags) of every extent of @path, from FIEMAP."""
    buf = bytearray(HEADER.pack(0, 2**64 - 1, FIEMAP_FLAG_SYNC, 0, MAX_EXTENTS, 0)
                    + bytes(EXTENT.size * MAX_EXTENTS))
    with open(path, "rb") as f:
        fcntl.ioctl(f.fileno(), FS_IOC_FIEMAP, buf)
    mapped = HEADER.unpack_from(buf)[3]
    out = []
    for i in range(mapped):
        e = EXTENT.unpack_from(buf, HEADER.size + i * EXTENT.size)
        out.append((e[0], e[2], e[5]))
    return out


def test_open_segments_have_no_unwritten_extents(cluster):
    c = cluster()
    for i in range(50):
        submit(c.leader(), {"type": "noop", "queue": "segments", "payload": {"i": i}})
    c.wait_converged()
    for node in c.nodes:
        segments = sorted(glob.glob(os.path.join(node.dir, "raft", "open-*")))
        assert segments, f"node {node.id} has no open segment"
        for path in segments:
            try:
                found = extents(path)
            except OSError as e:
                pytest.skip(f"no extent map on this file system: {e}")
            size = os.path.getsize(path)
            assert sum(length for _, length, _ in found) >= size, (path, found)
            unwritten = [e for e in found if e[2] & FIEMAP_EXTENT_UNWRITTEN]
            assert not unwritten, (path, unwritten)

    # The entries in them survive a kill and a restart.
    victim = c.followers()[0]
    victim.kill()
    c.restart(victim)
    c.wait_converged()
    st, _, q = victim.req("GET", "/v1/queues/segments")
    assert st == 200 and q["counts"]["pending"] == 50, q
