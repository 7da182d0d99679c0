"""`supportbot` with the FakeEngine in place of the real models: `python -m tests.bot.slack.serveproc serve ...`.

Replaces `bot.runtime.build_engine` (which `serve` looks up when it runs), then runs the real CLI.
`FAKE_ENGINE_DELAY_S` makes every answer take that long (questions stay in flight, for fault tests).
"""

from __future__ import annotations

import os
import sys

from tests.bot.slack.fakes import FakeEngine


def main() -> None:
    import bot.runtime
    from bot.cli import main as cli_main

    delay = float(os.environ.get("FAKE_ENGINE_DELAY_S", "0"))
    bot.runtime.build_engine = lambda *args, **kwargs: FakeEngine(delay_s=delay)  # type: ignore[assignment]

    sys.argv = ["supportbot", *sys.argv[1:]]
    cli_main()


if __name__ == "__main__":
    main()
