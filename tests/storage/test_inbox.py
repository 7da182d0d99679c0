"""The inbox: accepted work is stored once, claimed by one worker at a time, and handed on when a worker dies."""

from __future__ import annotations

import threading
import time

from storage.repository import Repository


def test_accept_stores_once_and_a_redelivery_goes_to_nobody_while_the_claim_holds(repo: Repository) -> None:
    item = repo.accept("Ev1", "question", {"channel": "D1"}, worker="w1", lease_s=60, text="mail jo@example.com")
    assert item is not None and item.claimed_by == "w1" and item.payload == {"channel": "D1"}
    assert item.text == "mail [EMAIL]"  # free text is masked like every other stored text
    assert repo.accept("Ev1", "question", {"channel": "D1"}, worker="w2", lease_s=60) is None
    assert repo.claim_due("w2", lease_s=60) == []
    assert repo.inbox_size() == 1


def test_an_expired_claim_is_taken_by_a_redelivery_or_by_the_sweep(repo: Repository) -> None:
    repo.accept("Ev1", "question", {}, worker="dead", lease_s=0)
    repo.accept("Ev2", "reaction", {}, worker="dead", lease_s=0)
    time.sleep(0.01)
    taken = repo.accept("Ev1", "question", {}, worker="w2", lease_s=60)
    assert taken is not None and taken.claimed_by == "w2" and taken.attempts == 1
    [due] = repo.claim_due("w3", lease_s=60)
    assert (due.key, due.claimed_by) == ("Ev2", "w3")
    assert repo.claim_due("w4", lease_s=60) == []


def test_release_postpone_and_done(repo: Repository) -> None:
    first = repo.accept("Ev1", "question", {}, worker="w1", lease_s=60)
    assert first is not None and first.id is not None
    assert repo.release("w1") == 1
    [again] = repo.claim_due("w1", lease_s=60)
    repo.postpone(first.key, delay_s=60)
    assert repo.claim_due("w2", lease_s=60) == []
    assert again.id is not None
    repo.done(again.key)
    assert repo.inbox_size() == 0


def test_a_live_worker_renews_its_claims_and_a_dead_one_lapses(repo: Repository) -> None:
    repo.accept("EvLive", "question", {}, worker="live", lease_s=0.05)
    repo.accept("EvDead", "question", {}, worker="dead", lease_s=0.05)
    assert repo.renew("live", lease_s=60) == 1
    time.sleep(0.1)
    assert [item.key for item in repo.claim_due("other", lease_s=60)] == ["EvDead"]


def test_workers_claiming_at_once_never_share_an_item(repo: Repository) -> None:
    for n in range(40):
        repo.accept(f"Ev{n}", "question", {}, worker="dead", lease_s=0)
    time.sleep(0.01)
    claimed: dict[str, list[str]] = {}

    def work(name: str) -> None:
        mine: list[str] = []
        while batch := repo.claim_due(name, lease_s=60, limit=3):
            mine += [item.key for item in batch]
        claimed[name] = mine

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = [key for mine in claimed.values() for key in mine]
    assert sorted(keys) == sorted(f"Ev{n}" for n in range(40))  # every item once, none twice
