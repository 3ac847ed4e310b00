"""Links from the GenAI Quality page into the MLflow UI and the Airflow UI.

The MLflow experiment id is looked up over MLflow's REST API with a short timeout (not through the MLflow
client, whose HTTP retries would hold a page for minutes while the tracking server is down). When MLflow
does not answer, the page links to the experiments list instead. Credentials in a tracking URI
(``http://user:secret@host``, ``postgresql://user:secret@db``) never reach the page.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT_S = 2.0
# After a failed lookup the next try waits this long, so a page with several applications does not pay
# the timeout on every load while MLflow is down.
RETRY_AFTER_S = 30.0
MONITOR_DAG = "flywheel_monitor_{app}"

_lock = threading.Lock()
_found: dict[tuple[str, str], str] = {}
_failed_at: dict[tuple[str, str], tuple[float, str]] = {}


class MlflowUnreachable(Exception):
    """MLflow could not be asked for the experiment id; the message says why (shown on the page)."""


@dataclass(frozen=True)
class MlflowLinks:
    """Where the application's traces and runs are in the MLflow UI; ``note`` says why a link is missing."""

    ui: str | None  # the MLflow UI base URL, credentials removed
    experiment_id: str | None
    traces: str | None
    runs: str | None
    experiments: str | None  # the experiments list: the fallback when the id is unknown
    note: str = ""

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready dict."""
        return {
            "ui": self.ui,
            "experiment_id": self.experiment_id,
            "traces": self.traces,
            "runs": self.runs,
            "experiments": self.experiments,
            "note": self.note or None,
        }


def public_base(tracking_uri: str) -> str | None:
    """The http(s) tracking URI without credentials, query or fragment; None for other schemes."""
    parts = urllib.parse.urlsplit(tracking_uri.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))


def _rest_lookup(tracking_uri: str, experiment: str, timeout_s: float) -> str | None:
    """The experiment id from MLflow's REST API; None when the experiment does not exist."""
    import base64

    base = public_base(tracking_uri)
    if base is None:
        raise MlflowUnreachable(f"{urllib.parse.urlsplit(tracking_uri).scheme!r} is not an http(s) URI")
    url = f"{base}/api/2.0/mlflow/experiments/get-by-name?" + urllib.parse.urlencode({"experiment_name": experiment})
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    parts = urllib.parse.urlsplit(tracking_uri.strip())
    if parts.username:  # basic auth written into the URI goes to MLflow only, never into a link
        user = urllib.parse.unquote(parts.username)
        secret = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{secret}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            body = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise MlflowUnreachable(f"MLflow answered HTTP {err.code}") from err
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise MlflowUnreachable(f"MLflow did not answer ({reason})") from err
    except ValueError as err:
        raise MlflowUnreachable("MLflow answered with something that is not JSON") from err
    experiment_id = (body.get("experiment") or {}).get("experiment_id") if isinstance(body, dict) else None
    return str(experiment_id) if experiment_id is not None else None


Lookup = Callable[[str, str, float], str | None]


def experiment_id(
    tracking_uri: str,
    experiment: str,
    *,
    timeout_s: float = LOOKUP_TIMEOUT_S,
    lookup: Lookup = _rest_lookup,
) -> str | None:
    """The id of ``experiment`` at ``tracking_uri`` (cached once found); None when it does not exist yet.

    Raises :class:`MlflowUnreachable` when MLflow cannot be asked; a failure is remembered for
    :data:`RETRY_AFTER_S` so the page stays fast while MLflow is down.
    """
    key = (tracking_uri, experiment)
    with _lock:
        if key in _found:
            return _found[key]
        failed = _failed_at.get(key)
    if failed is not None and time.monotonic() - failed[0] < RETRY_AFTER_S:
        raise MlflowUnreachable(failed[1])
    try:
        found = lookup(tracking_uri, experiment, timeout_s)
    except MlflowUnreachable as err:
        with _lock:
            _failed_at[key] = (time.monotonic(), str(err))
        log.info("MLflow experiment %r at %s not resolved: %s", experiment, public_base(tracking_uri), err)
        raise
    with _lock:
        _failed_at.pop(key, None)
        if found is not None:  # a missing experiment may be created later: not cached
            _found[key] = found
    return found


def clear_cache() -> None:
    """Forget every looked-up experiment id and failure (tests; a recreated experiment)."""
    with _lock:
        _found.clear()
        _failed_at.clear()


def mlflow_links(
    tracking_uri: str,
    experiment: str,
    *,
    timeout_s: float = LOOKUP_TIMEOUT_S,
    lookup: Lookup = _rest_lookup,
) -> MlflowLinks:
    """Links to the experiment's traces and runs, or to the experiments list when the id is unknown."""
    base = public_base(tracking_uri)
    if base is None:
        scheme = urllib.parse.urlsplit(tracking_uri).scheme or "file"
        return MlflowLinks(
            None, None, None, None, None,
            note=f"the tracking URI is a {scheme!r} store, not an MLflow server, so there is no UI to link; "
            "serve it with `mlflow server --backend-store-uri <uri>` and set mlflow.tracking_uri to its "
            "http:// address",
        )  # fmt: skip
    experiments = f"{base}/#/experiments"
    try:
        found = experiment_id(tracking_uri, experiment, timeout_s=timeout_s, lookup=lookup)
    except MlflowUnreachable as err:
        return MlflowLinks(base, None, None, None, experiments, note=f"{err}; linking the experiments list")
    if found is None:
        return MlflowLinks(
            base, None, None, None, experiments,
            note=f"MLflow has no experiment {experiment!r} yet (the application has logged no trace)",
        )  # fmt: skip
    eid = urllib.parse.quote(found, safe="")
    return MlflowLinks(
        base, found, f"{base}/#/experiments/{eid}/traces", f"{base}/#/experiments/{eid}/runs", experiments
    )


def mlflow_run_link(tracking_uri: str, experiment_id_: str | None, run_id: str | None) -> str | None:
    """The MLflow UI page of one run (e.g. a development evaluation), when all parts are known."""
    base = public_base(tracking_uri)
    if base is None or not experiment_id_ or not run_id:
        return None
    eid, rid = urllib.parse.quote(str(experiment_id_), safe=""), urllib.parse.quote(str(run_id), safe="")
    return f"{base}/#/experiments/{eid}/runs/{rid}"


def monitor_dag_id(app: str) -> str:
    """The monitor DAG of ``app`` (see dags/flywheel_monitor.py)."""
    return MONITOR_DAG.format(app=app)


def airflow_dag_link(app: str) -> str:
    """The monitor DAG's page in the Airflow UI, relative to the Airflow host (the page is served there)."""
    return "/dags/" + urllib.parse.quote(monitor_dag_id(app), safe="")


def airflow_runs_link(app: str) -> str:
    """The monitor DAG's runs in the Airflow UI."""
    return airflow_dag_link(app) + "/runs"
