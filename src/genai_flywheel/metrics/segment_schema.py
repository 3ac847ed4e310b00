"""The segment metrics table: a contract between the aggregate stage, the store, alert rules and the UIs.

One row per (dimension, segment, metric) of one application's interval, stored beside the interval's
metrics partition as ``segments.parquet`` (:class:`genai_flywheel.metrics.store.MetricsStore`). Columns:

==================  ===================  ================================================================
column              type                 meaning
==================  ===================  ================================================================
app                 string, required     configured application name
interval_start      timestamp[ms, UTC]   the interval, as in the metrics partition
interval_end        timestamp[ms, UTC]
dimension           string, required     the dimension's configured name (``segments.dimensions[].name``)
segment             string, required     the segment's stable key: the tag/metadata/model value, a query
                                         cluster's id (``c-<hash>``), or one of :data:`OTHER`,
                                         :data:`MISSING`, :data:`NEW`
label               string               what a person reads: the value, or a cluster's top terms
metric              string, required     see below
value               float64              null when the segment holds no data for it
n                   int64, required      the sample size behind the value
ci_low, ci_high     float64              95 % confidence interval, as for the app-level metrics
examples            list<string>         on the ``volume`` row only: up to five trace ids of the segment
                                         in the interval (the smallest ids: the same on a re-run)
==================  ===================  ================================================================

Segment metrics (every one carries ``n`` and, where it is an estimate, a CI, like the app-level ones):

``volume``                           traces of the segment (n = volume; no CI)
``share``                            volume / the interval's volume (n = interval volume; Wilson CI)
``error_rate``                       share of ERROR traces (Wilson CI)
``latency_p50_ms``, ``latency_p95_ms``  end-to-end latency percentiles (order-statistic CI)
``feedback.<name>.positive_rate``    share of positive HUMAN feedback, the latest per trace (Wilson CI)
``scorer.<name>.pass_rate``          weighted share of passes of the sampled traces (Wilson CI, Kish n)
``scorer.<name>.mean``               weighted mean score of the sampled traces (t CI, Kish n)

Rows are sorted by (dimension, segment, metric).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

#: The pooled remainder of a dimension beyond its top-K segments.
OTHER = "other"
#: Traces that lack the dimension's key (no such tag or metadata, no model, a question without terms).
MISSING = "(none)"
#: Questions no cluster of the reference model takes: new patterns.
NEW = "new"
#: Trace ids kept per segment as examples to open in MLflow.
EXAMPLES = 5

SEGMENT_FILE = "segments.parquet"


@functools.cache
def segments_schema() -> pa.Schema:
    """The Arrow schema of a segment metrics table."""
    import pyarrow as pa

    ts = pa.timestamp("ms", tz="UTC")
    return pa.schema(
        [
            pa.field("app", pa.string(), nullable=False),
            pa.field("interval_start", ts, nullable=False),
            pa.field("interval_end", ts, nullable=False),
            pa.field("dimension", pa.string(), nullable=False),
            pa.field("segment", pa.string(), nullable=False),
            pa.field("label", pa.string()),
            pa.field("metric", pa.string(), nullable=False),
            pa.field("value", pa.float64()),
            pa.field("n", pa.int64(), nullable=False),
            pa.field("ci_low", pa.float64()),
            pa.field("ci_high", pa.float64()),
            pa.field("examples", pa.list_(pa.string())),
        ]
    )
