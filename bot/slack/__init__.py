"""The Slack front end: a Bolt `AsyncApp` answering in threads, taking ratings, corrections and hand-offs.

`build_app` and `close_app` load Bolt and every listener on first use, so that what imports only the pure
block builders (the nightly job's digest and proposals) does not load the whole front end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.slack.app import build_app, close_app

__all__ = ["build_app", "close_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from bot.slack import app

        return getattr(app, name)
    raise AttributeError(f"module 'bot.slack' has no attribute {name!r}")
