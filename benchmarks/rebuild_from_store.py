"""Rebuild of the read models from a real event store of about 1,000,000 events.

Fills a SQLite store in a temp dir with `execute_batch` (opportunities created
and advanced, leads created: about two minutes), then times
`projections.projector.rebuild(db, history_source(app))`, which reads and
renders every stored event and applies it to fresh tables. Target: 1,000,000
events in at most 60 s. Prints one JSON line.

    python benchmarks/rebuild_from_store.py [EVENTS]    # default 1000000
"""

import json
import os
import sys
import tempfile
import time

# benchmarks/projections.py would shadow the projections package: import from the project, not this folder.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
EVENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
from crmflow.aggregates.application import CrmApplication, CommandRequest
from crmflow.projections.db import Database
from crmflow.projections.projector import rebuild, create_tables
from crmflow.workers.history import history_source
d = tempfile.mkdtemp()
app = CrmApplication(os.path.join(d, "e.db"))
acct = str(app.execute(CommandRequest("account.create", "acme", {"name": "A"})).aggregate_id)
t = time.perf_counter()
i = 0
while (app.recorder.max_notification_id() or 0) < EVENTS:
    res = app.execute_batch([CommandRequest("opportunity.create", "acme", {"account_id": acct, "name": f"D{i}", "amount": "1000", "close_date": f"2026-0{4 + i % 5}-30", "owner": ["ana", "ben"][i % 2]}) for _ in range(250)])
    app.execute_batch([CommandRequest("opportunity.advance", "acme", {"opportunity_id": str(r.aggregate_id)}) for r in res]
                      + [CommandRequest("lead.create", "acme", {"name": "L", "source": "web"}) for _ in range(250)])
    i += 1
fill = time.perf_counter() - t
n = app.recorder.max_notification_id()
db = Database(os.path.join(d, "r.db")); create_tables(db)
t = time.perf_counter(); applied = rebuild(db, history_source(app)); secs = time.perf_counter() - t
print(json.dumps({"stored": n, "fill_s": round(fill, 1), "rebuild_events": applied, "rebuild_s": round(secs, 1), "events_per_s": round(applied / secs)}))
