"""The Server-Sent Events parser on its own (the stream framing of
text/event-stream: comments, ids, multi-line data, CRLF)."""

import io

from rota.client import _sse


def test_sse_framing():
    raw = (b": keepalive\n\n"
           b"id: 12-0\nevent: job.created\ndata: {\"event\":\"job.created\",\"index\":12}\n\n"
           b"event: leader.changed\r\ndata: {\"leader\": 2,\r\ndata:  \"term\": 3}\r\n\r\n"
           b"id: 13-1\ndata: not json\n\n"
           b"id: 14-0\nevent: job.dead\ndata: {}")  # Cut before its blank line.
    evs = list(_sse(io.BufferedReader(io.BytesIO(raw))))
    assert [(e.id, e.event) for e in evs] == [("12-0", "job.created"), (None, "leader.changed"),
                                              ("13-1", "message")]
    assert evs[0].data == {"event": "job.created", "index": 12}
    assert evs[1].data == {"leader": 2, "term": 3}
    assert evs[2].data == "not json"
