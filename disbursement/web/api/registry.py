from __future__ import annotations

import csv
import io
from dataclasses import asdict

from flask import Blueprint, Response, g, jsonify, request, stream_with_context

from disbursement.domain.states import Role
from disbursement.services.registry import importing as registry
from disbursement.services.registry import queries
from disbursement.web.auth import require, services
from disbursement.web.errors import ApiError

bp = Blueprint("registry", __name__, url_prefix="/api/v1/registry")


@bp.post("/imports")
@require(Role.MAKER)
def create_import():
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError(422, "file_required", "send the registry extract as multipart field 'file'")
    valid_only = request.values.get("valid_rows_only", "false").lower() in ("1", "true", "yes")
    try:
        result = registry.import_households(services(), upload.stream, upload.filename, g.actor,
                                            valid_rows_only=valid_only)
    except ValueError as exc:  # unsupported format
        raise ApiError(422, "invalid_file", str(exc)) from None
    body = asdict(result)
    body["error_report"] = f"/api/v1/registry/imports/{result.import_id}/errors.csv"
    status = {"duplicate": 200, "rejected": 422}.get(result.status, 201)
    return jsonify(body), status


@bp.get("/imports/<int:import_id>")
@require()
def show_import(import_id: int):
    with services().uow() as session:
        view = queries.import_view(session, import_id)
    if view is None:
        raise ApiError(404, "not_found", f"registry import {import_id} not found")
    return jsonify(view)


@bp.get("/imports/<int:import_id>/errors.csv")
@require()
def error_report(import_id: int):
    svc = services()
    with svc.uow() as session:
        if not queries.import_exists(session, import_id):
            raise ApiError(404, "not_found", f"registry import {import_id} not found")

    def rows():
        with svc.uow() as session:
            for row in registry.error_report_rows(session, import_id):
                buffer = io.StringIO()
                csv.writer(buffer).writerow(row)
                yield buffer.getvalue()

    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition":
                             f"attachment; filename=import-{import_id}-errors.csv"})
