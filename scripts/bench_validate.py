"""Micro-benchmark of the leader's produce validation (``validate_produce``) on
100-record batches of 1 KiB values: uncompressed and each codec.

    .venv/bin/python scripts/bench_validate.py
"""

from __future__ import annotations

import os
import timeit

from raftlog.node.broker.partition import validate_produce
from raftlog.records import build_batch


def main() -> None:
    values = [(None, os.urandom(512).hex().encode()) for _ in range(100)]  # 1 KiB each
    for codec, name in ((0, "none"), (1, "gzip"), (2, "snappy"), (3, "lz4"), (4, "zstd")):
        data = build_batch(values, compression=codec)
        number = 2000 if codec == 0 else 300
        best = min(timeit.repeat(lambda: validate_produce(data, 1048588), number=number, repeat=5)) / number
        print(f"{name:7s} batch {len(data):7d} B  validate {best * 1e6:8.1f} us"
              f"  ({100 / best / 1e6:.2f} M records/s, {102400 / best / 1e6:.0f} MB/s of values)")


if __name__ == "__main__":
    main()
