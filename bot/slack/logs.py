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

import json
import logging
import time

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


FIELDS = ("event_id", "conversation_id", "answer_id", "outcome", "latency_ms", "model_version", "team_id", "channel")
"""The structured fields a record may carry (`extra=`); the answer log line of every question has them."""


class JsonLines(logging.Formatter):
    """LOG_FORMAT=json: one JSON object per line: time, level, logger, message, the `FIELDS` a record carries
    and the traceback, each string PII-masked (`storage.privacy.mask_pii`), for the log pipelines teams run."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": mask_pii(record.getMessage()),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = mask_pii(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["traceback"] = mask_pii(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str, log_format: str, *, timestamps: bool = True) -> None:
    """The root logger as the settings say (LOG_LEVEL, LOG_FORMAT), the Slack libraries' records protected
    (`protect`); does nothing when logging was configured already (e.g. by a test)."""
    if logging.getLogger().handlers:
        for handler in logging.getLogger().handlers:
            protect(handler)
        return
    handler = logging.StreamHandler()
    if log_format == "json":
        formatter: logging.Formatter = JsonLines()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter(("%(asctime)s " if timestamps else "") + "%(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    protect(handler)
    logging.basicConfig(level=level.upper(), handlers=[handler])
