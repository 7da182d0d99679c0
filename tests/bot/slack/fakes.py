"""A keyword-rule engine standing in for the real models (fast, deterministic)."""

from __future__ import annotations

import threading
import time
from typing import Any

from bot.answer import EngineAnswer, SourceDoc

PASSWORD_ANSWER = "To reset your password, open *Settings → Security* and choose *Reset password*."
INVOICE_PASSAGE = "Invoices are emailed on the 1st of each month & can be downloaded under <Billing>."
HANDOFF_TEXT = "I'm not sure about this one, so I've asked a human colleague to help."
CLARIFY_TEXT = "I want to get this right. Which of these do you mean?"
BILLING_ANSWER = "Your invoices are under *Billing → Invoices*; each one has a PDF download."
CURATED = {"reset_password": PASSWORD_ANSWER, "billing": BILLING_ANSWER}
OFFERED = (("reset_password", "How do I reset my password?"), ("billing", "Where are my invoices?"))


class FakeEngine:
    """`password` -> intent answer; `invoice` -> retrieval; `which` -> clarifying question (password or billing);
    `crash` -> raises; anything else -> hand-off."""

    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.questions: list[str] = []
        self._lock = threading.Lock()

    @property
    def intents(self) -> list[str]:
        return ["reset_password", "billing", "greeting"]

    @property
    def model_info(self) -> dict[str, Any]:
        return {"version": "v-test-1", "metrics": {"accuracy": 0.912, "macro_f1": 0.875}, "threshold": 0.6}

    def answer(self, text: str) -> EngineAnswer:
        with self._lock:
            self.questions.append(text)
        if self.delay_s:
            time.sleep(self.delay_s)
        lowered = text.lower()
        if "crash" in lowered:
            raise RuntimeError("model exploded")
        if "password" in lowered:
            return EngineAnswer(PASSWORD_ANSWER, "intent", "reset_password", 0.95, [], "v-test-1", 3.0)
        if "which" in lowered:
            return EngineAnswer(
                CLARIFY_TEXT, "clarify", "reset_password", 0.48, [], "v-test-1", 3.0, candidates=OFFERED
            )
        if "invoice" in lowered:
            doc = SourceDoc("kb/invoices#0", "Invoices & receipts", "https://help.example.com/invoices", 0.81)
            return EngineAnswer(INVOICE_PASSAGE, "retrieval", "billing", 0.41, [doc], "v-test-1", 4.0)
        return EngineAnswer(HANDOFF_TEXT, "handoff", "billing", 0.22, [], "v-test-1", 2.0)

    def answer_intent(self, intent: str) -> EngineAnswer:
        return EngineAnswer(CURATED[intent], "intent", intent, None, [], "v-test-1", 0.0)
