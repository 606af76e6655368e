"""Cycles: plan one, see its eligibility and totals and what changed since the
previous cycle; registry imports; the progress of both as jobs."""
from __future__ import annotations

import uuid

from flask import g, jsonify, redirect, render_template, request, url_for

from disbursement.domain.states import Role
from disbursement.services import progress as console_jobs
from disbursement.services.cycles import queries as cycle_queries
from disbursement.services.cycles import review as cycle_review
from disbursement.services.registry import reader
from disbursement.web.console.blueprint import bp
from disbursement.web.console.guard import not_found, services, signed_in


@bp.get("/cycles")
@signed_in()
def cycles():
    svc = services()
    with svc.uow() as db:
        rows = cycle_review.list_cycles(db)
    return render_template("console/cycles.html", rows=rows, programs=sorted(svc.programs))


@bp.post("/cycles/plan")
@signed_in(Role.MAKER)
def cycle_plan():
    job_id = console_jobs.start_plan(services(), g.officer, request.form.get("program", ""),
                                     request.form.get("period", "").strip())
    return redirect(url_for("officer.job", job_id=job_id), 303)


@bp.post("/registry/import")
@signed_in(Role.MAKER)
def registry_import():
    upload = request.files.get("extract")
    if upload is None or not upload.filename:
        return render_template(
            "console/error.html", status=422,
            message="choose a registry extract (CSV or JSON Lines) to import"), 422
    try:
        reader.detect_format(upload.filename)
    except ValueError as exc:
        return render_template("console/error.html", status=422, message=str(exc)), 422
    svc = services()
    folder = svc.settings.var_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    # A name of our own: the officer's file name never becomes a path.
    path = folder / f"registry-{uuid.uuid4().hex}"
    upload.save(path)
    job_id = console_jobs.start_import(svc, g.officer, path, upload.filename,
                                       request.form.get("valid_rows_only") == "1")
    return redirect(url_for("officer.job", job_id=job_id), 303)


def _job_json(job: console_jobs.JobView) -> dict:
    next_url = None
    if job.status == "done" and job.kind == "plan" and job.result:
        next_url = url_for("officer.cycle_detail", cycle_id=job.result["cycle_id"])
    return {"id": job.id, "kind": job.kind, "status": job.status, "done": job.done,
            "total": job.total, "result": job.result, "error": job.error, "next_url": next_url}


@bp.get("/jobs/<int:job_id>")
@signed_in()
def job(job_id: int):
    try:
        view = console_jobs.view(services(), job_id)
    except console_jobs.JobNotFound:
        not_found(f"job {job_id}")
    return render_template("console/job.html", job=view)


@bp.get("/jobs/<int:job_id>.json")
@signed_in()
def job_json(job_id: int):
    try:
        return jsonify(_job_json(console_jobs.view(services(), job_id)))
    except console_jobs.JobNotFound:
        not_found(f"job {job_id}")


@bp.get("/cycles/<int:cycle_id>")
@signed_in()
def cycle_detail(cycle_id: int):
    svc = services()
    with svc.uow() as db:
        program = cycle_queries.cycle_program(db, cycle_id)
        if program is None:
            not_found(f"cycle {cycle_id}")
        view = cycle_review.summary(db, cycle_id, svc.programs.get(program))
    return render_template("console/cycle.html", s=view, c=view.cycle, ch=view.changes)
