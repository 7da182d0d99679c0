"""A local Slack stand-in: the Web API, response_url hooks and the Socket Mode websocket on 127.0.0.1.

Reusable by tests and benchmarks. Runs in the caller's event loop on an ephemeral port:

    standin = SlackStandIn()
    await standin.start()
    client = AsyncWebClient(token="xoxb-test", base_url=standin.api_url)
    ...
    calls = await standin.wait_for_call("chat.postMessage", n=1)
    await standin.close()

The bot's posts are kept per thread (`posted`) and listed by `conversations.replies` (with their metadata
when asked for `include_all_metadata`). Knobs: `fail("chat.postMessage", status=429, retry_after=1, times=1)`
(or `times=None` for every call),
`usergroups` / `channel_members` for agent look-ups. Socket Mode: `apps.connections.open` hands out
`ws://…/link`; `send_envelope()` pushes an envelope and `wait_for_ack()` returns the bot's ack frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

TEAM_ID = "T0TEAM"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
APP_ID = "A0APP"


@dataclass
class Call:
    """One request the stand-in received."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)


@dataclass
class Failure:
    """How to fail the next `times` calls of a method (`times=None`: every call)."""

    status: int
    times: int | None
    retry_after: int | None
    error: str


@dataclass
class Ack:
    """A Socket Mode acknowledgement frame received from the bot."""

    envelope_id: str
    payload: Any
    at: float


def _decode_json_fields(params: dict[str, Any]) -> dict[str, Any]:
    for key in ("blocks", "view", "attachments", "metadata"):
        value = params.get(key)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


@dataclass
class SlackStandIn:
    """The stand-in server. Every field below is safe to change between requests."""

    team_id: str = TEAM_ID
    bot_user_id: str = BOT_USER_ID
    bot_id: str = BOT_ID
    app_id: str = APP_ID
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    channel_members: dict[str, list[str]] = field(default_factory=dict)
    members_page_size: int = 2
    spread: bool = False  # Socket Mode: envelopes to a random open connection (Slack with several), not the newest
    workspaces: dict[str, dict[str, str]] = field(default_factory=dict)
    """OAuth: bot token -> the workspace it belongs to (`team_id`, `bot_user_id`, `bot_id`, `installer`); the
    code `code-<team_id>` installs it (`oauth.v2.access`), and `auth.test` with the token names it."""
    calls: list[Call] = field(default_factory=list)
    acks: dict[str, Ack] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._failures: dict[str, Failure] = {}
        self.posted: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (channel, thread ts) -> bot messages
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self.port = 0

    def _notify(self) -> None:
        """Wake every `wait_for`: a call, an ack or a connection arrived (or went)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _record(self, call: Call) -> Call:
        self.calls.append(call)
        self._notify()
        return call

    async def wait_for(self, predicate: Callable[[], bool], *, timeout: float, what: Callable[[], str]) -> None:
        """Wait until `predicate()` holds, re-checked whenever the stand-in records something.

        Raises AssertionError with `what()` after `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while not predicate():
            changed = self._changed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(what())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> SlackStandIn:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/hooks/{name:.*}", self._hook)
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def hook_url(self, name: str = "respond") -> str:
        return f"{self.base_url}/hooks/{name}"

    # --- knobs -------------------------------------------------------------------------------
    def fail(
        self, method: str, *, status: int, times: int | None = 1, retry_after: int | None = None, error: str = ""
    ) -> None:
        """Answer the next `times` calls of `method` with HTTP `status` (429: with `Retry-After`)."""
        self._failures[method] = Failure(status, times, retry_after, error or f"http_{status}")

    def heal(self, method: str | None = None) -> None:
        """Stop failing `method` (or every method)."""
        if method is None:
            self._failures.clear()
        else:
            self._failures.pop(method, None)

    # --- inspection --------------------------------------------------------------------------
    def calls_to(self, method: str, *, ok_only: bool = True) -> list[Call]:
        """Calls of `method`, in arrival order (by default only those answered with 200)."""
        return [c for c in self.calls if c.method == method and (c.status == 200 or not ok_only)]

    async def wait_for_call(self, method: str, n: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until `method` was answered successfully `n` times; returns those calls."""
        await self.wait_for(
            lambda: len(self.calls_to(method)) >= n,
            timeout=timeout,
            what=lambda: f"{method}: {len(self.calls_to(method))} successful call(s) after {timeout}s, wanted {n}",
        )
        return self.calls_to(method)

    # --- Web API -----------------------------------------------------------------------------
    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    body = {}
                if isinstance(body, dict):
                    params.update(body)
            else:
                params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        return _decode_json_fields(params)

    def _take_failure(self, method: str) -> Failure | None:
        failure = self._failures.get(method)
        if failure is None:
            return None
        if failure.times is not None:
            failure.times -= 1
            if failure.times <= 0:
                del self._failures[method]
        return failure

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        call = Call(method, params, dict(request.headers), time.monotonic())
        failure = self._take_failure(method)
        if failure is not None:
            call.status = failure.status
            self._record(call)
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}  # seconds
            if failure.status == 200:
                return web.json_response({"ok": False, "error": failure.error})
            return web.json_response({"ok": False, "error": failure.error}, status=failure.status, headers=headers)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or str(params.get("token", ""))
        call.response = self._workspace_answer(method, params, token) or self._answer(method, params)
        self._record(call)
        return web.json_response(call.response)

    def _new_ts(self) -> str:
        n = next(self._ts)
        return f"{1_700_000_000 + n}.{n:06d}"

    def _workspace_answer(self, method: str, params: Mapping[str, Any], token: str) -> dict[str, Any] | None:
        """`oauth.v2.access` and `auth.test` for the `workspaces` (None: not one of theirs)."""
        if method == "oauth.v2.access":
            for bot_token, ws in self.workspaces.items():
                if params.get("code") == f"code-{ws['team_id']}":
                    return {
                        "ok": True,
                        "app_id": self.app_id,
                        "authed_user": {"id": ws["installer"]},
                        "scope": "chat:write,im:history",
                        "token_type": "bot",
                        "access_token": bot_token,
                        "bot_user_id": ws["bot_user_id"],
                        "team": {"id": ws["team_id"], "name": f"Workspace {ws['team_id']}"},
                        "enterprise": None,
                        "is_enterprise_install": False,
                    }
            return {"ok": False, "error": "invalid_code"}
        ws = self.workspaces.get(token)
        if method == "auth.test" and ws is not None:
            return {
                "ok": True,
                "url": f"https://{ws['team_id'].lower()}.slack.com/",
                "team": f"Workspace {ws['team_id']}",
                "user": "supportbot",
                "team_id": ws["team_id"],
                "user_id": ws["bot_user_id"],
                "bot_id": ws["bot_id"],
                "is_enterprise_install": False,
            }
        if method == "auth.test" and token.startswith("xoxb-") and self.workspaces and token not in self.workspaces:
            return {"ok": False, "error": "invalid_auth"}
        return None

    def _answer(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://standin.slack.com/",
                "team": "Stand-in",
                "user": "supportbot",
                "team_id": self.team_id,
                "user_id": self.bot_user_id,
                "bot_id": self.bot_id,
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            ts = self._new_ts()
            message = {"type": "message", "text": params.get("text"), "user": self.bot_user_id, "ts": ts}
            if params.get("thread_ts"):
                message["thread_ts"] = params["thread_ts"]
            if isinstance(params.get("metadata"), dict):
                message["metadata"] = params["metadata"]
            thread = (str(params.get("channel")), str(params.get("thread_ts") or ts))
            self.posted.setdefault(thread, []).append(message)
            return {"ok": True, "channel": params.get("channel"), "ts": ts, "message": message}
        if method == "conversations.replies":
            replies = self.posted.get((str(params.get("channel")), str(params.get("ts"))), [])
            keep = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
            listed = [m if keep else {k: v for k, v in m.items() if k != "metadata"} for m in replies]
            return {"ok": True, "messages": listed, "has_more": False}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._new_ts()}
        if method == "chat.getPermalink":
            ts = str(params.get("message_ts", "")).replace(".", "")
            return {"ok": True, "permalink": f"https://standin.slack.com/archives/{params.get('channel')}/p{ts}"}
        if method in ("views.open", "views.publish", "views.update", "views.push"):
            return {"ok": True, "view": {"id": f"V{next(self._ts):06d}", **(params.get("view") or {})}}
        if method == "usergroups.users.list":
            return {"ok": True, "users": self.usergroups.get(str(params.get("usergroup")), [])}
        if method == "conversations.members":
            members = self.channel_members.get(str(params.get("channel")), [])
            start = int(params.get("cursor") or 0)
            page = members[start : start + self.members_page_size]
            following = start + self.members_page_size
            cursor = str(following) if following < len(members) else ""
            return {"ok": True, "members": page, "response_metadata": {"next_cursor": cursor}}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link?ticket={uuid.uuid4().hex}"}
        return {"ok": True}

    async def _hook(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        self._record(Call(f"hook:{request.match_info['name']}", body, dict(request.headers), time.monotonic()))
        return web.Response(text="ok")

    # --- Socket Mode -------------------------------------------------------------------------
    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        self._record(Call("ws:connect", dict(request.query), dict(request.headers), time.monotonic()))
        hello = {
            "type": "hello",
            "num_connections": len(self._sockets),
            "connection_info": {"app_id": self.app_id},
            "debug_info": {"host": "standin", "approximate_connection_time": 18060},
        }
        await ws.send_str(json.dumps(hello))
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(frame.data)
                except ValueError:
                    continue
                if isinstance(data, dict) and "envelope_id" in data:
                    eid = str(data["envelope_id"])
                    self.acks[eid] = Ack(eid, data.get("payload"), time.monotonic())
                    self._notify()
        finally:
            self._sockets.remove(ws)
            self._notify()
        return ws

    async def wait_connected(self, n: int = 1, timeout: float = 5.0) -> None:
        """Wait until `n` Socket Mode connections are open."""
        await self.wait_for(
            lambda: len(self._sockets) >= n,
            timeout=timeout,
            what=lambda: f"{len(self._sockets)} socket(s) connected after {timeout}s, wanted {n}",
        )

    async def send_envelope(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        retry_attempt: int | None = None,
        accepts_response_payload: bool = False,
        raw: str | None = None,
    ) -> str:
        """Push an envelope (`events_api`, `interactive`, ...) to the newest connection (with `spread` set: to one
        of the open connections at random, as Slack does); returns its id.

        `raw` sends that text instead (for malformed frames)."""
        if not self._sockets:
            raise AssertionError("no Socket Mode connection")
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": dict(payload),
            "accepts_response_payload": accepts_response_payload,
        }
        if retry_attempt is not None:
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = "timeout"
        target = random.choice(self._sockets) if self.spread else self._sockets[-1]
        await target.send_str(raw if raw is not None else json.dumps(envelope))
        return envelope_id

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        """Wait for the bot's ack of `envelope_id`."""
        await self.wait_for(
            lambda: envelope_id in self.acks,
            timeout=timeout,
            what=lambda: f"envelope {envelope_id} not acknowledged after {timeout}s",
        )
        return self.acks[envelope_id]

    async def disconnect_all(self, reason: str = "refresh_requested") -> None:
        """Ask every connection to reconnect, as Slack does every few hours."""
        for ws in list(self._sockets):
            await ws.send_str(json.dumps({"type": "disconnect", "reason": reason}))


# --- request signing (what Slack does to HTTP requests it sends the app) -------------------------
def signature(secret: str, timestamp: str, body: str) -> str:
    """`v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return f"v0={digest}"


def signed_headers(
    secret: str, body: str, *, content_type: str, timestamp: float | None = None, retry_num: int | None = None
) -> dict[str, str]:
    """Headers Slack would send with `body` (a signature over exactly these bytes)."""
    ts = str(int(time.time() if timestamp is None else timestamp))
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature(secret, ts, body),
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return headers


def json_body(payload: Mapping[str, Any]) -> tuple[str, str]:
    """(body, content type) for an Events API request."""
    return json.dumps(payload), "application/json"


def form_body(payload: Mapping[str, Any]) -> tuple[str, str]:
    """(body, content type) for an interactivity request: `payload=<json>`, url-encoded."""
    return urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
