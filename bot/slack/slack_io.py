"""Thin wrappers around the Web API calls the bot makes, turning every transport failure into `SlackCallError`.

The client's retry handlers (rate limits, 5xx, connection resets) run inside each call; what reaches the
caller as `SlackCallError` has already been retried.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

logger = logging.getLogger(__name__)

CALL_ERRORS: tuple[type[BaseException], ...] = (
    SlackApiError,
    SlackClientError,
    aiohttp.ClientError,
    TimeoutError,
    OSError,
    ValueError,
)


class SlackCallError(Exception):
    """A Web API call failed for good (after the client's retries)."""


def describe(exc: BaseException) -> str:
    """A one-line description of a failed call, stored with a failed answer."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = getattr(response, "status_code", "?")
        error = response.get("error") if hasattr(response, "get") else None
        return f"Slack API error (HTTP {status}): {error or str(exc)[:200]}"
    return f"{type(exc).__name__}: {str(exc)[:300]}"


ANSWER_EVENT = "supportbot_answer"
"""The message metadata type on every answer the bot posts: it says which question (and stored answer) it is."""


def answer_metadata(*, event_id: str, answer_id: int | None) -> dict[str, Any]:
    """Metadata naming the question (`event_id`) and stored answer a post carries (found again by `find_answer`)."""
    return {"event_type": ANSWER_EVENT, "event_payload": {"question": event_id, "answer_id": answer_id or 0}}


async def post_message(
    client: AsyncWebClient,
    *,
    channel: str,
    text: str,
    thread_ts: str | None = None,
    blocks: Any = None,
    metadata: dict[str, Any] | None = None,
) -> str:
    """`chat.postMessage`; returns the new message's ts."""
    try:
        response = await client.chat_postMessage(
            channel=channel,
            text=text,
            thread_ts=thread_ts,
            blocks=blocks,
            metadata=metadata,
            unfurl_links=False,
            unfurl_media=False,
        )
    except CALL_ERRORS as exc:
        raise SlackCallError(describe(exc)) from exc
    ts = response.get("ts")
    if not isinstance(ts, str) or not ts:
        raise SlackCallError("chat.postMessage returned no ts")
    return ts


async def find_answer(
    client: AsyncWebClient, *, channel: str, thread_ts: str, event_id: str, answer_id: int | None = None
) -> str | None:
    """The ts of the bot's answer to question `event_id` in the thread (the stored answer `answer_id`, when
    given), or None: how a recovered question learns whether it was answered before a crash.

    Raises:
        SlackCallError: the thread could not be read (the caller must not assume either way).
    """
    try:
        response = await client.conversations_replies(
            channel=channel, ts=thread_ts, include_all_metadata=True, limit=200
        )
    except CALL_ERRORS as exc:
        raise SlackCallError(describe(exc)) from exc
    for message in response.get("messages") or []:
        metadata = message.get("metadata") if isinstance(message, dict) else None
        if not isinstance(metadata, dict) or metadata.get("event_type") != ANSWER_EVENT:
            continue
        payload = metadata.get("event_payload") or {}
        if payload.get("question") == event_id and (answer_id is None or payload.get("answer_id") == answer_id):
            ts = message.get("ts")
            return ts if isinstance(ts, str) else None
    return None


async def post_ephemeral(client: AsyncWebClient, *, channel: str, user: str, text: str, thread_ts: str | None) -> bool:
    """`chat.postEphemeral` (only `user` sees it); failures are logged, not raised. Returns success."""
    try:
        await client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
    except CALL_ERRORS as exc:
        logger.warning("chat.postEphemeral to %s in %s failed: %s", user, channel, describe(exc))
        return False
    return True


def archive_link(channel: str, ts: str) -> str:
    """A message link built without the API (used when `chat.getPermalink` fails)."""
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


async def permalink(client: AsyncWebClient, *, channel: str, ts: str) -> str:
    """`chat.getPermalink`, falling back to a constructed archive link."""
    try:
        response = await client.chat_getPermalink(channel=channel, message_ts=ts)
        link = response.get("permalink")
        if isinstance(link, str) and link:
            return link
    except CALL_ERRORS as exc:
        logger.info("chat.getPermalink %s/%s failed (%s); using an archive link", channel, ts, describe(exc))
    return archive_link(channel, ts)
