"""The segment metrics table's names, as the segments package uses them: defined in
:mod:`genai_flywheel.metrics.segment_schema` (beside the metrics store that writes the table)."""

from genai_flywheel.metrics.segment_schema import EXAMPLES, MISSING, NEW, OTHER, SEGMENT_FILE, segments_schema

__all__ = ["EXAMPLES", "MISSING", "NEW", "OTHER", "SEGMENT_FILE", "segments_schema"]
