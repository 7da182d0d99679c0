"""Errors raised by the store."""


class StorageError(Exception):
    """The store cannot do what was asked; the message says why and what to do."""


class DuplicateEventError(StorageError):
    """A message with this Slack event_id is already stored (a retried delivery)."""


class StoreUnavailable(StorageError):
    """The database cannot be reached (down, restarting, or the network is away); retrying later may work."""
