"""Contract tests of the private MLflow names ``genai_flywheel.mlflow_compat`` relies on, and a scan that no
other module of the project references a private MLflow name.

Each contract test names the private name and what to re-check in ``mlflow_compat`` when it fails: an
MLflow upgrade that renames, re-signs or changes one of them fails here, not in production. The tests that
need a real SQL store are in ``tests/integration/test_mlflow_compat_store.py``.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import inspect
import json
import re
import types
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from unittest import mock

from genai_flywheel import mlflow_compat

ROOT = Path(__file__).resolve().parents[3]
SEAM = ROOT / "src" / "genai_flywheel" / "mlflow_compat.py"
SCANNED = ("src", "plugins", "benchmarks", "dags")
# The benchmark's bulk loader writes MLflow's own tables row for row on purpose (a million traces in minutes);
# tests/integration/test_bulkload.py compares its rows with MLflow's own writes, so an MLflow change that
# breaks it fails there.
EXEMPT = (ROOT / "benchmarks" / "bulkload.py",)

#: MLflow's documented API modules (the Python API reference): names imported from them are public.
PUBLIC_MODULES = frozenset(
    {
        "mlflow",
        "mlflow.client",
        "mlflow.data",
        "mlflow.entities",
        "mlflow.environment_variables",
        "mlflow.exceptions",
        "mlflow.genai",
        "mlflow.genai.datasets",
        "mlflow.genai.judges",
        "mlflow.genai.scorers",
        "mlflow.models",
        "mlflow.pyfunc",
        "mlflow.tracing",
        "mlflow.tracking",
    }
)


def _fail(name: str, what: str) -> str:
    return (
        f"MLflow private name {name} changed: {what}. Re-check genai_flywheel/mlflow_compat.py against this "
        "MLflow version (and the docstring of the function that uses it) before updating this test."
    )


def _params(func: object) -> list[str]:
    return list(inspect.signature(func).parameters)  # type: ignore[arg-type]


# -- one contract per private name ---------------------------------------------------------------------


def test_use_tracking_uri_sets_and_restores_the_global_uri(tmp_path: Path) -> None:
    import mlflow
    from mlflow.tracking._tracking_service import utils

    name = "mlflow.tracking._tracking_service.utils._use_tracking_uri"
    assert callable(getattr(utils, "_use_tracking_uri", None)), _fail(name, "it no longer exists")
    assert _params(utils._use_tracking_uri) == ["uri"], _fail(name, "its signature is not (uri)")
    before = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'scoped.db'}"
    with mlflow_compat.use_tracking_uri(uri):
        assert mlflow.get_tracking_uri() == uri, _fail(name, "it does not set the global tracking URI")
    assert mlflow.get_tracking_uri() == before, _fail(name, "it does not restore the previous URI")


def test_tracing_client_has_a_store_property_and_log_assessment() -> None:
    from mlflow.tracing.client import TracingClient

    name = "mlflow.tracing.client.TracingClient"
    assert isinstance(inspect.getattr_static(TracingClient, "store", None), property), _fail(
        name, "it has no `store` property (sql_store reads it)"
    )
    assert _params(TracingClient.__init__)[:2] == ["self", "tracking_uri"], _fail(name, "__init__(tracking_uri)")
    assert _params(TracingClient.log_assessment)[:3] == ["self", "trace_id", "assessment"], _fail(
        name, "log_assessment(trace_id, assessment) changed"
    )
    assert _params(TracingClient.batch_get_traces)[:2] == ["self", "trace_ids"], _fail(
        name, "batch_get_traces(trace_ids) changed (extract.fetch_traces reads full traces with it)"
    )


def test_sql_store_is_none_for_anything_but_a_sqlalchemy_store() -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    name = "mlflow.store.tracking.sqlalchemy_store.SqlAlchemyStore"
    assert mlflow_compat.sql_store(types.SimpleNamespace(store=object())) is None
    fake = mock.Mock(spec=SqlAlchemyStore)
    assert mlflow_compat.sql_store(types.SimpleNamespace(store=fake)) is fake, _fail(name, "isinstance check")


def test_validate_trace_accessible_takes_a_session_and_a_trace_id() -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    name = "SqlAlchemyStore._validate_trace_accessible"
    method = getattr(SqlAlchemyStore, "_validate_trace_accessible", None)
    assert callable(method), _fail(name, "it no longer exists; see how create_assessment checks access now")
    assert _params(method) == ["self", "session", "trace_id"], _fail(name, "its signature is not (session, trace_id)")
    assert "_validate_trace_accessible" in inspect.getsource(SqlAlchemyStore.create_assessment), _fail(
        name, "create_assessment no longer calls it; insert_feedbacks must do what create_assessment does"
    )


def test_apply_trace_row_lock_locks_the_query_for_update() -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    name = "SqlAlchemyStore._apply_trace_row_lock"
    method = getattr(SqlAlchemyStore, "_apply_trace_row_lock", None)
    assert callable(method), _fail(name, "it no longer exists; see how _get_sql_trace_info(for_update=True) locks")
    assert _params(method) == ["self", "query"], _fail(name, "its signature is not (query)")
    query = mock.Mock()
    locked = method(types.SimpleNamespace(db_type="sqlite"), query)
    assert locked is query.with_for_update.return_value, _fail(name, "it does not return query.with_for_update()")


def test_managed_session_maker_is_set_on_the_store() -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    name = "SqlAlchemyStore.ManagedSessionMaker"
    assert "self.ManagedSessionMaker" in inspect.getsource(SqlAlchemyStore.__init__), _fail(
        name, "__init__ no longer sets it (trace_assessment_ids and insert_feedbacks open sessions with it)"
    )


def test_sql_trace_info_has_the_routing_columns() -> None:
    from mlflow.store.tracking.dbmodels.models import SqlTraceInfo

    name = "mlflow.store.tracking.dbmodels.models.SqlTraceInfo"
    columns = {c.name for c in SqlTraceInfo.__table__.columns}
    missing = {"request_id", "experiment_id", "timestamp_ms"} - columns
    assert not missing, _fail(name, f"columns {sorted(missing)} are gone")
    assert SqlTraceInfo.__tablename__ == "trace_info", _fail(name, "its table is not trace_info")


def test_sql_assessments_columns_are_exactly_the_batched_row() -> None:
    from mlflow.entities import AssessmentSource, Feedback
    from mlflow.store.tracking.dbmodels.models import SqlAssessments

    name = "mlflow.store.tracking.dbmodels.models.SqlAssessments"
    fb = Feedback(name="relevance", value=0.5, source=AssessmentSource(source_type="CODE", source_id="x"))
    fb.trace_id = "tr-1"
    row = mlflow_compat.assessment_row(fb, 1, 2)
    columns = {c.name for c in SqlAssessments.__table__.columns}
    assert set(row) == columns, _fail(
        name, f"columns added {sorted(columns - set(row))}, removed {sorted(set(row) - columns)}; update assessment_row"
    )
    assert (row["experiment_id"], row["trace_timestamp_ms"], row["value"]) == (1, 2, "0.5")


def test_enqueue_rollup_rebuild_partitions_takes_assessment_partitions() -> None:
    from mlflow.store.tracking.utils import sql_trace_rollups

    name = "mlflow.store.tracking.utils.sql_trace_rollups.enqueue_rollup_rebuild_partitions"
    func = getattr(sql_trace_rollups, "enqueue_rollup_rebuild_partitions", None)
    assert callable(func), _fail(name, "it no longer exists; see what create_assessment enqueues now")
    assert _params(func) == ["session", "partitions"], _fail(name, "its signature is not (session, partitions)")
    assert sql_trace_rollups.RollupFamily.ASSESSMENT.value == "assessment", _fail(
        name, "RollupFamily.ASSESSMENT is gone"
    )


def test_assessment_aggregate_gives_the_aggregate_columns() -> None:
    from mlflow.store.tracking.utils import trace_analytics

    name = "mlflow.store.tracking.utils.trace_analytics.assessment_aggregate"
    func = getattr(trace_analytics, "assessment_aggregate", None)
    assert callable(func), _fail(name, "it no longer exists; see how SqlAssessments fills aggregate_value")
    assert func(0.5) == (0.5, True), _fail(name, "a number is not (value, numeric)")
    assert func(True) == (1.0, False), _fail(name, "a bool is not (1.0, not numeric)")
    assert func(None) == (None, False), _fail(name, "None is not (None, False)")


def _stored_span() -> dict:
    return {
        "trace_id": "AAAAAAAAAAAAAAAAAAAAAA==",
        "span_id": "cm9vdHNwYW4=",
        "parent_span_id": None,
        "name": "app",
        "start_time_unix_nano": 1_767_225_600_000_000_000,
        "end_time_unix_nano": 1_767_225_601_000_000_000,
        "events": [],
        "status": {"code": "STATUS_CODE_OK", "message": ""},
        "attributes": {
            "mlflow.traceRequestId": json.dumps("tr-1"),
            "mlflow.spanType": json.dumps("CHAIN"),
            "mlflow.spanInputs": json.dumps({"query": "q"}),
            "mlflow.spanOutputs": json.dumps("a"),
        },
        "links": [],
    }


def test_lazy_span_reads_a_stored_span_dict() -> None:
    from mlflow.entities import span as span_module

    name = "mlflow.entities.span.LazySpan"
    assert hasattr(span_module, "LazySpan"), _fail(name, "it no longer exists; rebuild spans with Span.from_dict")
    span = mlflow_compat.lazy_span(_stored_span())
    assert (span.name, span.inputs, span.outputs, span.span_type) == ("app", {"query": "q"}, "a", "CHAIN"), _fail(
        name, "it does not read a span in MLflow 3's stored form"
    )


def test_trace_json_encoder_serialises_like_trace_to_json() -> None:
    from mlflow.entities import Trace
    from mlflow.tracing import utils

    name = "mlflow.tracing.utils.TraceJSONEncoder"
    assert issubclass(getattr(utils, "TraceJSONEncoder", object), json.JSONEncoder), _fail(name, "it is gone")
    text = json.dumps(
        {
            "info": {
                "trace_id": "tr-1",
                "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "1"}},
                "request_time": "2026-01-01T00:00:00.000Z",
                "state": "OK",
            },
            "data": {"spans": [_stored_span()]},
        }
    )
    trace = Trace.from_json(text)
    assert mlflow_compat.trace_dict_to_json(trace.to_dict()) == trace.to_json(), _fail(
        name, "Trace.to_json no longer encodes with it"
    )


def test_standardize_scorer_value_makes_feedbacks() -> None:
    from mlflow.entities import Feedback
    from mlflow.genai.evaluation import utils

    name = "mlflow.genai.evaluation.utils.standardize_scorer_value"
    assert _params(getattr(utils, "standardize_scorer_value", None)) == ["scorer_name", "value"], _fail(
        name, "it is gone or its signature is not (scorer_name, value)"
    )
    [made] = mlflow_compat.scorer_feedbacks("s", True)
    assert (made.name, made.value) == ("s", True), _fail(name, "a bool is not one Feedback named after the scorer")
    given = Feedback(name="other", value=0.2)
    assert mlflow_compat.scorer_feedbacks("s", given) == [given], _fail(name, "a Feedback is not passed through")


def test_scorer_decorator_keeps_the_original_function() -> None:
    from mlflow.genai.scorers import scorer

    def tone(outputs: str) -> bool:
        return bool(outputs)

    name = "mlflow.genai.scorers @scorer ._original_func"
    assert mlflow_compat.scorer_function(scorer(tone)) is tone, _fail(name, "the decorated scorer does not keep it")
    assert mlflow_compat.scorer_function(object()) is None


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def test_gateway_send_chat_request_is_wrapped_and_looked_up_at_call_time() -> None:
    from mlflow.genai.judges.adapters import gateway_adapter

    name = "mlflow.genai.judges.adapters.gateway_adapter.send_chat_request"
    assert mlflow_compat.install_judge_retry_override(), _fail(name, "it no longer exists")
    wrapper = gateway_adapter.send_chat_request
    original = getattr(wrapper, "__wrapped__", wrapper)
    assert _params(original) == ["endpoint", "headers", "payload", "num_retries"], _fail(
        name, "its signature is not (endpoint, headers, payload, num_retries)"
    )
    source = inspect.getsource(gateway_adapter)
    module_code = compile(source, gateway_adapter.__file__, "exec")
    callers = [
        c.co_name for c in _code_objects(module_code) if "send_chat_request" in c.co_names and c is not module_code
    ]
    assert callers, _fail(name, "the adapter no longer calls it through its module global, so wrapping it does nothing")
    seen: list[int] = []

    def fake(endpoint: str, headers: dict, payload: dict, num_retries: int) -> dict:
        seen.append(num_retries)
        return {}

    # Call the installed wrapper around a fake original: inside no_judge_retries the count is forced to 0.
    with _wrapping(fake) as wrapped:
        wrapped(endpoint="e", headers={}, payload={}, num_retries=10)
        with mlflow_compat.no_judge_retries():
            wrapped(endpoint="e", headers={}, payload={}, num_retries=10)
            wrapped("e", {}, {}, 7)
    assert seen == [10, 0, 0]


@contextlib.contextmanager
def _wrapping(fake: object) -> Iterator[object]:
    """The override wrapper built around ``fake`` (installed on a stand-in adapter module)."""
    module = types.ModuleType("gateway_adapter")
    module.send_chat_request = fake  # type: ignore[attr-defined]
    state = dict(mlflow_compat._patch_state)
    mlflow_compat._patch_state.clear()
    try:
        with mock.patch.dict("sys.modules", {"mlflow.genai.judges.adapters.gateway_adapter": module}):
            import mlflow.genai.judges.adapters as adapters

            with mock.patch.object(adapters, "gateway_adapter", module):
                assert mlflow_compat.install_judge_retry_override()
                yield module.send_chat_request  # type: ignore[attr-defined]
    finally:
        mlflow_compat._patch_state.clear()
        mlflow_compat._patch_state.update(state)


# -- nothing else references a private MLflow name -----------------------------------------------------


@cache
def _mlflow_source_names() -> frozenset[str]:
    """Every underscore identifier that appears in MLflow's own source."""
    spec = importlib.util.find_spec("mlflow")
    assert spec is not None and spec.submodule_search_locations
    names: set[str] = set()
    for path in Path(next(iter(spec.submodule_search_locations))).rglob("*.py"):
        names.update(re.findall(r"\b_[A-Za-z]\w*", path.read_text(encoding="utf-8", errors="replace")))
    return frozenset(names)


def _is_mlflow_module(dotted: str) -> bool:
    spec = importlib.util.find_spec("mlflow")
    assert spec is not None and spec.submodule_search_locations
    base = Path(next(iter(spec.submodule_search_locations))).parent.joinpath(*dotted.split("."))
    return base.is_dir() or base.with_suffix(".py").is_file()


def _dotted(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _private(name: str) -> bool:
    """An underscore name; dunders (``__version__``) are public."""
    return name.startswith("_") and not name.startswith("__")


def _project_names(trees: list[ast.AST]) -> set[str]:
    """Underscore names the project defines itself (functions, classes, variables, attributes, arguments)."""
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[0])
    return {n for n in names if n.startswith("_")}


def private_mlflow_references(tree: ast.AST, project_names: set[str]) -> list[str]:
    """What in ``tree`` reaches into MLflow's private API: an import from an undocumented or underscore
    module or of an underscore name, ``mlflow.<private>`` attribute chains, and ``obj._name`` /
    ``getattr(obj, "_name")`` for an underscore name MLflow defines and the project does not."""
    found: list[str] = []

    def private_module(dotted: str) -> bool:
        return any(_private(p) for p in dotted.split(".")) or dotted not in PUBLIC_MODULES

    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mlflow":
            if private_module(node.module):
                found.append(f"line {line}: from {node.module} import ...")
            found += [f"line {line}: from {node.module} import {a.name}" for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Import):
            found += [
                f"line {line}: import {a.name}"
                for a in node.names
                if a.name.split(".")[0] == "mlflow" and private_module(a.name)
            ]
        elif isinstance(node, ast.Attribute) and not isinstance(getattr(node, "parent", None), ast.Attribute):
            dotted = _dotted(node)
            if dotted and dotted.split(".")[0] == "mlflow":
                parts = dotted.split(".")
                modules = [".".join(parts[:n]) for n in range(2, len(parts) + 1)]
                if any(_private(p) for p in parts) or any(
                    m not in PUBLIC_MODULES and _is_mlflow_module(m) for m in modules
                ):
                    found.append(f"line {line}: {dotted}")
        if isinstance(node, ast.Attribute):
            receiver = node.value.id if isinstance(node.value, ast.Name) else None
            attr = node.attr
            if (
                _private(attr)
                and receiver not in ("self", "cls")
                and attr not in project_names
                and attr in _mlflow_source_names()
            ):
                found.append(f"line {line}: .{attr}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            attr = node.args[1].value
            if _private(attr) and attr not in project_names:
                if attr in _mlflow_source_names():
                    found.append(f"line {line}: {node.func.id}(..., {attr!r})")
    return found


def _parse(text: str) -> ast.AST:
    tree = ast.parse(text)
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            child.parent = parent  # type: ignore[attr-defined]
    return tree


def test_the_scan_finds_each_kind_of_private_reference() -> None:
    source = "\n".join(
        [
            "from mlflow.tracking._tracking_service.utils import _use_tracking_uri",
            "from mlflow.store.tracking.dbmodels.models import SqlAssessments",
            "from mlflow.entities import Trace",
            "import mlflow.store.tracking",
            "import mlflow",
            "mlflow.genai.evaluate(data=None)",
            "mlflow.tracking._tracking_service.utils.get_tracking_uri()",
            "store._apply_trace_row_lock(q)",
            "getattr(s, '_original_func', None)",
            "self._apply_trace_row_lock(q)",
        ]
    )
    found = private_mlflow_references(_parse(source), set())
    lines = sorted({int(f.split(":")[0].removeprefix("line ")) for f in found})
    assert lines == [1, 2, 4, 7, 8, 9], found  # not 3, 5, 6 (public) nor 10 (the object's own)


def test_no_module_but_the_seam_references_a_private_mlflow_name() -> None:
    files = [p for folder in SCANNED for p in sorted((ROOT / folder).rglob("*.py")) if p != SEAM and p not in EXEMPT]
    trees = {p: _parse(p.read_text(encoding="utf-8")) for p in files}
    project_names = _project_names(list(trees.values()))
    offences = [
        f"{path.relative_to(ROOT)} {where}"
        for path, tree in trees.items()
        for where in private_mlflow_references(tree, project_names)
    ]
    assert not offences, (
        "private MLflow names used outside genai_flywheel/mlflow_compat.py (add a function there, with a "
        "docstring naming the MLflow version it relies on, and a contract test here):\n" + "\n".join(offences)
    )
