"""A payment institution speaking the REST partner protocol, as a separate process.

    PARTNER_PI1_HMAC_KEY=secret python -m connectors.simulators.rest \\
        --port 9101 --partner PI1 --callback-url http://127.0.0.1:5000/partners/PI1/callbacks

It holds transfers in memory, answers the signed partner API, posts signed
confirmations to our callback URL when time is advanced (POST /_sim/advance or
--auto-advance), serves a settlement statement, and shows faults switched on
by flags or at runtime (POST /_sim/faults). The /_sim endpoints are unsigned:
they are the test harness's, not the partner's.
"""
from __future__ import annotations

import functools
import json
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException, NotFound
from werkzeug.serving import make_server

from connectors import signing
from connectors.base import PartnerStatus
from connectors.simulators.journal import Journal
from connectors.simulators.rest_book import FaultError, Faults, PartnerBook
from connectors.simulators.rest_callbacks import CallbackSender, KeyRing, parse_keys
from connectors.simulators.rest_statement import render_statement

MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_ITEMS_PER_REQUEST = 10_000


class Simulator:
    """The book, the confirmations it owes, and the act of time passing."""

    def __init__(self, book: PartnerBook, sender: CallbackSender, keys: KeyRing) -> None:
        self.book = book
        self.sender = sender
        self.keys = keys
        self.nonces = signing.MemoryNonces()

    def advance(self, to: PartnerStatus | None = None,
                references: list[str] | None = None) -> dict[str, Any]:
        """Random fates by default; `to` moves the transfers there instead."""
        now = datetime.now(UTC)
        queued = (self.book.advance(now) if to is None
                  else self.book.force(to, references, now))
        delivered = self.sender.deliver_pending()
        return {"delivered": delivered, "pending": self.book.pending_count(),
                "by_status": dict(queued)}

    def verify(self, body: bytes) -> None:
        """The partner checks our signature over the whole request; raises SignatureError."""
        signing.verify(self.keys.active, request.headers, body, method=request.method,
                       target=signing.request_target(request.path, request.query_string),
                       nonces=self.nonces)


def add_sim_controls(app: Flask, simulator: Simulator) -> None:
    """The /_sim endpoints every simulator shares: they are the test harness's,
    not the partner's, and unsigned."""
    book = simulator.book

    @app.post("/_sim/advance")
    def advance() -> Any:
        payload = _json_object(request.get_data())
        to, references = payload.get("to"), payload.get("references")
        if references is not None and not (isinstance(references, list)
                                           and all(isinstance(r, str) for r in references)):
            raise BadRequest("references must be a list of strings")
        try:
            target = PartnerStatus(to) if to is not None else None
            return jsonify(simulator.advance(target, references))
        except (ValueError, FaultError) as exc:
            raise BadRequest(f"cannot advance to {to!r}: {exc}") from exc

    @app.get("/_sim/faults")
    def get_faults() -> Any:
        return jsonify(_faults_json(book.faults()))

    @app.post("/_sim/faults")
    def set_faults() -> Any:
        try:
            return jsonify(_faults_json(book.update_faults(_json_object(request.get_data()))))
        except FaultError as exc:
            raise BadRequest(str(exc)) from exc

    @app.post("/_sim/reject-next")
    def reject_next() -> Any:
        payload = _json_object(request.get_data())
        count = payload.get("count", 1)
        if type(count) is not int or count < 1:
            raise BadRequest("count must be a positive integer")
        try:
            book.reject_next(str(payload.get("reason_code", "")), count)
        except FaultError as exc:
            raise BadRequest(str(exc)) from exc
        return jsonify(ok=True)

    @app.post("/_sim/keys")
    def set_keys() -> Any:
        keys = _json_object(request.get_data()).get("keys")
        if not isinstance(keys, list) or not keys or not all(
                isinstance(k, str) and k for k in keys):
            raise BadRequest("keys must be a non-empty list of non-empty strings")
        simulator.keys.replace([k.encode("utf-8") for k in keys])
        return jsonify(active=len(keys))

    @app.get("/_sim/transfers/<reference>")
    def held(reference: str) -> Any:
        entry = book.transfer(reference)
        if entry is None:
            raise NotFound(f"the partner holds no transfer {reference}")
        return jsonify(entry)

    @app.get("/_sim/state")
    def state() -> Any:
        return jsonify(book.snapshot())


def make_partner_api(simulator: Simulator) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The decorator of every partner endpoint: faults, then the signature over
    the whole request (and its nonce), then the view. Shared by the simulators."""
    book = simulator.book

    def partner_api(view: Callable[..., Any]) -> Callable[..., Any]:
        """Faults, then the signature over the raw body, then the view."""
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Any:
            faults = book.faults()
            if faults.latency_ms:
                time.sleep(faults.latency_ms / 1000)
            if book.draw("error_rate"):
                return jsonify(error="simulated outage, try again later"), 503
            body = request.get_data()
            try:
                simulator.verify(body)
            except signing.SignatureError as exc:
                return jsonify(error=str(exc)), 401
            if book.draw("lost_request_rate"):
                time.sleep(faults.timeout_sleep_seconds)
                return jsonify(error="request lost before processing"), 503
            answer = view(body, **kwargs)
            if book.draw("timeout_rate"):
                # Processed and stored, but the answer comes too late: the
                # caller cannot know the transfers were taken.
                time.sleep(faults.timeout_sleep_seconds)
            return answer
        return wrapper

    return partner_api


def create_app(simulator: Simulator) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    book = simulator.book
    add_sim_controls(app, simulator)

    @app.errorhandler(HTTPException)
    def json_error(exc: HTTPException) -> tuple[Response, int]:
        return jsonify(error=exc.description), exc.code or 500

    partner_api = make_partner_api(simulator)

    @app.post("/v1/transfers")
    @partner_api
    def send(body: bytes) -> Any:
        items = _json_list(body, "transfers")
        return jsonify(results=book.receive(items))

    @app.post("/v1/transfers/status")
    @partner_api
    def status(body: bytes) -> Any:
        references = _json_list(body, "references")
        if not all(isinstance(ref, str) for ref in references):
            raise BadRequest("references must be strings")
        return jsonify(statuses=book.statuses(references))

    @app.post("/v1/transfers/<reference>/cancel")
    @partner_api
    def cancel(body: bytes, reference: str) -> Any:
        payload = _json_object(body)
        if payload.get("reference") != reference:
            raise BadRequest("body reference does not match the path")
        outcome = book.cancel(reference)
        if outcome is None:
            raise NotFound(f"unknown reference {reference}")
        return jsonify(reference=reference, status=outcome)

    @app.get("/v1/statements/settlement.csv")
    @partner_api
    def statement(body: bytes) -> Any:
        since = request.args.get("since")
        if since is not None:
            try:
                date.fromisoformat(since)
            except ValueError as exc:
                raise BadRequest("since must be an ISO date (YYYY-MM-DD)") from exc
        csv_bytes = render_statement(book.paid_lines(since), book.faults(),
                                     book.statement_seed, book.holds,
                                     datetime.now(UTC).date())
        return Response(csv_bytes, mimetype="text/csv")

    return app


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body or b"{}")
    except ValueError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise BadRequest("body must be a JSON object")
    return payload


def _json_list(body: bytes, name: str) -> list[Any]:
    items = _json_object(body).get(name)
    if not isinstance(items, list):
        raise BadRequest(f"{name} must be a list")
    if len(items) > MAX_ITEMS_PER_REQUEST:
        raise BadRequest(f"at most {MAX_ITEMS_PER_REQUEST} {name} per request")
    return items


def _faults_json(faults: Faults) -> dict[str, Any]:
    return {name: getattr(faults, name) for name in Faults.__dataclass_fields__}


class AutoAdvancer(threading.Thread):
    """Advances time every `seconds`; a failure stops the whole simulator."""

    def __init__(self, simulator: Simulator, seconds: float,
                 on_crash: Callable[[], None]) -> None:
        super().__init__(name="auto-advance", daemon=True)
        self._simulator = simulator
        self._seconds = seconds
        self._on_crash = on_crash
        self._stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self._stopped.wait(self._seconds):
                self._simulator.advance()
        except Exception:
            # A simulator that silently stops advancing would look like a
            # partner that never pays: fail loudly instead.
            traceback.print_exc()
            self._on_crash()

    def stop(self) -> None:
        self._stopped.set()


def serve(simulator: Simulator, app: Flask, host: str, port: int,
          auto_advance_seconds: float) -> None:
    server = make_server(host, port, app, threaded=True)
    crashed = threading.Event()

    def crash() -> None:
        crashed.set()
        server.shutdown()

    advancer = AutoAdvancer(simulator, auto_advance_seconds, crash)
    # SIGTERM stops the simulator the way Ctrl-C does, through the finally.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # The actual port, so `--port 0` lets the parent avoid port races.
    print(f"ready on http://{host}:{server.server_port}", flush=True)
    try:
        if auto_advance_seconds > 0:
            advancer.start()
        # werkzeug's serve_forever returns on KeyboardInterrupt (Ctrl-C, SIGTERM).
        server.serve_forever()
    finally:
        advancer.stop()
        server.server_close()
        simulator.sender.close()
        simulator.book.close()
    if crashed.is_set():
        raise SystemExit(1)


def key_env_name(partner_code: str) -> str:
    """The environment variable holding the partner's key unless --key-env says."""
    return f"PARTNER_{partner_code.upper().replace('-', '_')}_HMAC_KEY"


_RATE = click.FloatRange(0, 1)
_COUNT = click.IntRange(min=0)


@click.command("rest")
@click.option("--port", type=click.IntRange(0, 65535), required=True,
              help="0 picks a free port, printed on the ready line.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--partner", "partner_code", required=True, help="Partner code, e.g. PI1.")
@click.option("--callback-url", required=True, help="Where confirmations are posted.")
@click.option("--key-env", default=None,
              help="Env var holding the shared HMAC key(s), `new,old` during a rotation "
                   "[default: PARTNER_<CODE>_HMAC_KEY].")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--auto-advance", "auto_advance_seconds", type=click.FloatRange(min=0),
              default=0.0, show_default=True, help="Seconds between advances; 0 = off.")
@click.option("--callback-batch", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--journal", "journal_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Append-only journal (JSON lines, fsynced before each "
                                 "answer); an existing one is reloaded: book and "
                                 "unacknowledged callbacks.")
@click.option("--latency-ms", type=_COUNT, default=0)
@click.option("--error-rate", type=_RATE, default=0.0)
@click.option("--timeout-rate", type=_RATE, default=0.0)
@click.option("--lost-request-rate", type=_RATE, default=0.0)
@click.option("--timeout-sleep-seconds", type=click.FloatRange(min=0), default=30.0)
@click.option("--reject-rate", type=_RATE, default=0.0)
@click.option("--uncollected-rate", type=_RATE, default=0.0)
@click.option("--duplicate-callbacks", is_flag=True)
@click.option("--out-of-order-callbacks", is_flag=True)
@click.option("--statement-missing-lines", type=_COUNT, default=0)
@click.option("--statement-extra-lines", type=_COUNT, default=0)
@click.option("--statement-altered-lines", type=_COUNT, default=0)
@click.option("--statement-duplicate-lines", type=_COUNT, default=0)
def rest_command(port: int, host: str, partner_code: str, callback_url: str,
                 key_env: str | None, seed: int, auto_advance_seconds: float,
                 callback_batch: int, journal_path: Path | None,
                 **fault_options: Any) -> None:
    """Run a simulated payment institution speaking the REST partner protocol."""
    keys, faults = simulator_setup(partner_code, callback_url, key_env, fault_options)
    book = open_book(partner_code, seed, faults, journal_path)
    sender = CallbackSender(book, callback_url, keys, callback_batch)
    simulator = Simulator(book, sender, keys)
    serve(simulator, create_app(simulator), host, port, auto_advance_seconds)


def open_book(partner_code: str, seed: int, faults: Faults, journal_path: Path | None,
              two_step: bool = True) -> PartnerBook:
    """The partner's book; with a journal, reloaded from it when it exists."""
    if journal_path is None:
        return PartnerBook(partner_code, seed, faults, two_step)
    journal, state = Journal.open(journal_path)
    book = PartnerBook(partner_code, seed, faults, two_step, journal)
    book.restore(state)
    journal.started(partner_code)
    return book


def simulator_setup(partner_code: str, callback_url: str, key_env: str | None,
                    fault_options: dict[str, Any]) -> tuple[KeyRing, Faults]:
    """Keys from the environment and faults from the flags, or a usage error."""
    if not callback_url.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http(s) URL", param_hint="--callback-url")
    env_name = key_env or key_env_name(partner_code)
    keys = parse_keys(os.environ.get(env_name, ""))
    if not keys:
        # No default secret, ever: a simulator signing with a guessable key
        # would teach our service to trust one.
        raise click.UsageError(f"environment variable {env_name} is not set: "
                               "refusing to start without the shared HMAC key")
    try:
        return KeyRing(keys), Faults().updated(fault_options)
    except FaultError as exc:
        raise click.UsageError(str(exc)) from exc


if __name__ == "__main__":
    rest_command()
