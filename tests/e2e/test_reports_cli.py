"""An analyst rebuilds the read models and reads reports from the command line."""

from __future__ import annotations

import csv
import io
import json

from tests.e2e.conftest import Crmflow


def created(crmflow: Crmflow, command: str, /, **data: object) -> str:
    return str(json.loads(crmflow("command", command, "--tenant", "acme", "--data", json.dumps(data)).stdout)["aggregate_id"])


def test_an_analyst_reads_the_pipeline_as_a_table_json_and_csv(crmflow: Crmflow) -> None:
    account = created(crmflow, "account.create", name="Globex")
    for amount, stage in (("1000", "prospecting"), ("3000", "proposal")):
        created(crmflow, "opportunity.create", account_id=account, name=f"Deal {amount}", amount=amount,
                close_date="2026-06-30", owner="maria", stage=stage)  # fmt: skip
    rebuilt = crmflow("projections", "rebuild")
    assert "rebuilt every read model" in rebuilt.stderr and "new tables are in place" in rebuilt.stderr

    rows = json.loads(crmflow("query", "pipeline", "--tenant", "acme", "--format", "json").stdout)
    # 1,000 × 10% = 100; 3,000 × 50% = 1,500: exact decimal strings, as amounts are in events.
    assert [(r["stage"], r["amount"], r["weighted_amount"]) for r in rows] == [("prospecting", "1000.00", "100.00"),
                                                                             ("proposal", "3000.00", "1500.00")]  # fmt: skip
    table = crmflow("query", "forecast", "--tenant", "acme").stdout
    assert "2026-06" in table and "1600.00" in table
    sheet = list(csv.DictReader(io.StringIO(crmflow("query", "accounts", "--tenant", "acme", "--format", "csv").stdout)))
    assert sheet[0]["account"] == "Globex" and sheet[0]["segment"] == "prospect"
    assert json.loads(crmflow("query", "pipeline", "--tenant", "globex", "--format", "json").stdout) == []


def test_an_unknown_report_is_refused_with_the_list(crmflow: Crmflow) -> None:
    done = crmflow("query", "revenue", "--tenant", "acme", check=False)
    assert done.returncode == 2 and "invalid choice: 'revenue'" in done.stderr and "pipeline" in done.stderr
