"""What the Slack libraries may write to our logs: never a request body or an envelope as sent.

Bolt logs request bodies (a forged request's whole body at INFO, unhandled ones at WARNING), and at DEBUG
Bolt and slack_sdk log raw envelopes and Web API requests, which hold what customers wrote. `SafeRecords`
rewrites those records: a forged request becomes one short line, every other message is cut to
`LOG_LINE_CHARS` and PII-masked (anyone who reaches the port could otherwise fill the disk, or the log with
card numbers), and below DEBUG their tracebacks are dropped (a Slack that cannot be reached is one line per
retry, which already names the error). `build_app` puts it on Bolt's logger; `protect` puts it on a handler,
so that it covers every logger of the Slack libraries (slack_sdk's clients log under their own names).
"""

from __future__ import annotations

import logging

from storage.privacy import mask_pii

LOG_LINE_CHARS = 2000
"""Longest line the Slack libraries may write to our logs."""
SLACK_LOGGERS = ("slack_bolt", "slack_sdk", "bot.slack.bolt")
"""Where the libraries' records come from (Bolt's own logger is `bot.slack.bolt`, see `build_app`)."""


class SafeRecords(logging.Filter):
    """Rewrites the Slack libraries' records (see the module); leaves every other record alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(SLACK_LOGGERS) or getattr(record, "_supportbot_safe", False):
            return True
        message = record.getMessage()
        if message.startswith("Invalid request signature detected"):
            record.msg = f"refused a request with an invalid signature ({len(message)} characters logged by Bolt)"
        else:
            cut = f" … ({len(message)} characters)" if len(message) > LOG_LINE_CHARS else ""
            record.msg = mask_pii(message[:LOG_LINE_CHARS]) + cut
        record.args = None
        if record.exc_info and not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            record.exc_info = record.exc_text = None  # e.g. "Failed to connect ...; Retrying...": one line each
        record._supportbot_safe = True  # rewritten once, by whichever filter sees it first
        return True


def protect(handler: logging.Handler) -> None:
    """Put `SafeRecords` on `handler` (once)."""
    if not any(isinstance(f, SafeRecords) for f in handler.filters):
        handler.addFilter(SafeRecords())
