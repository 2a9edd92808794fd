"""`PHC_LOGS=cache,timing,kernels` (comma-separated, or `all`): debug lines on stderr, in the
style of TORCH_LOGS. `cache`: hits, misses, rejected entries; `timing`: milliseconds per stage;
`kernels`: which nest became which kernel (the kernel plan) for each compilation."""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from functools import wraps

TOPICS = ("cache", "timing", "kernels")


def enabled(topic: str) -> bool:
    wanted = {t.strip() for t in os.environ.get("PHC_LOGS", "").split(",") if t.strip()}
    return topic in wanted or "all" in wanted


def log(topic: str, message: str) -> None:
    if enabled(topic):
        for line in message.rstrip("\n").splitlines() or [""]:
            print(f"[phc:{topic}] {line}", file=sys.stderr)


@contextmanager
def timed(stage: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        log("timing", f"{stage}: {(time.perf_counter() - start) * 1000:.1f} ms")


def timed_stage(stage: str):
    """Decorator: the function's time goes to the `timing` log as `stage`."""
    def wrap(fn):
        @wraps(fn)
        def timed_fn(*args, **kwargs):
            with timed(stage):
                return fn(*args, **kwargs)
        return timed_fn
    return wrap
