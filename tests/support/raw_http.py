"""A POST written byte by byte on a socket, for what an HTTP client library
will not do: announce a body it never sends (a Content-Length of 300 MiB), or
stream a chunked body until the server answers. Standard library only."""
from __future__ import annotations

import select
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

ANSWER_SECONDS = 20.0
CHUNK_BYTES = 256 * 1024


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    body_bytes_sent: int


def post(url: str, headers: dict[str, str], *, announced_length: int | None = None,
         chunked_bytes: int = 0, timeout: float = ANSWER_SECONDS) -> RawAnswer:
    """POST to `url` with `headers`. With `announced_length`, a Content-Length
    header of that size and no body at all: a server that waits for the body
    never answers (AssertionError after `timeout`). With `chunked_bytes`, a
    chunked body of that many bytes, sent until the server answers."""
    parts = urlsplit(url)
    head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close",
            *(f"{k}: {v}" for k, v in headers.items())]
    head.append(f"Content-Length: {announced_length}" if announced_length is not None
                else "Transfer-Encoding: chunked")
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sent = 0 if announced_length is not None else _send_chunks(sock, chunked_bytes)
        return _read_answer(sock, sent, timeout)


def _send_chunks(sock: socket.socket, total: int) -> int:
    """Chunks until `total` bytes are sent or the server has answered."""
    sent, chunk = 0, b"x" * CHUNK_BYTES
    try:
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                return sent  # the server answered before the end of the body
            piece = chunk[:min(CHUNK_BYTES, total - sent)]
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
        sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server stopped reading: its answer may be waiting
    return sent


def _read_answer(sock: socket.socket, sent: int, timeout: float) -> RawAnswer:
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data or not _complete(data):
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
    except TimeoutError:
        raise AssertionError(f"no answer within {timeout:g}s after {sent} body bytes") from None
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return RawAnswer(int(status_line.split()[1]), headers, body, sent)


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return len(body) >= int(value)
    return False
