"""People use the web console in a real browser against a real `crmflow serve`, and see what the API says."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from crmflow.workers.console.charts import CHARTED
from tests.integration.console_world import Console, sign_in

CHART_SERIES = """(name) => {
  const chart = echarts.getInstanceByDom(document.querySelector(`[data-testid=chart-${name}]`));
  const option = chart.getOption();
  const series = option.series.map(s => ({name: s.name, data: s.data}));
  return {x: option.xAxis ? option.xAxis[0].data : null, series};
}"""


def _drawn(chart: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(series, category, value) of every bar the chart draws."""
    return {
        (s["name"], x, v) for s in chart["series"] for x, v in zip(chart["x"], s["data"]) if v is not None
    }


def _pipeline_bars(rows: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(f"{r['owner']} ({r['currency']})", r["stage"], r["amount"]) for r in rows}


def _as_csv_rows(body: dict[str, Any]) -> list[dict[str, str]]:
    return [{c: "" if r[c] is None else str(r[c]) for c in body["columns"]} for r in body["rows"]]


def test_an_analyst_signs_in_sees_the_pipeline_the_api_reports_filters_a_month_and_downloads_the_csv(
    console: Console,
    tab: Any,
) -> None:
    token = console.token("acme", "analyst", "grace")
    api = console.api(token, "/v1/reports/pipeline").json()
    assert api["rows"], "the seeded tenant has an open pipeline"

    sign_in(tab, console, token, then="/console/reports")
    tab.wait_for_selector("body[data-charts=drawn]")
    assert tab.url.endswith("/console/reports")
    assert "grace · analyst · tenant acme" in tab.inner_text("[data-testid=who]")
    assert _drawn(tab.evaluate(CHART_SERIES, "pipeline")) == _pipeline_bars(api["rows"])
    table = tab.inner_text("[data-testid=table-pipeline]")
    assert all(r["amount"] in table and r["owner"] in table for r in api["rows"])
    tab.screenshot(path=console.shots / "dashboard.png", full_page=True)

    tab.fill("input[name=since]", "2027-03-01")
    tab.fill("input[name=until]", "2027-04-01")
    tab.click("form.filters button")
    tab.wait_for_selector("body[data-charts=drawn]")
    march = console.api(token, "/v1/reports/pipeline", since="2027-03-01", until="2027-04-01").json()
    assert march["rows"] and len(march["rows"]) < len(api["rows"]), "the month filter leaves some deals out"
    assert _drawn(tab.evaluate(CHART_SERIES, "pipeline")) == _pipeline_bars(march["rows"])

    with tab.expect_download() as download:
        tab.click("[data-testid=csv-pipeline]")
    text = open(download.value.path(), encoding="utf-8").read()
    assert list(csv.DictReader(io.StringIO(text))) == _as_csv_rows(march)
    assert text.splitlines()[0] == ",".join(march["columns"])


def test_every_chart_of_the_dashboard_shows_the_rows_of_its_api_report(console: Console, tab: Any) -> None:
    token = console.token("acme", "analyst", "grace")
    sign_in(tab, console, token, then="/console/reports")
    tab.wait_for_selector("body[data-charts=drawn]")
    for name in CHARTED:
        rows = console.api(token, f"/v1/reports/{name}").json()["rows"]
        table = tab.inner_text(f"[data-testid=table-{name}]")
        assert len(tab.query_selector_all(f"[data-testid=table-{name}] tbody tr")) == max(len(rows), 1), name
        for row in rows:
            assert all(str(v) in table for v in row.values() if v is not None), (name, row)
    forecast = tab.evaluate(CHART_SERIES, "forecast")
    api = console.api(token, "/v1/reports/forecast").json()["rows"]
    assert _drawn(forecast) == {
        (f"weighted ({r['currency']})", r["month"], r["weighted_amount"]) for r in api
    } | {(f"best case ({r['currency']})", r["month"], r["best_case_amount"]) for r in api}


def test_a_malformed_date_gets_the_apis_message_on_the_page(console: Console, tab: Any) -> None:
    token = console.token("acme", "analyst", "grace")
    api = console.api(token, "/v1/reports/pipeline", since="2027-13-01")
    sign_in(tab, console, token)
    response = tab.goto(f"{console.base}/console/reports?since=2027-13-01")
    assert response.status == api.status_code == 422
    assert tab.inner_text("[data-testid=filter-error]") == api.json()["message"]
    assert tab.query_selector("section.report") is None, "no chart of unfiltered rows beside the message"

    unknown = console.api(token, "/v1/reports/pipline")
    response = tab.goto(f"{console.base}/console/reports/pipline")
    assert response.status == unknown.status_code == 404
    # "unknown report 'pipline'; did you mean pipeline?"
    assert tab.inner_text("[data-testid=refusal] .message") == unknown.json()["message"]


def test_a_sales_user_sees_only_the_reports_of_sales_and_is_told_so_for_the_others(
    console: Console,
    tab: Any,
) -> None:
    token = console.token("acme", "sales", "ada")
    sign_in(tab, console, token, then="/console/reports")
    shown = {e.get_attribute("data-report") for e in tab.query_selector_all("section.report")}
    api_allowed = {
        n
        for n in CHARTED
        if console.api(token, f"/v1/reports/{n}").status_code == 200
    }
    assert shown == api_allowed == {"pipeline", "forecast", "win-rate", "funnel", "accounts", "activities", "profitability"}
    response = tab.goto(f"{console.base}/console/reports/sla")
    assert response.status == 403
    assert (
        tab.inner_text("[data-testid=refusal] .message")
        == console.api(token, "/v1/reports/sla").json()["message"]
    )


def test_a_one_time_sign_in_link_signs_in_once_and_the_session_cookie_is_httponly_and_strict(
    console: Console,
    tab: Any,
    browser: Any,
) -> None:
    from tests.integration.console_world import SECRET

    issued = subprocess.run(
        [
            sys.executable,
            "-m",
            "crmflow",
            "token",
            "issue",
            "--tenant",
            "acme",
            "--role",
            "analyst",
            "--subject",
            "lin",
            "--console",
            "--url",
            console.base,
        ],
        env={**os.environ, "CRMFLOW_API_SECRET": SECRET},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    link = issued.stdout.strip()
    assert link.startswith(f"{console.base}/console/sign-in?token=")
    assert console.api(link.split("token=")[1], "/v1/reports/pipeline").status_code == 401, "not an API token"
    tab.goto(link)
    tab.click("button[type=submit]")
    assert "lin · analyst · tenant acme" in tab.inner_text("[data-testid=who]")
    cookie = next(c for c in tab.context.cookies() if c["name"] == "crmflow_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"], "plain HTTP here"
    assert cookie["path"] == "/console"

    other = browser.new_context()
    again = other.new_page()
    again.goto(link)
    again.click("button[type=submit]")
    assert "used already" in again.inner_text("[data-testid=why]")
    other.close()

    tab.click("header form button")  # sign out
    assert "signed out" in tab.inner_text("[data-testid=why]")
    assert tab.goto(f"{console.base}/console/reports").url.startswith(f"{console.base}/console/sign-in")


def test_a_state_changing_form_without_its_csrf_token_is_refused(console: Console, tab: Any) -> None:
    sign_in(tab, console, console.token("acme", "analyst", "grace"))
    # The browser sends the session cookie (same site), but the form lacks the hidden field.
    tab.evaluate("() => document.querySelector('header form input[name=csrf_token]').remove()")
    tab.click("header form button")
    assert "CSRF token is missing or does not match" in tab.inner_text("[data-testid=refusal] .message")
    assert tab.goto(f"{console.base}/console").status == 200, "still signed in: the sign-out was refused"
    forged = httpx.post(
        f"{console.base}/console/sign-out",
        data={"csrf_token": "guessed"},
        cookies={c["name"]: c["value"] for c in tab.context.cookies()},
    )
    assert forged.status_code == 403 and "CSRF" in forged.text
    root = httpx.get(f"{console.base}/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/console"


def test_a_sales_user_cannot_open_dead_letters_and_the_page_says_so(console: Console, tab: Any) -> None:
    sign_in(tab, console, console.token("acme", "sales", "ada"))
    assert "Dead letters" not in tab.inner_text("header nav")
    response = tab.goto(f"{console.base}/console/dead-letters")
    assert response.status == 403
    refusal = tab.inner_text("[data-testid=refusal] .message")
    assert refusal == "role sales may not see or redrive dead letters"
    tab.screenshot(path=console.shots / "dead-letters-refused.png")


def test_an_operator_opens_a_records_history_and_reads_why_it_was_assigned(
    console: Console, tab: Any
) -> None:
    token = console.token("acme", "admin", "olga")
    lead = console.seeded.ids["acme"]["lead"]
    api = console.api(token, f"/v1/aggregates/{lead}").json()
    assigned = next(e for e in api["history"] if e["type"] == "LeadAssigned")
    assert assigned["why"] == "command lead.assign by sales:ana"

    sign_in(tab, console, token, then="/console/records")
    tab.fill("input[name=id]", lead)
    tab.click("form.filters button")
    row = tab.locator("[data-testid=history] tr[data-type=LeadAssigned]")
    assert row.locator(".why").inner_text() == assigned["why"]
    assert "caller sales:ana" in row.locator(".cause").inner_text()
    assert len(tab.query_selector_all("[data-testid=history] tbody tr")) == len(api["history"])
    tab.screenshot(path=console.shots / "record.png", full_page=True)

    routed = console.seeded.ids["acme"]["routed_lead"]
    api = console.api(token, f"/v1/aggregates/{routed}").json()
    assigned = next(e for e in api["history"] if e["type"] == "LeadAssigned")
    assert assigned["why"].startswith("process web-lead-follow-up v3 step assign ran lead.assign")
    tab.goto(f"{console.base}/console/records/{routed}")
    tab.screenshot(path=console.shots / "record-routed.png", full_page=True)
    row = tab.locator("[data-testid=history] tr[data-type=LeadAssigned]")
    assert row.locator(".why").inner_text() == assigned["why"]
    assert "owner chosen by round_robin in step pick-owner" in assigned["why"]
    row.locator("a.trigger").click()  # the trigger: the LeadCreated of this very lead
    assert tab.url.endswith(f"/console/records/{assigned['caused_by']['trigger']['subject']}")
    assert tab.locator("[data-testid=history] tr[data-type=LeadCreated]").count() == 1

    tab.goto(f"{console.base}/console/instances")
    instances = console.api(token, "/v1/processes/instances").json()["rows"]
    assert instances, "the routed lead's instance waits for contact"
    shown = tab.inner_text("[data-testid=instances]")
    assert all(r["definition"] in shown and r["step"] in shown for r in instances)
    tab.screenshot(path=console.shots / "instances.png", full_page=True)


def test_a_token_of_one_tenant_never_shows_a_row_of_another_even_asked_for_its_ids(
    console: Console, tab: Any
) -> None:
    acme = console.token("acme", "admin", "root")
    globex_rows = console.api(console.token("globex", "admin", "root"), "/v1/reports/pipeline").json()["rows"]
    sign_in(tab, console, acme, then="/console/reports")
    dashboard = tab.inner_text("main")
    assert globex_rows and not any(r["amount"] in dashboard for r in globex_rows)
    assert "gus" not in dashboard and "gil" not in dashboard, "globex's owners"
    for name, record in console.seeded.ids["globex"].items():
        response = tab.goto(f"{console.base}/console/records/{record}")
        api = console.api(acme, f"/v1/aggregates/{record}")
        assert response.status == api.status_code == 404, name
        assert tab.inner_text("[data-testid=refusal] .message") == api.json()["message"]
        assert "Globex" not in tab.inner_text("main")


def test_a_designer_sees_each_deployed_definition_drawn_as_a_diagram(console: Console, tab: Any) -> None:
    sign_in(tab, console, console.token("acme", "admin", "dora"), then="/console/definitions")
    tab.click("text=web-lead-follow-up")
    tab.wait_for_selector("body[data-diagrams=drawn]")
    svg = tab.locator("pre.mermaid svg")
    assert svg.count() == 1
    drawn = svg.text_content() or ""
    for text in (
        "assign: do lead.assign",
        "wait-contact: wait for LeadStatusChanged",
        "timeout P2D",
        "escalate: emit LeadFollowUpOverdue",
    ):
        assert text in drawn, text
    tab.screenshot(path=console.shots / "process-diagram.png", full_page=True)


def test_a_designer_pastes_a_changed_definition_and_sees_the_whatif_table_the_cli_prints(
    console: Console, tab: Any
) -> None:
    proposal = (Path(__file__).parents[2] / "examples" / "web-lead-follow-up-v4.yaml").read_text()
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "crmflow",
            "process",
            "whatif",
            "examples/web-lead-follow-up-v4.yaml",
            "--tenant",
            "acme",
            "--format",
            "json",
        ],
        env={**os.environ, "CRMFLOW_DATABASE_URL": str(console.store)},
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    expected = [
        [str(r[c]) for c in ("measure", "deployed", "proposed", "change")]
        for r in json.loads(cli.stdout)["rows"]
    ]

    sign_in(tab, console, console.token("acme", "admin", "dora"), then="/console/designer")
    tab.fill("textarea[name=definition]", proposal)
    tab.click("button[value=whatif]")
    shown = [
        [td.inner_text() for td in tr.query_selector_all("td")]
        for tr in tab.query_selector_all("[data-testid=whatif] tbody tr")
    ]
    assert expected and shown == expected
    tab.screenshot(path=console.shots / "whatif.png", full_page=True)


def test_bad_definitions_get_the_clis_messages_on_the_page_and_store_nothing(
    console: Console, tab: Any
) -> None:
    admin = console.token("acme", "admin", "dora")
    before = console.api(admin, "/v1/processes/definitions", all_versions="true").json()
    broken = (
        (Path(__file__).parents[2] / "examples" / "hot-lead-alert.yaml")
        .read_text()
        .replace("lead.assign", "lead.asign")
    )
    api = httpx.post(
        f"{console.base}/v1/processes/validate",
        content=broken.encode(),
        headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/yaml"},
    ).json()

    sign_in(tab, console, admin, then="/console/designer")
    tab.fill("textarea[name=definition]", broken)
    tab.click("button[value=deploy]")
    assert tab.inner_text("[data-testid=designer-error]") == api["message"]
    shown = [
        [td.inner_text() for td in tr.query_selector_all("td")]
        for tr in tab.query_selector_all("[data-testid=issues] tbody tr")
    ]
    assert shown == [[str(i["line"]), i["field"], i["message"]] for i in api["details"]["issues"]]

    tab.fill("textarea[name=definition]", "x" * (300 * 1024))
    response_status = []
    tab.on(
        "response",
        lambda r: response_status.append(r.status) if r.url.endswith("/console/designer") else None,
    )
    tab.click("button[value=deploy]")
    assert "the limit is" in tab.inner_text("[data-testid=refusal] .message") and response_status == [413]
    assert console.api(admin, "/v1/processes/definitions", all_versions="true").json() == before, (
        "nothing stored"
    )


def test_an_admin_deploys_a_pasted_definition_and_the_api_lists_it(console: Console, tab: Any) -> None:
    admin = console.token("acme", "admin", "dora")
    definition = (Path(__file__).parents[2] / "examples" / "hot-lead-alert.yaml").read_text()
    sign_in(tab, console, admin, then="/console/designer")
    tab.fill("textarea[name=definition]", definition)
    tab.click("button[value=deploy]")
    shown = [
        [td.inner_text() for td in tr.query_selector_all("td")]
        for tr in tab.query_selector_all("[data-testid=deployed] tbody tr")
    ]
    assert shown == [["Process", "hot-lead-alert", "acme", "1", "deployed"]]
    listed = console.api(admin, "/v1/processes/definitions").json()["definitions"]
    assert any(d["name"] == "hot-lead-alert" and d["deployed_by"] == "admin:dora" for d in listed)


def test_a_designer_uploads_a_definition_file_and_it_is_validated(console: Console, tab: Any) -> None:
    sign_in(tab, console, console.token("acme", "admin", "dora"), then="/console/designer")
    example = Path(__file__).parents[2] / "examples" / "hot-lead-alert.yaml"
    tab.set_input_files("input[name=file]", str(example))
    tab.click("button[value=validate]")
    assert tab.inner_text("[data-testid=valid]") == "valid: 1 Process, 2 ProcessTest"
    assert "name: hot-lead-alert" in tab.input_value("textarea[name=definition]"), "the file, shown to edit"
