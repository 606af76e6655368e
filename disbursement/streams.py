"""Helpers for files read once, in steps, never whole into memory."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import BinaryIO, TypeVar

HASH_BLOCK_BYTES = 1 << 20
T = TypeVar("T")


def sha256_and_rewind(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(HASH_BLOCK_BYTES), b""):
        digest.update(block)
    stream.seek(0)
    return digest.hexdigest()


def in_steps(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while step := list(islice(iterator, size)):
        yield step
