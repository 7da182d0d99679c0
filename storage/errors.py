"""Errors raised by the store."""


class StorageError(Exception):
    """The store cannot do what was asked; the message says why and what to do."""


class DuplicateEventError(StorageError):
    """A message with this Slack event_id is already stored (a retried delivery)."""
