"""The Slack front end: a Bolt `AsyncApp` answering in threads, taking ratings, corrections and hand-offs."""

from bot.slack.app import build_app, close_app

__all__ = ["build_app", "close_app"]
