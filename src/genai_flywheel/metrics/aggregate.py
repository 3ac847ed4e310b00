"""Aggregate one interval's traces and scores into a long metrics table: one row per metric.

Schema (:data:`METRICS_SCHEMA`): ``app``, ``interval_start``, ``interval_end`` (timestamp[ms, UTC]),
``metric``, ``value`` (float64, null when the window holds no data for it), ``n`` (int64, the sample size
behind the value), ``ci_low``/``ci_high`` (float64, 95 % confidence interval; null where not meaningful or
when the sample is too small). Rows are sorted by ``metric``.

Metric names are a public contract (alert rules and charts use them):

====================================  ====================================================================
metric                                meaning (``n``; CI)
====================================  ====================================================================
``volume``                            rows of ``traces``: the validated traces of the window; quarantined
                                      rows are not included (n = volume; no CI)
``quarantined``                       rows the validate stage quarantined (n = volume + quarantined)
``error_rate``                        share of traces with status ERROR (n = volume; Wilson CI)
``error_rate.<error_type>``           share of traces that failed with that exception type; ``unknown``
                                      when an ERROR trace has none (n = volume; Wilson CI). The type is in
                                      the spans: exact when every failed trace was read in full (an
                                      ``errors`` stratum at rate 1), else a Horvitz-Thompson estimate over
                                      the sampled failures with a normal CI
``latency_p50_ms`` .. ``p90``,        end-to-end percentiles of ``execution_time_ms`` (n = traces with a
``p95``, ``p99``                      latency; distribution-free order-statistic CI, null when n is too
                                      small: p50 needs n >= 6, p90 36, p95 72, p99 368)
``latency_mean_ms``                   mean latency (Student t CI)
``span.<SPAN_TYPE>.latency_<p>_ms``   p50/p90/p95/p99 of the per-trace summed duration of spans of that
                                      type, e.g. ``span.LLM.latency_p95_ms``; a null type is ``UNKNOWN``
                                      (n = traces read in full having that span type). Exact with an
                                      order-statistic CI when every trace was read in full; otherwise a
                                      weighted percentile of the sampled traces (weights 1 / pi) with
                                      Woodruff's CI on the Kish effective n
``tokens_input``, ``tokens_output``   token sums (n = traces reporting the count; no CI)
``tokens_total``                      sum of ``total_tokens``, or input + output where it is null
``tokens_per_trace``                  mean total tokens over traces with token usage (t CI)
``cost_usd``                          sum over priced traces of tokens / 1000 x price by ``model``
                                      (n = priced traces; no CI)
``cost_unpriced_traces``              traces with token usage whose model has no price, or whose usage
                                      is not split into input/output (n = traces with usage)
``feedback.<name>.positive_rate``     share of positive HUMAN feedback ``<name>`` (JSON boolean, or
                                      "positive"/"negative"); the latest assessment per trace counts
                                      (n = traces with such feedback; Wilson CI)
``sampled``                           distinct traces in the score table (selected for scoring)
``scorer.<name>.mean``                mean of ``numeric``, weighted by the inclusion weight (ratio
                                      estimator; n = rows with a number; t CI on the Kish effective n)
``scorer.<name>.pass_rate``           weighted share of ``passed`` (n = rows with pass/fail; Wilson CI on
                                      the Kish effective n)
``scorer.<name>.n``                   traces the scorer scored (rows without ``error``)
``scorer.<name>.errors``              rows not scored, with a reason in ``error`` (n = all rows of it)
``judge.error_rate``                  share of LLM-judge calls made that failed (Wilson CI): a judge outage
``judge.skipped_budget``              LLM-judge scores not computed because the per-run budget was spent
====================================  ====================================================================

Point-estimate metrics (counts and sums) never carry a CI; :func:`is_estimate` tells them apart from the
statistical estimates, for which a null CI means "too few samples" (alert rules rely on that).

The result does not depend on the order in which slices, batches or shards arrive (sums are exact, values
are sorted before a mean or a percentile): the same traces and scores give the same bytes.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from genai_flywheel.exceptions import DataContractError
from genai_flywheel.memory import Column
from genai_flywheel.metric_names import is_estimate  # noqa: F401  (re-exported: part of this module's API)
from genai_flywheel.metrics import stats
from genai_flywheel.metrics.intervals import to_utc
from genai_flywheel.metrics.scores import NO_VERDICT, SCORE_COLUMNS

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from genai_flywheel.config import Price
    from genai_flywheel.metrics.scores import ScoreArrays

log = logging.getLogger(__name__)

PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 0.50), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99))

TRACE_COLUMNS = (
    "trace_id",
    "app",
    "status",
    "execution_time_ms",
    "error_type",
    "spans",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "model",
    "assessments",
)
#: What :meth:`WindowAccumulator.add_traces` reads: all on the trace info (pass one).
INFO_TRACE_COLUMNS = tuple(c for c in TRACE_COLUMNS if c not in ("error_type", "spans"))
#: What :meth:`WindowAccumulator.add_fetched` reads of a trace read in full.
FETCHED_COLUMNS = ("trace_id", "status", "error_type", "spans", "weight")


@functools.cache
def metrics_schema() -> pa.Schema:
    """The Arrow schema of a metrics table (also importable as ``METRICS_SCHEMA``)."""
    import pyarrow as pa

    ts = pa.timestamp("ms", tz="UTC")
    return pa.schema(
        [
            pa.field("app", pa.string(), nullable=False),
            pa.field("interval_start", ts, nullable=False),
            pa.field("interval_end", ts, nullable=False),
            pa.field("metric", pa.string(), nullable=False),
            pa.field("value", pa.float64()),
            pa.field("n", pa.int64(), nullable=False),
            pa.field("ci_low", pa.float64()),
            pa.field("ci_high", pa.float64()),
        ]
    )


def __getattr__(name: str) -> Any:
    # The lint rules ban pyarrow at module level (slow to import; DAG files are parsed often), so the
    # schema constant is built on first access.
    if name == "METRICS_SCHEMA":
        return metrics_schema()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class _Row:
    metric: str
    value: float | None
    n: int
    ci_low: float | None = None
    ci_high: float | None = None


def _finite(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _require_columns(table: pa.Table, columns: tuple[str, ...], label: str, produced_by: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise DataContractError(
            f"the {label} table lacks column(s) {missing}; pass the output of the {produced_by} stage"
        )


def _float_column(table: pa.Table, name: str) -> np.ndarray:
    """A numeric column as float64 with NaN for null."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    col = pc.cast(table.column(name), pa.float64())
    return np.asarray(col.to_numpy(), dtype=np.float64) if len(col) else np.empty(0, dtype=np.float64)


def _distribution_rows(prefix: str, values: np.ndarray, with_mean: bool) -> list[_Row]:
    """Percentile (and mean) rows of ``values``, a float64 array the caller gives up: it is reordered and
    then sorted in place, never copied (a million-trace window's latencies are 8 MB)."""
    n = int(values.size)
    estimates = stats.quantiles(values, [q for _, q in PERCENTILES], overwrite=True)
    values.sort()  # the order statistics and the mean read sorted values, whatever order the batches came in
    rows = []
    for (label, q), estimate in zip(PERCENTILES, estimates, strict=True):
        low, high = stats.quantile_ci(values, q)
        rows.append(_Row(f"{prefix}_{label}_ms", _finite(estimate), n, low, high))
    if with_mean:
        mean, (low, high) = stats.mean_ci(values)
        rows.append(_Row(f"{prefix}_mean_ms", _finite(mean), n, low, high))
    return rows


def _proportion_row(metric: str, successes: float, n: float, n_reported: int) -> _Row:
    if n <= 0:
        return _Row(metric, None, n_reported)
    low, high = stats.wilson_interval(successes, n)
    return _Row(metric, successes / n, n_reported, low, high)


def _span_durations(traces: pa.Table) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per span type: (row index, that row's summed duration of spans of the type) for ``traces``' rows.

    A trace can hold several spans of one type (e.g. two retriever calls): its time in that type is their
    sum, so a percentile is over traces, not over spans. A null span type is ``UNKNOWN``.
    """
    import numpy as np
    import pyarrow.compute as pc

    spans = traces.column("spans").combine_chunks()
    flat = pc.list_flatten(spans)
    if len(flat) == 0:
        return {}
    parents = np.asarray(pc.list_parent_indices(spans).to_numpy(), dtype=np.int64)
    encoded = pc.dictionary_encode(pc.fill_null(pc.struct_field(flat, "span_type"), "UNKNOWN"))
    codes = np.asarray(encoded.indices.to_numpy(), dtype=np.int64)
    durations = np.asarray(pc.struct_field(flat, "duration_ms").to_numpy(zero_copy_only=False), dtype=float)
    valid = ~np.isnan(durations)
    out = {}
    for code, span_type in enumerate(encoded.dictionary.to_pylist()):
        mask = valid & (codes == code)
        if not mask.any():
            continue
        per_trace = np.bincount(parents[mask], weights=durations[mask], minlength=traces.num_rows)
        present = np.bincount(parents[mask], minlength=traces.num_rows) > 0
        out[span_type] = (np.flatnonzero(present), per_trace[present])
    return out


def _estimated_distribution_rows(prefix: str, values: np.ndarray, weights: np.ndarray) -> list[_Row]:
    rows = []
    found = stats.weighted_quantiles_ci(values, weights, [q for _, q in PERCENTILES])
    for (label, _), (value, (low, high)) in zip(PERCENTILES, found, strict=True):
        rows.append(_Row(f"{prefix}_{label}_ms", _finite(value), int(values.size), low, high))
    return rows


def _prices(models: list[str | None], prices: Mapping[str, Price]) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    lookup = {m: prices.get(m) if m else None for m in set(models)}
    in_price = np.array([p.input_per_1k if (p := lookup[m]) is not None else np.nan for m in models], float)
    out_price = np.array([p.output_per_1k if (p := lookup[m]) is not None else np.nan for m in models], float)
    return in_price, out_price


class WindowAccumulator:
    """The metrics of one application's window, accumulated batch by batch.

    ``add_traces`` takes the window's validated traces (pass-one infos suffice), batch after batch; every
    metric computed from them is exact. What only a full read of a trace tells (span timings, the exception
    type of a failure) comes from ``add_fetched``: the sampled traces read in full, each with its inclusion
    weight ``1 / pi``. When every trace of the window was read in full those metrics are exact too (the same
    values a full read gives); otherwise they are estimates with a CI (see :func:`aggregate_window`).

    Memory: two numbers per trace (latency and tokens, 8 bytes: float32 while every value is a float32
    exactly, as whole milliseconds and token counts are; float64 from the first that is not) so the
    quantiles and means stay exact, plus a few per fetched trace; never the traces themselves. The token
    and cost sums are :class:`~genai_flywheel.metrics.stats.ExactSum`: a few numbers a window.
    """

    def __init__(self, *, app: str, prices: Mapping[str, Price], capacity: int | None = None) -> None:
        import numpy as np

        self.app = app
        self.prices = prices
        self.volume = 0
        self.errors = 0
        # ``capacity``: the window's trace count when known, so these columns are allocated once.
        self._latency = Column(np.float32, capacity, widen_to=np.float64)
        self._tokens_input = stats.ExactSum()
        self._tokens_output = stats.ExactSum()
        self._tokens = Column(np.float32, capacity, widen_to=np.float64)  # per trace with token usage
        self._costs = stats.ExactSum()  # per priced trace
        self._unpriced: Counter[str] = Counter()
        self._feedback_positive: Counter[str] = Counter()
        self._feedback_counted: Counter[str] = Counter()
        self.fetched = 0
        self._fetched_errors = 0
        self._error_types: dict[str, list[float]] = {}
        self._spans: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}

    def add_traces(self, traces: pa.Table | pa.RecordBatch) -> None:
        """Count one batch of the window's validated traces (``TRACE_COLUMNS`` of the info schema)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(traces, pa.RecordBatch):
            traces = pa.Table.from_batches([traces])
        _require_columns(traces, INFO_TRACE_COLUMNS, "trace", "extract/validate")
        if traces.num_rows == 0:
            return
        others = sorted(set(pc.unique(traces.column("app")).to_pylist()) - {self.app})
        if others:
            raise DataContractError(
                f"the trace table holds rows of app(s) {others} but metrics are aggregated for {self.app!r}; "
                "pass only this application's traces"
            )
        self.volume += traces.num_rows
        is_error = pc.fill_null(pc.equal(pc.utf8_upper(traces.column("status")), "ERROR"), False)
        self.errors += int(pc.sum(is_error).as_py() or 0)
        latency = _float_column(traces, "execution_time_ms")
        self._latency.append(latency[~np.isnan(latency)])
        self._add_usage(traces)
        positives, counted = _feedback_counts(traces)
        self._feedback_positive.update(positives)
        self._feedback_counted.update(counted)

    def _add_usage(self, traces: pa.Table) -> None:
        """Token usage and cost of one batch, kept as what the metrics read (see :meth:`_token_and_cost_rows`)."""
        import numpy as np

        inp = _float_column(traces, "input_tokens")
        out = _float_column(traces, "output_tokens")
        total = _float_column(traces, "total_tokens")
        models = traces.column("model").to_pylist()
        in_price, out_price = _prices(models, self.prices)
        has_in, has_out = ~np.isnan(inp), ~np.isnan(out)
        split = has_in | has_out
        # A trace's tokens: its total, else input + output when it reports either.
        per_trace = np.where(~np.isnan(total), total, np.where(split, np.nan_to_num(inp) + np.nan_to_num(out), np.nan))
        has_usage = ~np.isnan(per_trace)
        # Traces without token usage cost nothing and are neither priced nor unpriced; a bare total cannot be
        # priced because input and output tokens have different prices.
        priced = has_usage & split & ~np.isnan(in_price)
        self._unpriced.update(m or "<no model>" for m, flag in zip(models, has_usage & ~priced, strict=True) if flag)
        self._tokens_input.add(inp[has_in])
        self._tokens_output.add(out[has_out])
        self._tokens.append(per_trace[has_usage])
        inp, out = np.nan_to_num(inp[priced]), np.nan_to_num(out[priced])
        self._costs.add(inp / 1000.0 * in_price[priced] + out / 1000.0 * out_price[priced])

    def add_fetched(self, fetched: pa.Table | pa.RecordBatch) -> None:
        """Add one batch of traces read in full: ``trace_id``, ``status``, ``error_type``, ``spans`` and
        ``weight`` (1 / inclusion probability; 1.0 for a trace every read includes)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(fetched, pa.RecordBatch):
            fetched = pa.Table.from_batches([fetched])
        _require_columns(fetched, FETCHED_COLUMNS, "fetched trace", "score")
        if fetched.num_rows == 0:
            return
        weight = _float_column(fetched, "weight")
        if not (np.isfinite(weight) & (weight >= 1.0)).all():
            raise DataContractError(
                f"fetched traces carry inclusion weights {sorted(set(weight.tolist()))[:5]}; a weight is "
                "1 / pi >= 1: pass the score stage's fetched files"
            )
        self.fetched += fetched.num_rows
        is_error = pc.fill_null(pc.equal(pc.utf8_upper(fetched.column("status")), "ERROR"), False).to_numpy(
            zero_copy_only=False
        )
        self._fetched_errors += int(is_error.sum())
        types = fetched.column("error_type").to_pylist()
        for i in np.flatnonzero(is_error).tolist():
            self._error_types.setdefault(types[i] or "unknown", []).append(float(weight[i]))
        for span_type, (rows, per_trace) in _span_durations(fetched).items():
            self._spans.setdefault(span_type, []).append((per_trace, weight[rows]))

    @property
    def complete(self) -> bool:
        """Whether every trace of the window was read in full (the span and error-type metrics are exact)."""
        return self.fetched == self.volume

    def rows(self, scores: pa.Table | ScoreArrays, quarantined: int) -> list[_Row]:
        """Every metric row of the window, given its scores and quarantined count."""
        import numpy as np

        volume = self.volume
        rows = [
            _Row("volume", float(volume), volume),
            _Row("quarantined", float(quarantined), volume + quarantined),
            _proportion_row("error_rate", self.errors, volume, volume),
        ]
        rows += self._error_type_rows()
        rows += _distribution_rows("latency", self._latency.values_as(np.float64), with_mean=True)
        rows += self._span_rows()
        rows += self._token_and_cost_rows()
        rows += [
            _proportion_row(f"feedback.{name}.positive_rate", self._feedback_positive[name], n, n)
            for name, n in self._feedback_counted.items()
        ]
        rows += _scorer_rows(scores)
        return rows

    def _error_type_rows(self) -> list[_Row]:
        import numpy as np

        volume = self.volume
        if not self.errors:
            return []
        exact = self._fetched_errors == self.errors
        rows = []
        for error_type, weights in self._error_types.items():
            w = np.asarray(weights, dtype=float)
            # Horvitz-Thompson: the estimated count is the sum of the weights; its variance under Poisson
            # sampling is the sum of (1 - pi) / pi^2 = w^2 - w. Zero when every failed trace was read.
            count, variance = stats.fsum(w), stats.fsum(w * w - w)
            if exact and variance == 0.0:
                rows.append(_proportion_row(f"error_rate.{error_type}", count, volume, volume))
                continue
            rate = count / volume
            half = stats.normal_ppf(1.0 - (1.0 - stats.CONFIDENCE) / 2.0) * math.sqrt(variance) / volume
            rows.append(_Row(f"error_rate.{error_type}", rate, volume, max(0.0, rate - half), min(1.0, rate + half)))
        return rows

    def _span_rows(self) -> list[_Row]:
        import numpy as np

        rows: list[_Row] = []
        for span_type in sorted(self._spans):
            values = np.concatenate([v for v, _ in self._spans[span_type]])
            weights = np.concatenate([w for _, w in self._spans[span_type]])
            order = np.lexsort((weights, values))
            values, weights = values[order], weights[order]
            prefix = f"span.{span_type}.latency"
            if self.complete:
                rows.extend(_distribution_rows(prefix, values, with_mean=False))
            else:
                rows.extend(_estimated_distribution_rows(prefix, values, weights))
        return rows

    def _token_and_cost_rows(self) -> list[_Row]:
        import numpy as np

        # Sorted, so a mean over floats does not depend on the order the batches came in.
        per_trace = self._tokens.values_as(np.float64)
        per_trace.sort()
        tokens_mean, (low, high) = stats.mean_ci(per_trace)
        rows = [
            _Row("tokens_input", self._tokens_input.value(), self._tokens_input.count),
            _Row("tokens_output", self._tokens_output.value(), self._tokens_output.count),
            _Row("tokens_total", stats.fsum(per_trace), int(per_trace.size)),
            _Row("tokens_per_trace", _finite(tokens_mean), int(per_trace.size), low, high),
        ]
        usage = int(per_trace.size)
        unpriced = self._unpriced
        if unpriced:
            log.warning(
                "app %s: %d trace(s) with token usage have no price (models: %s); add the models under "
                "'prices:' of the application in flywheel.yaml, or make the app report input/output tokens "
                "and a 'model' tag on its traces",
                self.app,
                sum(unpriced.values()),
                ", ".join(sorted(unpriced)),
            )
        rows.append(_Row("cost_usd", self._costs.value(), self._costs.count))
        rows.append(_Row("cost_unpriced_traces", float(sum(unpriced.values())), usage))
        return rows


def feedback_polarity(raw: str | None) -> bool | None:
    """A feedback value (JSON text) as positive/negative: JSON booleans and the strings "positive" and
    "negative" (any case); ``None`` for anything else."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        value = raw  # a bare word such as positive that was stored without JSON quoting
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("positive", "negative"):
            return word == "positive"
    return None


def latest_feedback(traces: pa.Table) -> dict[tuple[int, str], bool]:
    """Per (row of ``traces``, feedback name): the polarity of the row's latest HUMAN feedback of that name,
    for feedback whose value has one (see :func:`feedback_polarity`)."""
    import pyarrow.compute as pc

    assessments = traces.column("assessments").combine_chunks()
    flat = pc.list_flatten(assessments)
    if len(flat) == 0:
        return {}
    parents = pc.list_parent_indices(assessments)

    def field(name: str) -> Any:
        return pc.struct_field(flat, name)

    keep = pc.and_(
        pc.and_(
            pc.fill_null(pc.equal(pc.utf8_lower(field("kind")), "feedback"), False),
            pc.fill_null(pc.equal(pc.utf8_upper(field("source_type")), "HUMAN"), False),
        ),
        pc.is_null(field("error")),
    )
    selected = zip(
        pc.filter(parents, keep).to_pylist(),
        pc.filter(field("name"), keep).to_pylist(),
        pc.filter(field("create_time_ms"), keep).to_pylist(),
        pc.filter(field("assessment_id"), keep).to_pylist(),
        pc.filter(field("value"), keep).to_pylist(),
        strict=True,
    )
    latest: dict[tuple[int, str], tuple[int, str, str | None]] = {}
    for trace_idx, name, created, assessment_id, value in selected:
        if not name:
            continue
        # Latest by creation time; the assessment id breaks ties so the choice is deterministic.
        key, candidate = (
            (trace_idx, name),
            (created if created is not None else -1, assessment_id or "", value),
        )
        if key not in latest or candidate[:2] > latest[key][:2]:
            latest[key] = candidate
    out = {}
    for key, (_, _, value) in latest.items():
        polarity = feedback_polarity(value)
        if polarity is not None:
            out[key] = polarity
    return out


def _feedback_counts(traces: pa.Table) -> tuple[Counter[str], Counter[str]]:
    """Per feedback name: traces whose latest HUMAN feedback is positive, and traces with such feedback.

    A trace's assessments all sit on its row, so batches of whole rows can be counted one by one.
    """
    positives: Counter[str] = Counter()
    counted: Counter[str] = Counter()
    for (_, name), polarity in latest_feedback(traces).items():
        counted[name] += 1
        positives[name] += int(polarity)
    return positives, counted


def _scorer_rows(scores: pa.Table | ScoreArrays, where: np.ndarray | None = None) -> list[_Row]:
    """``sampled`` and the ``scorer.<name>.*`` and ``judge.*`` rows of a score table, each (trace, scorer)
    counted once (see :mod:`genai_flywheel.metrics.scores`); with ``where``, of the entries where it holds
    (a segment's), without copying the arrays."""
    import numpy as np

    from genai_flywheel.metrics.scores import ScoreArrays

    arrays = scores if isinstance(scores, ScoreArrays) else ScoreArrays.of(scores)
    entries = np.ones(len(arrays), dtype=bool) if where is None else where
    if not entries.any():
        return [_Row("sampled", 0.0, 0)]
    # Distinct traces by marking their codes (no sorted copy of the entries' codes, as np.unique makes).
    seen = np.zeros(len(arrays.trace_ids), dtype=bool)
    seen[arrays.trace[entries]] = True
    sampled = int(seen.sum())
    del seen
    rows = [_Row("sampled", float(sampled), sampled)]
    numeric, passed, weight, errored = arrays.numeric, arrays.passed, arrays.weight, arrays.errored
    for code, scorer in sorted(enumerate(arrays.names), key=lambda item: item[1]):
        # The scorer's entries by position, then its values gathered: one mask of the whole score table at
        # a time (a million entries' masks are a megabyte each), the rest the size of the scorer's share.
        mine = arrays.scorer == code
        mine &= entries
        at = np.flatnonzero(mine)
        del mine
        if not at.size:
            continue
        failed = errored[at]
        scored = at[~failed]
        values = numeric[scored]
        finite = np.isfinite(values)
        # Weights may be held as float32 (exact values): every sum below is taken in float64.
        mean, (low, high), _ = stats.weighted_mean_ci(values[finite], weight[scored[finite]].astype(np.float64))
        rows.append(_Row(f"scorer.{scorer}.mean", _finite(mean), int(finite.sum()), low, high))
        del values, finite
        verdicts = passed[scored]
        has_pass = verdicts != NO_VERDICT
        if has_pass.any():
            w = weight[scored[has_pass]].astype(np.float64)
            rate = stats.fsum(verdicts[has_pass] * w) / stats.fsum(w)
            n_eff = stats.kish_effective_n(w)
            low, high = stats.wilson_interval(rate * n_eff, n_eff)
            rows.append(_Row(f"scorer.{scorer}.pass_rate", rate, int(has_pass.sum()), low, high))
        else:
            rows.append(_Row(f"scorer.{scorer}.pass_rate", None, 0))
        rows.append(_Row(f"scorer.{scorer}.n", float(scored.size), int(scored.size)))
        rows.append(_Row(f"scorer.{scorer}.errors", float(failed.sum()), int(at.size)))
    rows.extend(_judge_rows(arrays, entries))
    return rows


def _judge_rows(arrays: ScoreArrays, entries: np.ndarray) -> list[_Row]:
    """``judge.error_rate`` over the judge calls made (a judge outage is alertable with its CI) and
    ``judge.skipped_budget``, the judge calls the per-run budget did not allow (of the ``entries``)."""
    judge = arrays.judge & entries
    if not judge.any():
        return []
    skipped = judge & arrays.budget_skipped
    attempted = judge & ~skipped
    failed = int((attempted & arrays.errored).sum())
    n = int(attempted.sum())
    return [
        _proportion_row("judge.error_rate", failed, n, n),
        _Row("judge.skipped_budget", float(skipped.sum()), int(judge.sum())),
    ]


def aggregate(
    traces: pa.Table,
    scores: pa.Table,
    *,
    app: str,
    interval_start: datetime,
    interval_end: datetime,
    prices: Mapping[str, Price],
    quarantined: int = 0,
    run_id: str | None = None,
) -> pa.Table:
    """Compute every metric of one application's interval from whole tables: every trace read in full.

    ``traces`` is the (validated) trace table of the window with its span columns, ``scores`` the score
    table of its sample; every metric but the scorers' is then exact. This is the reference computation of
    :func:`aggregate_window`, which the monitor runs on the window's trace infos and its sample.
    """
    import pyarrow as pa

    _require_columns(traces, TRACE_COLUMNS, "trace", "extract/validate")
    fetched = traces.select(["trace_id", "status", "error_type", "spans"])
    fetched = fetched.append_column("weight", pa.array([1.0] * traces.num_rows, pa.float64()))
    return aggregate_window(
        [traces],
        [fetched],
        scores,
        app=app,
        interval_start=interval_start,
        interval_end=interval_end,
        prices=prices,
        quarantined=quarantined,
        run_id=run_id,
    )


def aggregate_window(
    traces: Iterable[pa.Table | pa.RecordBatch],
    fetched: Iterable[pa.Table | pa.RecordBatch],
    scores: pa.Table | ScoreArrays,
    *,
    app: str,
    interval_start: datetime,
    interval_end: datetime,
    prices: Mapping[str, Price],
    quarantined: int = 0,
    run_id: str | None = None,
    extra_rows: Iterable[_Row] = (),
    capacity: int | None = None,
) -> pa.Table:
    """Compute every metric of one application's interval ``[interval_start, interval_end)``, streaming.

    ``traces`` are batches of the window's validated traces (trace infos suffice), ``fetched`` batches of
    the sampled traces read in full (``FETCHED_COLUMNS``), ``scores`` the score table of the sample (or its
    :class:`~genai_flywheel.metrics.scores.ScoreArrays`, as the monitor reads its score files),
    ``prices`` the application's USD-per-1k-token table by model name and ``quarantined`` the number of
    rows the contracts set aside. ``run_id`` only labels log lines: it is not stored, so a re-run produces
    identical bytes. ``extra_rows`` are metric rows computed elsewhere (the segment stage's drift metrics);
    ``capacity`` the number of validated traces when known (Parquet metadata), so that the per-trace
    columns are allocated once.
    Returns a :data:`METRICS_SCHEMA` table sorted by metric (see the module docstring for
    the names). An empty window gives ``volume`` 0 and null estimates, never an error.

    Exact: volume, quarantined, error_rate, latency percentiles and mean, tokens, cost, feedback rates,
    sampled and the scorer counts. From the traces read in full: ``span.*`` percentiles and
    ``error_rate.<type>``, exact when every trace (for error types: every failed trace) was read, else
    estimates over the sample with their inclusion weights (Woodruff's interval for the percentiles, a
    Horvitz-Thompson interval for the error types). The order of the batches does not change the result.
    """
    import pyarrow as pa

    start, end = to_utc(interval_start), to_utc(interval_end)
    if end <= start:
        raise ValueError(f"interval_end {end.isoformat()} must be after interval_start {start.isoformat()}")
    if quarantined < 0:
        raise ValueError(f"quarantined must be a count >= 0, got {quarantined!r}")
    from genai_flywheel.metrics.scores import ScoreArrays

    if not isinstance(scores, ScoreArrays):
        _require_columns(scores, SCORE_COLUMNS, "score", "score")
        scores = ScoreArrays.of(scores)
    acc = WindowAccumulator(app=app, prices=prices, capacity=capacity)
    for batch in traces:
        acc.add_traces(batch)
    for batch in fetched:
        acc.add_fetched(batch)
    rows = acc.rows(scores, quarantined) + list(extra_rows)

    rows.sort(key=lambda r: r.metric)
    names = [r.metric for r in rows]
    dupes = sorted({m for m in names if names.count(m) > 1})
    if dupes:
        # Defensive: every family above is keyed by a set, so this means a new metric family collides.
        raise DataContractError(f"metric name(s) {dupes} computed twice for app {app!r}; rename the source values")
    log.info(
        "app %s interval %s: %d metrics from %d traces (%d read in full) and %d score rows (run %s)",
        app,
        start.isoformat(),
        len(rows),
        acc.volume,
        acc.fetched,
        len(scores),
        run_id or "-",
    )
    count = len(rows)
    schema = metrics_schema()
    return pa.table(
        {
            "app": pa.array([app] * count, pa.string()),
            "interval_start": pa.array([start] * count, schema.field("interval_start").type),
            "interval_end": pa.array([end] * count, schema.field("interval_end").type),
            "metric": pa.array(names, pa.string()),
            "value": pa.array([_finite(r.value) for r in rows], pa.float64()),
            "n": pa.array([r.n for r in rows], pa.int64()),
            "ci_low": pa.array([_finite(r.ci_low) for r in rows], pa.float64()),
            "ci_high": pa.array([_finite(r.ci_high) for r in rows], pa.float64()),
        },
        schema=schema,
    )
