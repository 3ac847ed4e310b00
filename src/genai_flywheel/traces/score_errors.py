"""What the ``error`` column of a score row (:data:`genai_flywheel.traces.schema.SCORE_SCHEMA`) says that
its readers act on.

The score stage writes these texts (:mod:`genai_flywheel.scoring.budget`); the write-back leaves such rows
out and the aggregation counts them apart from judge failures. They live beside the schema, in the package
every stage reads, rather than in scoring (which reads traces: the two would import each other), and in a
module of their own because ``schema.py`` imports pyarrow, which importing the scoring package must not.
"""

# Error text prefix of a score the per-run judge budget did not allow (the call was never made).
BUDGET_SKIP_PREFIX = "skipped:"
