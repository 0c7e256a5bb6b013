"""Errors that cross service boundaries.

Each is registered with nameko so that an RPC client receives the same exception type
(the gateway maps them to HTTP status codes) rather than a generic RemoteError.
"""

from __future__ import annotations

from nameko.exceptions import deserialize_to_instance


class XuejiError(Exception):
    code = "error"

    @property
    def field(self) -> str | None:
        """The input the error is about, when the raiser names it: `Invalid(message, "field")`.
        A second argument (not an attribute) so that it crosses RPC with the message; pages key
        on it rather than on the message's wording."""
        return self.args[1] if len(self.args) > 1 and isinstance(self.args[1], str) else None


@deserialize_to_instance
class Unauthenticated(XuejiError):
    code = "unauthenticated"


@deserialize_to_instance
class Forbidden(XuejiError):
    code = "forbidden"


@deserialize_to_instance
class NotFound(XuejiError):
    code = "not_found"


@deserialize_to_instance
class Invalid(XuejiError):
    code = "invalid"


@deserialize_to_instance
class Conflict(XuejiError):
    code = "conflict"


class InvalidEvent(XuejiError):
    """A message that can never be handled (bad envelope or payload): dead-letter at once."""

    code = "invalid_event"
