"""The demo's record ids as the generator knows them: the same in every run with the same seed.

Ids the generator chooses (on create commands) come from its seeded generator,
so the stored ids (scoped per tenant, crmflow.aggregates.ids) repeat from run
to run. Records the service makes itself get a random uuid4 (the account,
contact and deal of a lead conversion, the lead of a web form): for those the
generator keeps a stand-in id of its own, given in an order that does not
depend on the random ids. The workload sorts its queues and makes its "one in
ten" choices by these stable ids, never by the stored ones, so a run's work
does not depend on which random ids the service happened to make.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from typing import Any


class Identities:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.stand_ins: dict[str, str] = {}  # stored id the service made at random → the generator's own id
        self.chosen: set[str] = set()  # stored ids derived from ids the generator chose: stable already

    def new(self) -> str:
        """An id for a record the generator creates (the stored id is derived from it, per tenant)."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def adopt(self, stored: str) -> str:
        """Give a record the service made at random a stable id of the generator's own."""
        return self.stand_ins.setdefault(stored, self.new())

    def of(self, stored: str) -> str:
        """The stable id of a record: its stand-in if it has one, else the stored id (chosen, or derived)."""
        return self.stand_ins.get(stored, stored)

    def ordered(self, rows: Iterable[dict[str, Any]], id_column: str, *, first_seen_by: tuple[str, ...] = ()
                ) -> list[dict[str, Any]]:  # fmt: skip
        """The rows by stable id. Rows whose ids the generator neither chose nor adopted (a web form's lead,
        made by the form-to-lead process) are adopted first, in the order of ``first_seen_by``: what the
        generator can see of them, which repeats from run to run, unlike their random ids. Rows alike in all
        of it are alike in everything the generator reads: which gets which stand-in changes nothing."""
        rows = list(rows)
        if first_seen_by:
            known = self.stand_ins.keys() | self.chosen
            strangers = [r for r in rows if r[id_column] not in known]
            for row in sorted(strangers, key=lambda r: tuple(str(r[c]) for c in first_seen_by)):
                self.adopt(row[id_column])
        return sorted(rows, key=lambda r: self.of(r[id_column]))

    def choose(self, stored: str) -> None:
        """Note a stored id that came from a chosen one (it repeats from run to run: no stand-in needed)."""
        self.chosen.add(stored)
