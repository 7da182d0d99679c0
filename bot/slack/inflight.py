"""Listener runs in flight, counted by the bot itself: shutdown drains them, tests wait for them.

Bolt acknowledges an event first and runs its listener afterwards in a task of its own, so "the event was
answered" is not visible from the outside. `TrackedApp` is a Bolt `AsyncApp` whose listener-registration
methods (`event`, `action`, `view`, ...; Bolt's public decorators) wrap every listener so that `InFlight`
knows how many runs are in progress, and it records what was registered (the manifest test reads that).

Bolt injects a listener's arguments by the names in its signature and follows `functools.wraps` to the
original function (bolt-python #688), so a wrapped listener receives exactly what it asked for.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp

logger = logging.getLogger(__name__)


class InFlight:
    """Counts listener runs in progress; `wait_idle` returns once none is left.

    `finished` counts the runs that ended, by listener name. All of it lives on the event loop's thread;
    nothing here is thread-safe, nor needs to be.
    """

    def __init__(self) -> None:
        self.running = 0
        self.started = 0
        self.finished: Counter[str] = Counter()
        self._changed = asyncio.Event()

    def track(self, listener: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """`listener`, counted while it runs (Bolt sees the original signature)."""
        name = getattr(listener, "__name__", repr(listener))

        @functools.wraps(listener)
        async def tracked(*args: Any, **kwargs: Any) -> Any:
            self.running += 1
            self.started += 1
            self._notify()
            try:
                return await listener(*args, **kwargs)
            finally:
                self.running -= 1
                self.finished[name] += 1
                self._notify()

        return tracked

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for(self, predicate: Callable[[InFlight], bool], timeout: float | None = None) -> bool:
        """Wait until `predicate(self)` holds (checked on every start and end of a run); False on timeout.

        Listener runs Bolt started a moment ago are given the chance to begin first.
        """
        await asyncio.sleep(0)  # a run Bolt scheduled just now starts counting on its first step
        deadline = None if timeout is None else time.monotonic() + timeout
        while not predicate(self):
            changed = self._changed
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return predicate(self)
        return True

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no listener run is in progress; False when some still are after `timeout` seconds."""
        return await self.wait_for(lambda flight: flight.running == 0, timeout)


@dataclass(frozen=True)
class Registration:
    """One listener registration: the Bolt method (`event`, `action`, ...) and its constraint."""

    kind: str
    constraint: Any


class TrackedApp(AsyncApp):
    """Bolt's `AsyncApp`, whose listeners are counted by `inflight` and listed in `registrations`.

    Covers the registration methods for events, messages, actions, views, shortcuts, commands and options;
    register listeners through these (as every listener module does).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.inflight = InFlight()  # first: Bolt's own constructor may register listeners
        self.registrations: list[Registration] = []
        super().__init__(*args, **kwargs)

    def _tracking(self, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any], register: Any) -> Any:
        constraint = args[0] if args else next(iter(kwargs.values()), None)
        track = self.inflight.track

        def decorator(*functions: Any, **named: Any) -> Any:
            self.registrations.append(Registration(kind, constraint))
            if named:  # app.event(...)(ack=..., lazy=[...])
                named = {
                    key: [track(f) for f in value] if key == "lazy" else track(value) for key, value in named.items()
                }
            return register(*(track(f) for f in functions), **named)

        return decorator

    def event(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracking("event", args, kwargs, super().event(*args, **kwargs))

    def track_events(self, names: tuple[str, ...]) -> None:
        """List events a middleware listens to (Bolt's assistant) among the registrations."""
        self.registrations += [Registration("event", name) for name in names]

    def message(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracking("message", args, kwargs, super().message(*args, **kwargs))

    def action(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracking("action", args, kwargs, super().action(*args, **kwargs))

    def block_action(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracking("block_action", args, kwargs, super().block_action(*args, **kwargs))

    def view(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracking("view", args, kwargs, super().view(*args, **kwargs))

    def view_submission(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracking("view_submission", args, kwargs, super().view_submission(*args, **kwargs))

    def view_closed(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracking("view_closed", args, kwargs, super().view_closed(*args, **kwargs))

    def shortcut(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracking("shortcut", args, kwargs, super().shortcut(*args, **kwargs))

    def command(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracking("command", args, kwargs, super().command(*args, **kwargs))

    def options(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracking("options", args, kwargs, super().options(*args, **kwargs))


def in_flight(app: AsyncApp) -> InFlight | None:
    """The app's tracker (`None` for an app not built by `build_app`)."""
    return app.inflight if isinstance(app, TrackedApp) else None
