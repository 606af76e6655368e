"""An SMS gateway as a separate process: takes signed message requests,
delivers each key once, and records what the beneficiaries' phones received.

    SMS_GATEWAY_KEY=secret python -m connectors.simulators.sms --port 0

Faults: --error-rate (5xx, nothing taken), --latency-ms. The /_sim endpoints
are the test harness's: GET /_sim/messages lists what was delivered.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import signal
import threading
import time
from typing import Any

import click
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from connectors import signing

MAX_BODY_BYTES = 16 * 1024 * 1024


class Phones:
    """What the gateway delivered, keyed by our idempotency key."""

    def __init__(self, seed: int, error_rate: float, latency_ms: int) -> None:
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.faults = {"error_rate": error_rate, "latency_ms": latency_ms}
        self.messages: dict[str, dict[str, Any]] = {}
        self.ids = itertools.count(1)
        self.duplicates = 0

    def take(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self.lock:
            results = []
            for item in items:
                held = self.messages.get(item["key"])
                if held is not None:
                    self.duplicates += 1
                    results.append({"key": item["key"], "id": held["id"], "status": "duplicate"})
                    continue
                held = {"id": f"SMS{next(self.ids):08d}", "key": item["key"], "to": item["to"],
                        "text": item["text"]}
                self.messages[item["key"]] = held
                results.append({"key": item["key"], "id": held["id"], "status": "accepted"})
            return results

    def draw_error(self) -> bool:
        with self.lock:
            rate = self.faults["error_rate"]
            return rate > 0 and self.rng.random() < rate


def create_app(phones: Phones, key: bytes) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    nonces = signing.MemoryNonces()  # a replayed request is refused

    @app.post("/v1/messages")
    def messages():
        if phones.faults["latency_ms"]:
            time.sleep(phones.faults["latency_ms"] / 1000)
        if phones.draw_error():
            return jsonify(error="simulated outage"), 503
        body = request.get_data()
        try:
            signing.verify([key], request.headers, body, method=request.method,
                           target=signing.request_target(request.path, request.query_string),
                           nonces=nonces)
        except signing.SignatureError as exc:
            return jsonify(error=str(exc)), 401
        try:
            items = json.loads(body)["messages"]
            valid = all(isinstance(i, dict) and all(isinstance(i.get(f), str) and i.get(f)
                                                    for f in ("key", "to", "text")) for i in items)
        except (ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            return jsonify(error="messages must be a list of {key, to, text} strings"), 400
        return jsonify(results=phones.take(items))

    @app.get("/_sim/messages")
    def delivered():
        with phones.lock:
            return jsonify(messages=list(phones.messages.values()), duplicates=phones.duplicates)

    @app.post("/_sim/faults")
    def set_faults():
        changes = request.get_json(force=True)
        if not isinstance(changes, dict) or set(changes) - set(phones.faults):
            return jsonify(error=f"faults are {sorted(phones.faults)}"), 400
        with phones.lock:
            phones.faults.update(changes)
            return jsonify(phones.faults)

    return app


@click.command("sms")
@click.option("--port", type=click.IntRange(0, 65535), required=True,
              help="0 picks a free port, printed on the ready line.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--key-env", default="SMS_GATEWAY_KEY", show_default=True,
              help="Env var holding the shared HMAC key.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--error-rate", type=click.FloatRange(0, 1), default=0.0)
@click.option("--latency-ms", type=click.IntRange(min=0), default=0)
def sms_command(port: int, host: str, key_env: str, seed: int, error_rate: float,
                latency_ms: int) -> None:
    """Run a simulated SMS gateway."""
    key_text = os.environ.get(key_env)
    if not key_text:
        raise click.UsageError(f"environment variable {key_env} is not set: refusing to start "
                               "without the shared HMAC key")
    server = make_server(host, port, create_app(Phones(seed, error_rate, latency_ms),
                                                key_text.encode()), threaded=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"ready on http://{host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    sms_command()
