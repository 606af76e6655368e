"""A mobile wallet operator speaking the wallet protocol, as a separate process.

    PARTNER_MWALLET_HMAC_KEY=secret python -m connectors.simulators.wallet \\
        --port 9104 --partner MWALLET --callback-url http://127.0.0.1:8000/api/v1/partners/MWALLET/confirmations

Same book, faults, key ring, /_sim controls and flags as the REST simulator;
its own API (see `connectors.wallet`): msisdn-addressed items, decimal amounts,
operator state words. A wallet credit is final at once: no `available` step.
The operator checks the number itself and refuses what it cannot credit.
"""
from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Any

import click
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException, NotFound

from connectors.base import PartnerStatus
from connectors.simulators.rest import (
    MAX_BODY_BYTES,
    Simulator,
    _json_list,
    _json_object,
    add_sim_controls,
    make_partner_api,
    open_book,
    rest_command,
    serve,
    simulator_setup,
)
from connectors.simulators.rest_callbacks import CallbackSender
from connectors.simulators.rest_statement import render_statement
from connectors.wallet import STATUS_TO_STATE
from disbursement.domain.money import parse_units
from disbursement.domain.wallet import normalise_mobile


def _state(status: str | PartnerStatus) -> str:
    return STATUS_TO_STATE[PartnerStatus(status)]


def _split_reason(reason: str | None) -> tuple[str | None, str | None]:
    if not reason:
        return None, None
    code, _, message = reason.partition(" ")
    return code, message or None


def render_notifications(batch: list[dict[str, Any]]) -> bytes:
    """The book's events in the operator's callback shape."""
    notifications = []
    for event in batch:
        code, message = _split_reason(event.get("reason"))
        notifications.append({"id": event["event_id"], "reference": event["reference"],
                              "state": _state(event["status"]),
                              "timestamp": event["occurred_at"].replace("Z", "+00:00"),
                              "error_code": code, "error_message": message})
    return json.dumps({"notifications": notifications}, separators=(",", ":")).encode()


def _to_book_item(item: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(the item in the book's shape, None) or (None, why the operator refuses it)."""
    if not isinstance(item, dict):
        return None, "FF01 item is not an object"
    if normalise_mobile(item.get("msisdn")) is None:
        return None, "BE01 msisdn is not a Moroccan mobile number"
    try:
        amount = parse_units(str(item.get("amount")))
    except ValueError:
        return None, "AM01 amount must be a decimal with at most two decimals"
    return {"reference": item.get("reference"), "amount_centimes": amount,
            "currency": item.get("currency")}, None


def _answer(result: dict[str, Any]) -> dict[str, Any]:
    code, message = _split_reason(result.get("reason"))
    return {"reference": result["reference"], "state": _state(result["status"]),
            "error_code": code, "error_message": message}


def create_app(simulator: Simulator) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    book = simulator.book
    add_sim_controls(app, simulator)
    partner_api = make_partner_api(simulator)

    @app.errorhandler(HTTPException)
    def json_error(exc: HTTPException) -> tuple[Response, int]:
        return jsonify(error=exc.description), exc.code or 500

    @app.post("/v1/disbursements")
    @partner_api
    def disburse(body: bytes) -> Any:
        answers = []
        for item in _json_list(body, "items"):
            converted, problem = _to_book_item(item)
            if problem is not None:
                reference = item.get("reference") if isinstance(item, dict) else None
                answers.append({"reference": reference, "state": "FAILED",
                                "error_code": problem[:4], "error_message": problem[5:]})
                continue
            answers.append(_answer(book.receive([converted])[0]))
        return jsonify(items=answers)

    @app.post("/v1/disbursements/query")
    @partner_api
    def query(body: bytes) -> Any:
        references = _json_list(body, "references")
        if not all(isinstance(ref, str) for ref in references):
            raise BadRequest("references must be strings")
        return jsonify(items=[{"reference": ref, "state": _state(status)}
                              for ref, status in book.statuses(references).items()])

    @app.post("/v1/disbursements/<reference>/cancel")
    @partner_api
    def cancel(body: bytes, reference: str) -> Any:
        if _json_object(body).get("reference") != reference:
            raise BadRequest("body reference does not match the path")
        outcome = book.cancel(reference)
        if outcome is None:
            raise NotFound(f"unknown reference {reference}")
        return jsonify(reference=reference, state=_state(outcome))

    @app.get("/v1/statements/settlement.csv")
    @partner_api
    def statement(body: bytes) -> Any:
        from datetime import datetime

        csv_bytes = render_statement(book.paid_lines(request.args.get("since")), book.faults(),
                                     book.statement_seed, book.holds,
                                     datetime.now(UTC).date())
        return Response(csv_bytes, mimetype="text/csv")

    return app


def _run(port: int, host: str, partner_code: str, callback_url: str, key_env: str | None,
         seed: int, auto_advance_seconds: float, callback_batch: int,
         journal_path: Path | None, **fault_options: Any) -> None:
    """Run a simulated mobile wallet operator speaking the wallet protocol."""
    keys, faults = simulator_setup(partner_code, callback_url, key_env, fault_options)
    book = open_book(partner_code, seed, faults, journal_path, two_step=False)
    sender = CallbackSender(book, callback_url, keys, callback_batch, render_notifications)
    simulator = Simulator(book, sender, keys)
    serve(simulator, create_app(simulator), host, port, auto_advance_seconds)


# The same flags as the REST simulator, so tests and the demo start either alike.
wallet_command = click.Command("wallet", params=list(rest_command.params), callback=_run,
                               help=_run.__doc__)


if __name__ == "__main__":
    wallet_command()
