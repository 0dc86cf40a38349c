"""The stability window after a cutover: watch the public URL, judge it stable or not.

Every ``interval`` seconds (a round), ``health_path`` and then each of ``paths`` is
requested on the PUBLIC url — through the switch, as users reach it — on a new connection
each time (no keep-alive: a request must not stick to a backend the switch left). A sample
fails on a connection error, a timeout, an HTTP status >= 500, and for ``health_path`` also
on anything but ``200`` with the JSON body ``{"status": "pass"}``. Redirects are not
followed (a redirect to the login page is an answer).

Verdict ``unstable`` as soon as (with ``stop_early``; otherwise judged at the end):

* ``max_consecutive_failures`` (3) samples in a row failed;
* the error rate over at least ``min_samples`` (5) samples exceeds ``max_error_rate``;
* the p95 latency over at least ``p95_min_samples`` (10) samples exceeds ``max_p95_ms``.

At the end of the window the same rules are applied to whatever was sampled (a short window
is judged on its few samples), and the window is also unstable when no sample was taken or
every sample of the last round failed (the site must be up when the window closes).
Latencies are of every sample, failed ones included (a timeout counts its full wait).

The window is respected: rounds are scheduled at ``k * interval`` from the start (a round that
runs late is not caught up with a burst), the last one at or before ``window``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from liftgate.errors import UsageError

__all__ = ["WatchReport", "percentile", "watch"]

MAX_ENTRIES = 2000


@dataclass(frozen=True)
class WatchReport:
    url: str
    window: float
    interval: float
    samples: int
    failures: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    verdict: str  # "stable" | "unstable"
    reason: str
    stopped_early: bool
    started_at: str  # ISO 8601, UTC
    ended_at: str
    seconds: float
    thresholds: dict[str, float] = field(default_factory=dict)
    # compact samples: {"t": offset s, "path", "status" or "error", "ms"}; the first
    # MAX_ENTRIES, ``entries_dropped`` counts the rest
    entries: tuple[dict[str, Any], ...] = ()
    entries_dropped: int = 0

    @property
    def stable(self) -> bool:
        return self.verdict == "stable"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["entries"] = list(self.entries)
        return out


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (``pct`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _join(url: str, path: str) -> str:
    return url.rstrip("/") + "/" + path.lstrip("/")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class _Sample:
    t: float
    path: str
    ok: bool
    ms: float
    status: int | None
    error: str | None

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": round(self.t, 3), "path": self.path, "ms": round(self.ms, 1)}
        if self.status is not None:
            out["status"] = self.status
        if self.error is not None:
            out["error"] = self.error
        return out


def _probe(
    client: httpx.Client, url: str, path: str, *, health: bool
) -> tuple[bool, int | None, str | None]:
    try:
        response = client.get(_join(url, path))
    except httpx.TimeoutException as exc:
        return False, None, f"timeout ({type(exc).__name__})"
    except httpx.HTTPError as exc:
        text = str(exc).strip().splitlines()
        return False, None, f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
    status = response.status_code
    if status >= 500:
        return False, status, f"HTTP {status}"
    if health:
        if status != 200:
            return False, status, f"HTTP {status} (health needs 200)"
        try:
            body = response.json()
        except ValueError:
            return False, status, "health answer is not JSON"
        if not (isinstance(body, dict) and body.get("status") == "pass"):
            seen = body.get("status") if isinstance(body, dict) else body
            return False, status, f"health status {seen!r}"[:200]
    return True, status, None


class _Judge:
    def __init__(
        self,
        max_error_rate: float,
        max_p95_ms: float,
        min_samples: int,
        p95_min_samples: int,
        max_consecutive: int,
    ) -> None:
        self.max_error_rate = max_error_rate
        self.max_p95_ms = max_p95_ms
        self.min_samples = min_samples
        self.p95_min_samples = p95_min_samples
        self.max_consecutive = max_consecutive
        self.latencies: list[float] = []
        self.failures = 0
        self.consecutive = 0
        self.last_error = ""

    def add(self, sample: _Sample) -> None:
        self.latencies.append(sample.ms)
        if sample.ok:
            self.consecutive = 0
        else:
            self.failures += 1
            self.consecutive += 1
            self.last_error = f"{sample.path}: {sample.error}"

    @property
    def samples(self) -> int:
        return len(self.latencies)

    def error_rate(self) -> float:
        return self.failures / self.samples if self.samples else 0.0

    def problem(self, *, final: bool) -> str | None:
        n = self.samples
        if self.consecutive >= self.max_consecutive:
            return f"{self.consecutive} consecutive failures (last: {self.last_error})"
        if n and (final or n >= self.min_samples) and self.error_rate() > self.max_error_rate:
            return (
                f"error rate {self.error_rate():.1%} over {n} samples exceeds "
                f"{self.max_error_rate:.1%} (last failure: {self.last_error})"
            )
        p95 = percentile(self.latencies, 95)
        if p95 is not None and (final or n >= self.p95_min_samples) and p95 > self.max_p95_ms:
            return f"p95 latency {p95:.0f} ms over {n} samples exceeds {self.max_p95_ms:.0f} ms"
        return None


def watch(
    url: str,
    *,
    window: float,
    interval: float,
    max_error_rate: float,
    max_p95_ms: float,
    health_path: str = "/web/health",
    paths: Sequence[str] = (),
    stop_early: bool = True,
    timeout: float = 5.0,
    min_samples: int = 5,
    p95_min_samples: int = 10,
    max_consecutive_failures: int = 3,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    transport: httpx.BaseTransport | None = None,
) -> WatchReport:
    """Watch ``url`` for ``window`` seconds; see the module docstring for the rules.

    ``clock``/``sleep`` (and an httpx ``transport``) can be replaced in tests; latencies are
    measured with ``clock``.
    """
    if window <= 0 or interval <= 0:
        raise UsageError("the stability window and its interval must be positive")
    if not 0 <= max_error_rate <= 1:
        raise UsageError("max_error_rate is a fraction between 0 and 1")
    judge = _Judge(
        max_error_rate, max_p95_ms, max(1, min_samples), max(1, p95_min_samples),
        max(1, max_consecutive_failures),
    )  # fmt: skip
    entries: list[dict[str, Any]] = []
    dropped = 0
    reason: str | None = None
    stopped_early = False
    last_round_ok: list[bool] = []
    started_at = _now_iso()
    start = clock()
    kwargs: dict[str, Any] = {
        "timeout": timeout,
        "follow_redirects": False,
        "limits": httpx.Limits(max_keepalive_connections=0),
        "headers": {"Connection": "close", "User-Agent": "liftgate-watch"},
    }
    if transport is not None:
        kwargs["transport"] = transport
    targets = [(health_path, True), *((p, False) for p in paths)]
    with httpx.Client(**kwargs) as client:
        k = 0
        while reason is None:
            due = start + k * interval
            if due - start > window + 1e-9:
                break
            now = clock()
            if now < due:
                sleep(due - now)
            round_ok: list[bool] = []
            for path, is_health in targets:
                t0 = clock()
                ok, status, error = _probe(client, url, path, health=is_health)
                sample = _Sample(t0 - start, path, ok, (clock() - t0) * 1000.0, status, error)
                judge.add(sample)
                round_ok.append(ok)
                if len(entries) < MAX_ENTRIES:
                    entries.append(sample.entry())
                else:
                    dropped += 1
                if stop_early:
                    reason = judge.problem(final=False)
                    if reason is not None:
                        stopped_early = True
                        break
            last_round_ok = round_ok
            # next round: the next slot not yet in the past (no catch-up burst)
            k += 1
            elapsed = clock() - start
            if k * interval < elapsed:
                k = math.ceil(elapsed / interval)
    if reason is None:
        if judge.samples == 0:
            reason = "no sample was taken"
        else:
            reason = judge.problem(final=True)
            if reason is None and last_round_ok and not any(last_round_ok):
                reason = f"every request of the last round failed (last: {judge.last_error})"
    end = clock()
    latencies = judge.latencies
    verdict = "unstable" if reason is not None else "stable"
    return WatchReport(
        url=url,
        window=window,
        interval=interval,
        samples=judge.samples,
        failures=judge.failures,
        error_rate=round(judge.error_rate(), 4),
        p50_ms=_round(percentile(latencies, 50)),
        p95_ms=_round(percentile(latencies, 95)),
        max_ms=_round(max(latencies) if latencies else None),
        verdict=verdict,
        reason=reason
        or (
            f"{judge.samples} samples over {end - start:.1f} s, {judge.failures} failed, "
            "within the thresholds"
        ),
        stopped_early=stopped_early,
        started_at=started_at,
        ended_at=_now_iso(),
        seconds=round(end - start, 3),
        thresholds={
            "max_error_rate": max_error_rate,
            "max_p95_ms": max_p95_ms,
            "min_samples": float(min_samples),
            "p95_min_samples": float(p95_min_samples),
            "max_consecutive_failures": float(max_consecutive_failures),
            "timeout": timeout,
        },
        entries=tuple(entries),
        entries_dropped=dropped,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
