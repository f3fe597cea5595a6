"""The domain error hierarchy: every refusal names what was wrong and what is allowed.

Each error carries a machine-readable ``code`` and ``details`` so that the CLI,
the HTTP API and the process engine can report it without parsing the message.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A command was refused by the domain."""

    code = "domain_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "details": self.details}


class IllegalTransitionError(DomainError):
    """The aggregate's lifecycle does not allow this change from its current state."""

    code = "illegal_transition"


class FrozenAggregateError(IllegalTransitionError):
    """A closed record cannot change until it is reopened."""

    code = "frozen"


class InvalidValueError(DomainError):
    """A field value is outside what the domain accepts."""

    code = "invalid_value"


class AggregateNotFoundError(DomainError):
    """No aggregate of that kind with that id exists in the caller's tenant.

    Deliberately the same error whether the id is unknown or belongs to another
    tenant, so that one tenant cannot probe for another tenant's ids.
    """

    code = "not_found"


class UnknownCommandError(DomainError):
    """The command name is not in the catalogue."""

    code = "unknown_command"


class InvalidCommandError(DomainError):
    """The command payload does not fit the command's schema."""

    code = "invalid_command"


class ConcurrencyConflictError(DomainError):
    """Another writer changed the aggregate first; reload and try again."""

    code = "conflict"


class IdempotencyKeyReusedError(DomainError):
    """An idempotency key was sent again with a different command or payload."""

    code = "idempotency_key_reused"


class AggregateExistsError(DomainError):
    """A create command named an id that is already taken."""

    code = "already_exists"


class LeadMergedError(IllegalTransitionError):
    """The lead was merged into another: commands go to that one (``details.merged_into``)."""

    code = "merged"
