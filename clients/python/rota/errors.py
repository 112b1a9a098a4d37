"""Exceptions of the Rota client."""


class APIError(Exception):
    """An error answer of the Rota API: {"error": {"code", "field", "message"}}.

    status is the HTTP status (0 when no node could be reached at all)."""

    def __init__(self, status, code, message, field=None, retry_after=None):
        super().__init__(f"{status} {code}: {message}" + (f" (field {field})" if field else ""))
        self.status = status
        self.code = code
        self.field = field
        self.message = message
        self.retry_after = retry_after

    @classmethod
    def from_body(cls, status, body, retry_after=None):
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict):
            text = body if isinstance(body, str) else repr(body)
            return cls(status, "http_error", f"HTTP {status}: {text[:200]}", None, retry_after)
        return cls(status, err.get("code", "unknown"), err.get("message", ""),
                   err.get("field"), retry_after)


class Permanent(Exception):
    """Raised by a worker handler: the job fails at once, without retries."""
