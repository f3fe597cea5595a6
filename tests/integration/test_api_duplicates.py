"""Duplicates over HTTP: an admin sets the rules, a merged lead's commands get 409 naming the survivor, the report."""

from __future__ import annotations

from tests.integration.api_harness import Api


def test_an_admin_sets_the_rules_sales_merges_on_create_and_reads_a_merged_lead_s_refusal(api: Api) -> None:
    admin, sales = api.user("acme", "admin"), api.user("acme", "sales")
    # Only the admin role has the tenant.* area.
    rules = {"default_region": "GB", "leads": [{"name": "phone", "keys": ["phone"], "action": "merge"}]}
    assert sales.command("tenant.set_duplicate_rules", **rules).status_code == 403
    assert admin.command("tenant.set_duplicate_rules", **rules).status_code == 201
    first = sales.created("lead.create", name="Ada", phone="+44 20 7946 0958")
    second = sales.created("lead.create", name="Ada from the phone", phone="(020) 7946-0958")
    before = api.stored()
    refused = sales.command("lead.work", lead_id=second)
    assert refused.status_code == 409
    assert refused.json()["error"] == "merged" and refused.json()["details"]["merged_into"] == first
    assert refused.json()["message"] == (f"cannot start working on lead {second[:8]}: it was merged into lead "
                                         f"{first}; send commands to that lead")  # fmt: skip
    assert api.stored() == before
    api.project()
    # 1 lead merged on create by the phone rule; no flags.
    report = admin.get("/v1/reports/duplicates")
    assert report.status_code == 200, report.text
    assert report.json()["rows"] == [{"record": "lead", "rule": "phone", "flagged": 0, "merged": 1, "open_flags": 0}]
