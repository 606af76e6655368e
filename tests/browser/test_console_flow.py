"""The officers' console in the system Chromium: a maker plans and submits a
batch and cannot approve it, an approver approves it with a one-time code and
releases it, dispatch progress runs live, the monitors' dashboard draws its
charts with data, a search finds a transfer and shows its timeline, the
exceptions queue lists what the reconciliation found and an approver resolves
one, and the reports page downloads a CSV."""
from __future__ import annotations

import csv
import io
import re

import httpx
import pytest
from sqlalchemy import select

from disbursement.db.models import Batch
from disbursement.db.models.ledger import ReconException
from disbursement.domain.money import format_units
from disbursement.services.ledger import reports
from disbursement.services.officers import users
from reconciliation import reconcile
from tests.browser.conftest import sign_in
from tests.conftest import PASSWORD
from tests.support.console import fresh_totp_code

pytestmark = [pytest.mark.e2e]

PERIOD = "2026-05"
WAIT_MS = 60_000
CHARTS = ["chart-states", "chart-hourly", "chart-paid", "chart-latency", "chart-errors",
          "chart-exceptions"]
PAINTED_PIXELS = """(id) => {
  const canvas = document.getElementById(id);
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) { painted++; } }
  return painted;
}"""
CHART_TOTAL = """(id) => Chart.getChart(id).data.datasets
  .flatMap((d) => d.data).reduce((sum, v) => sum + (typeof v === "object" ? v.units : v), 0)"""


def _batch_status(site, batch_id: int) -> str:
    with site.svc.uow() as session:
        return session.execute(select(Batch.status).where(Batch.id == batch_id)).scalar_one()


def _reconcile(site, batch_id: int) -> None:
    """The released partner's settlement statement, reconciled (test setup:
    the exceptions pages belong to the reconciliation work)."""
    with site.svc.uow() as session:
        partner = session.execute(
            select(Batch.partner_code).where(Batch.id == batch_id)).scalar_one()
        maker = users.actor_by_name(session, "amina.maker")
    statement = site.svc.connector(partner).fetch_statement()
    reconcile.reconcile(site.svc, partner, io.BytesIO(statement), f"{partner}.csv", maker)


def _report_cells(site, kind: str) -> list[list[str]]:
    """The report as the reports service builds it, as CSV cells."""
    with site.svc.uow() as session:
        rows = reports.build(session, kind)
    return [reports.COLUMNS] + [[kind, r.key, r.section, r.category, str(r.count),
                                 format_units(r.amount_centimes), format_units(r.fee_centimes)]
                                for r in rows]


def test_plan_submit_approve_dispatch_watch_and_search(site, chromium, shot):
    # --- the maker plans a cycle and watches the job's progress
    maker = sign_in(chromium, site, "amina.maker")
    shot(maker, "01-maker-home")
    maker.click("text=Cycles")
    maker.select_option("select[name=program]", "asd")
    maker.fill("input[name=period]", PERIOD)
    maker.click("#plan-cycle")
    maker.wait_for_url(re.compile(r"/console/cycles/\d+$"), timeout=WAIT_MS)
    shot(maker, "02-cycle-planned")
    assert int(maker.text_content("#instructions")) > 0
    assert "first cycle" in maker.text_content("main")

    # --- ... opens a batch, submits it, and may not approve it
    maker.click("#cycle-batches tbody tr:first-child a")
    maker.click("#submit-batch")
    maker.wait_for_selector("#batch-state:text('submitted')")
    batch_id = int(re.search(r"/console/batches/(\d+)", maker.url).group(1))
    approve = maker.locator("#approve-batch")
    assert approve.is_disabled()
    assert "you made this batch" in maker.text_content("#approve-refusal")
    shot(maker, "03-maker-cannot-approve")
    # Forcing the disabled form anyway is refused by the server.
    maker.evaluate("""() => { const form = document.getElementById('approve-batch').form;
        form.querySelectorAll('[disabled]').forEach((e) => e.removeAttribute('disabled'));
        form.querySelector('input[name=confirmation]').value = 'correct horse battery staple';
        form.submit(); }""")
    maker.wait_for_selector(".flash.error")
    assert "approver role" in maker.text_content(".flash.error")
    shot(maker, "04-maker-refused")
    assert _batch_status(site, batch_id) == "submitted"

    # --- the approver reviews it and approves it with a one-time code
    approver = sign_in(chromium, site, "youssef.approver")
    approver.goto(f"/console/batches/{batch_id}")
    assert approver.locator("#approve-batch").is_enabled()
    reference = approver.text_content("#sample tbody tr:first-child td:first-child").strip()
    shot(approver, "05-approver-review")
    approver.fill("form:has(#approve-batch) input[name=confirmation]",
                  fresh_totp_code(site.totp))
    approver.click("#approve-batch")
    approver.wait_for_selector("#batch-state:text('approved')")
    assert "confirmed by totp" in approver.text_content(".flash")
    assert "youssef.approver" in approver.text_content("#history")
    shot(approver, "06-approved")

    # --- released: dispatch progress is shown live
    approver.click("#release-batch")
    approver.wait_for_selector("#batch-state:text('released')")
    approver.wait_for_function(
        "() => { const p = document.getElementById('dispatch-progress');"
        " return p && p.value > 0 && p.value === p.max; }", timeout=WAIT_MS)
    shot(approver, "07-dispatched")
    with httpx.Client(timeout=60) as client:
        for url in site.sims.values():
            client.post(f"{url}/_sim/advance", json={}).raise_for_status()
    site.svc.queue.drain()
    _reconcile(site, batch_id)

    # --- the monitor's dashboard draws every chart, with data
    monitor = sign_in(chromium, site, "salma.monitor")
    monitor.wait_for_url(re.compile(r"/console/dashboard$"))
    monitor.wait_for_selector("#dashboard[data-loaded='1']", timeout=WAIT_MS)
    monitor.wait_for_function(f"() => Chart.getChart('chart-paid').data.datasets.length > 0"
                              f" && ({CHART_TOTAL})('chart-paid') > 0", timeout=WAIT_MS)
    for chart in CHARTS:
        assert monitor.evaluate(PAINTED_PIXELS, chart) > 0, f"{chart} is blank"
    for chart in ("chart-states", "chart-hourly", "chart-latency", "chart-exceptions"):
        assert monitor.evaluate(CHART_TOTAL, chart) > 0, f"{chart} has no data"
    shot(monitor, "08-dashboard")

    # --- search finds the transfer (by reference, and by national ID) and its timeline
    approver.goto("/console/transfers")
    approver.fill("input[name=q]", reference)
    approver.click("#search")
    approver.wait_for_selector(f"#results a:text('{reference}')")
    shot(approver, "09-search")
    approver.click(f"#results a:text('{reference}')")
    timeline = approver.text_content("#timeline")
    for step in ("planned", "pending_approval", "approved", "queued", "sent", "youssef.approver"):
        assert step in timeline, step
    assert "*****" in approver.text_content("#household")
    shot(approver, "10-timeline")
    household = approver.text_content("h2:has-text('Household')").split()[-1]
    national_id = next(r["cin"] for r in site.rows if r["household_id"] == household)
    approver.goto("/console/transfers")
    approver.fill("input[name=q]", national_id)
    approver.click("#search")
    assert reference in approver.text_content("#results")
    assert national_id not in approver.text_content("#results")  # masked for an approver

    # --- the exceptions queue lists what the faulty statement left; the approver resolves one
    approver.click("header nav >> text=Exceptions")
    approver.select_option("select[name=status]", "open")
    approver.click("#filter-exceptions")
    approver.wait_for_url(re.compile(r"/console/exceptions\?.*status=open"))
    first = approver.locator("#exceptions tbody tr[data-exception]").first
    exception_id = int(first.get_attribute("data-exception"))
    assert "open" in first.text_content()
    shot(approver, "11-exceptions")
    first.locator("a").first.click()
    approver.select_option("select[name=kind]", "chase_partner")
    approver.fill("input[name=reason]", "asked the partner for its corrected statement")
    approver.fill("form:has(#resolve-exception) input[name=confirmation]", PASSWORD)
    approver.click("#resolve-exception")
    approver.wait_for_selector("#exception-state:text('resolved')")
    assert "confirmed by password" in approver.text_content(".flash")
    assert "youssef.approver" in approver.text_content("#resolution")
    shot(approver, "12-exception-resolved")
    with site.svc.uow() as session:
        row = session.get(ReconException, exception_id)
        assert (row.status, row.resolution, row.resolved_by) == (
            "resolved", "chase_partner", "youssef.approver")

    # --- the auditor reads the partner report and downloads it as CSV
    auditor = sign_in(chromium, site, "karim.auditor")
    auditor.click("header nav >> text=Reports")
    auditor.select_option("select[name=kind]", "partner")
    auditor.click("#show-report")
    auditor.wait_for_selector("#report-state tbody tr[data-key]")
    shot(auditor, "13-reports")
    with auditor.expect_download() as download:
        auditor.click("#download-csv")
    assert download.value.suggested_filename == "partner-report-all-all.csv"
    with open(download.value.path(), encoding="utf-8", newline="") as fh:
        assert list(csv.reader(fh)) == _report_cells(site, "partner")
