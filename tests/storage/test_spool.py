"""The local spool: items come back in the order they were written, across a reopen, and a bad path is clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.errors import StorageError
from storage.spool import Spool


def test_items_come_back_in_order_after_a_reopen_and_are_removed_one_by_one(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    ids = [spool.put("turn", f"Ev{n}", {"n": n, "text": "ü"}) for n in range(3)]
    spool.close()
    again = Spool(tmp_path / "spool.sqlite3")  # what was put survives the process
    assert [(i.id, i.key, i.body) for i in again.items()] == [
        (ids[n], f"Ev{n}", {"n": n, "text": "ü"}) for n in range(3)
    ]
    again.remove(ids[0])
    assert len(again) == 2 and again.items(limit=1)[0].key == "Ev1"


def test_a_spool_that_cannot_be_created_says_where(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError, match="cannot open the local spool"):
        Spool(blocker / "spool.sqlite3")
