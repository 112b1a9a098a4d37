"""Python client for the Rota job scheduler (standard library only).

    import rota
    client = rota.Client(["127.0.0.1:8001", "127.0.0.1:8002"])
    job = client.submit("resize", {"image": "a.png"})
    client.wait(job["id"], timeout=30)

See docs/clients.md.
"""

from .client import TERMINAL, Client, Event, EventStream, new_key
from .errors import APIError, Permanent
from .worker import Worker

__all__ = ["Client", "Worker", "APIError", "Permanent", "Event", "EventStream", "TERMINAL", "new_key"]
__version__ = "0.1.0"
