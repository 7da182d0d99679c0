"""`supportbot` with the FakeEngine in place of the real models: `python -m tests.bot.slack.serveproc serve ...`.

Replaces `bot.runtime.build_engine` (which `serve` looks up when it runs), then runs the real CLI.
"""

from __future__ import annotations

import sys

from tests.bot.slack.fakes import FakeEngine


def main() -> None:
    import bot.runtime
    from bot.cli import main as cli_main

    bot.runtime.build_engine = lambda *args, **kwargs: FakeEngine()  # type: ignore[assignment]

    sys.argv = ["supportbot", *sys.argv[1:]]
    cli_main()


if __name__ == "__main__":
    main()
