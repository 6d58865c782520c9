"""A router reply's body, read and decoded within a size limit.

httpx decodes a compressed body one network read at a time, each read in
full: a reply of a few kilobytes of gzip can inflate to gigabytes before a
size check sees any of it. Here the body is read raw, its size bounded, and
each decoding step asked for no more than the limit.
"""

from __future__ import annotations

import logging
import zlib

import httpx

logger = logging.getLogger(__name__)


INFLATE_PIECE_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    """The body, raw or decoded, is larger than the limit."""


async def read_bounded(response: httpx.Response, limit: int) -> bytes:
    """The decoded body of `response`; BodyTooLarge past `limit` bytes, and
    httpx.DecodingError when its content-encoding cannot be undone."""
    if response.is_stream_consumed:
        # A transport that answers from memory hands the body over read and
        # decoded; there is nothing left to bound but its size.
        if len(response.content) > limit:
            raise BodyTooLarge
        return response.content
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return decode(b"".join(chunks), response.headers.get("content-encoding", ""), limit)


def decode(body: bytes, content_encoding: str, limit: int) -> bytes:
    """Undo each coding named in `content_encoding`, the last applied first."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, 16 + zlib.MAX_WBITS, limit)
        elif coding == "deflate":
            # Servers send deflate both zlib-wrapped, as specified, and raw.
            try:
                body = _inflate(body, zlib.MAX_WBITS, limit)
            except httpx.DecodingError:
                body = _inflate(body, -zlib.MAX_WBITS, limit)
        else:
            raise httpx.DecodingError(f"unsupported content-encoding {coding!r}")
    return body


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    """Inflate a piece at a time, so that no more than `limit` bytes (and one
    piece) are ever held, however far the data would inflate."""
    inflater = zlib.decompressobj(wbits)
    parts: list[bytes] = []
    size = 0
    pending = data
    try:
        while True:
            part = inflater.decompress(pending, INFLATE_PIECE_BYTES)
            size += len(part)
            if size > limit:
                raise BodyTooLarge
            parts.append(part)
            pending = inflater.unconsumed_tail
            if inflater.eof or not (pending or part):
                break
    except zlib.error as exc:
        raise httpx.DecodingError(f"compressed body does not decode: {exc}") from exc
    if not inflater.eof:
        raise httpx.DecodingError("compressed body ends before its end marker")
    if inflater.unused_data:
        raise httpx.DecodingError("data follows the compressed body")
    return b"".join(parts)
