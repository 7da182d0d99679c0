"""A bot process for multi-process tests: `python -m tests.bot.slack.botproc` (FakeEngine, HTTP mode).

Reads BOTPROC_DB_URL, BOTPROC_API_URL and BOTPROC_SECRET; prints `READY <port>` once listening; stops
cleanly on SIGTERM (through `bot.slack.server.serve_until_signalled`).
"""

from __future__ import annotations

import asyncio
import os
import sys

from bot.options import ServingOptions
from bot.slack import build_app
from bot.slack.server import serve_until_signalled
from storage.repository import Repository
from tests.bot.slack.fakes import FakeEngine
from tests.bot.slack.harness import AGENT, AGENT_CHANNEL, BOT_TOKEN, SUPPORT_CHANNEL


def main() -> None:
    repo = Repository(os.environ["BOTPROC_DB_URL"], upgrade=False)
    delay = float(os.environ.get("BOTPROC_ENGINE_DELAY_S", "0"))

    def make_app():  # type: ignore[no-untyped-def]
        options = ServingOptions.defaults(
            bot_token=BOT_TOKEN,
            signing_secret=os.environ["BOTPROC_SECRET"],
            api_base_url=os.environ["BOTPROC_API_URL"],
            agent_channel_id=AGENT_CHANNEL,
            agent_user_ids=[AGENT],
            support_channel_ids=[SUPPORT_CHANNEL],
        )
        return build_app(engine=FakeEngine(delay_s=delay), repo=repo, options=options)

    def ready(port: int) -> None:
        print(f"READY {port}", flush=True)

    asyncio.run(
        serve_until_signalled(make_app, mode="http", host="127.0.0.1", port=0, on_ready=ready, on_stop=repo.close)
    )
    print("STOPPED", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
