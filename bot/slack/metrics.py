"""The bot's Prometheus metrics (the official `prometheus_client`), one registry per app.

Counted where things happen (listeners, the Socket Mode / HTTP handlers, the Slack client's retry handlers):

* `supportbot_questions_total{outcome}`: answered questions by outcome: `answer` (a curated intent answer),
  `passage` (a knowledge-base passage), `clarify`, `handoff`, `refused` (not answered: too many questions, a
  question the bot could not take);
* `supportbot_answer_latency_seconds`: from Slack's event reaching the bot to the answer posted;
* `supportbot_ack_latency_seconds`: from an envelope / request reaching the bot to its acknowledgement;
* `supportbot_ratings_total{verdict}`: ratings stored (buttons and reactions);
* `supportbot_slack_api_errors_total{method}`, `supportbot_slack_api_retries_total{reason}`.

Read at scrape time (`StateCollector`, off the event loop): the spool's depth, the model version serving
(`supportbot_model_info{version}` = 1), the last nightly run's status and end time, and the last digest's
automation rate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

logger = logging.getLogger(__name__)

OUTCOMES = ("answer", "passage", "clarify", "handoff", "refused")
_BY_SOURCE = {"intent": "answer", "retrieval": "passage", "clarify": "clarify", "handoff": "handoff"}
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0)


def outcome_of(source: str) -> str:
    """The `outcome` label of an answer's source (`intent` -> `answer`, `retrieval` -> `passage`, ...)."""
    return _BY_SOURCE.get(source, "handoff")


class StateCollector(Collector):
    """Gauges read when Prometheus scrapes: each reader returns its value(s), and a failing reader is skipped."""

    def __init__(
        self,
        *,
        spool_depth: Callable[[], int],
        model_info: Callable[[], Mapping[str, Any]],
        last_run: Callable[[], tuple[str, float] | None],
        automation_rate: Callable[[], float | None],
    ) -> None:
        self._spool_depth = spool_depth
        self._model_info = model_info
        self._last_run = last_run
        self._automation_rate = automation_rate

    def collect(self) -> Iterable[GaugeMetricFamily]:
        spool = _read(self._spool_depth, "spool depth")
        if spool is not None:
            yield GaugeMetricFamily(
                "supportbot_spool_depth", "Items kept in the local spool while the database is away", value=spool
            )
        info = _read(self._model_info, "model info") or {}
        model = GaugeMetricFamily("supportbot_model_info", "The model version serving (value 1)", labels=["version"])
        model.add_metric([str(info.get("version") or "none")], 1.0)
        yield model
        run = _read(self._last_run, "last retrain")
        if run is not None:
            status, finished = run
            last = GaugeMetricFamily(
                "supportbot_last_retrain_timestamp_seconds",
                "When the last nightly run finished (Unix time), by its status",
                labels=["status"],
            )
            last.add_metric([status], finished)
            yield last
        rate = _read(self._automation_rate, "automation rate")
        if rate is not None:
            yield GaugeMetricFamily(
                "supportbot_automation_rate",
                "The last nightly digest's automation rate (answered and not rated unhelpful / all questions)",
                value=rate,
            )


def _read(reader: Callable[[], Any], what: str) -> Any:
    try:
        return reader()
    except Exception as exc:  # a scrape must never fail on one reading
        logger.warning("metrics: cannot read the %s: %s", what, exc)
        return None


class Metrics:
    """The counters and histograms of one app, in their own registry (`registry`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.questions = Counter("supportbot_questions", "Questions by outcome", ["outcome"], registry=self.registry)
        for outcome in OUTCOMES:
            self.questions.labels(outcome)
        self.answer_latency = Histogram(
            "supportbot_answer_latency_seconds",
            "From the event reaching the bot to the answer posted",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ack_latency = Histogram(
            "supportbot_ack_latency_seconds",
            "From an envelope or request reaching the bot to its acknowledgement",
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.ratings = Counter("supportbot_ratings", "Ratings stored", ["verdict"], registry=self.registry)
        self.slack_errors = Counter(
            "supportbot_slack_api_errors", "Slack Web API calls that failed", ["method"], registry=self.registry
        )
        self.slack_retries = Counter(
            "supportbot_slack_api_retries", "Slack Web API calls retried", ["reason"], registry=self.registry
        )

    def question(self, source: str, latency_s: float | None = None) -> None:
        """One answered question (by the answer's source) and its event-to-post latency."""
        self.questions.labels(outcome_of(source)).inc()
        if latency_s is not None and latency_s >= 0:
            self.answer_latency.observe(latency_s)

    def refused(self) -> None:
        self.questions.labels("refused").inc()

    def rating(self, helpful: bool) -> None:
        self.ratings.labels("helpful" if helpful else "unhelpful").inc()

    def watch(self, collector: Collector) -> None:
        """Add the scrape-time readings (`StateCollector`)."""
        self.registry.register(collector)


def _method(request: HttpRequest) -> str:
    return request.url.rstrip("/").rsplit("/", 1)[-1][:64] or "unknown"


class SlackCallObserver(AsyncRetryHandler):
    """First of the client's retry handlers: never retries, counts every failed Web API attempt by method (an
    HTTP error, `"ok": false`, or a connection error)."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(max_retry_count=2**31)
        self.metrics = metrics

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        body = response.body if response is not None else None
        refused = response is not None and (
            response.status_code >= 400 or (isinstance(body, dict) and body.get("ok") is False)
        )
        if error is not None or refused:
            self.metrics.slack_errors.labels(_method(request)).inc()
        return False


class CountedRetries(AsyncRetryHandler):
    """A retry handler whose retries are counted (`supportbot_slack_api_retries_total{reason}`)."""

    def __init__(self, inner: AsyncRetryHandler, metrics: Metrics, reason: str) -> None:
        super().__init__(max_retry_count=inner.max_retry_count, interval_calculator=inner.interval_calculator)
        self.inner = inner
        self.counter = metrics.slack_retries.labels(reason)

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return await self.inner.can_retry_async(state=state, request=request, response=response, error=error)

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        self.counter.inc()
        await self.inner.prepare_for_next_attempt_async(state=state, request=request, response=response, error=error)
