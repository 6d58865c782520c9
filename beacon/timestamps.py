"""Converting between epoch seconds and protobuf Timestamps, in one place."""

from __future__ import annotations

import time

from google.protobuf.timestamp_pb2 import Timestamp


def timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def now() -> Timestamp:
    return timestamp(time.time())


def seconds(stamp: Timestamp) -> float:
    return stamp.ToNanoseconds() / 1e9
