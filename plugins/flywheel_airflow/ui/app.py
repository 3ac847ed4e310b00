"""The GenAI Quality FastAPI app: the read-only HTML page and its JSON API.

Mounted by the plugin under ``/flywheel`` in the Airflow api-server (see ``plugins/flywheel_plugin.py``):

===================================  =====================================================================
route                                what
===================================  =====================================================================
``GET /``                            every configured application (``?intervals=N`` charts the last N)
``GET /apps/{app}``                  one application
``GET /api/apps``                    applications: intervals stored, latest interval, alerts firing, links
``GET /api/apps/{app}/metrics``      metric series of the last ``intervals`` (``?metric=`` repeatable;
                                     all metrics when absent); ``available`` lists the stored names
``GET /api/apps/{app}/alerts``       rules firing now, configured rules with status, recent events
``GET /api/apps/{app}/segments``     the worst segments of the latest interval per dimension
``GET /api/apps/{app}/segments/      one segment's value, n and CI per interval (``?dimension=&segment=``,
history``                            ``days`` back from the latest interval, 7 by default, at most 90)
``GET /apps/{app}/segments/history`` the same as an HTML table (the worst segments link to it)
===================================  =====================================================================

Inside Airflow every route requires a signed-in Airflow user (``require_auth``): the same session cookie
or bearer token as the rest of the UI, so the iframe in the Airflow UI just works. Configuration comes
from ``flywheel_airflow.settings.flywheel_config()`` (read once per process: restart the api-server after
editing flywheel.yaml), data from its data root. Routes are plain functions, run in FastAPI's thread
pool, because they read files.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from flywheel_airflow.ui import collect, links, page
from genai_flywheel.exceptions import ConfigError, StoreError
from genai_flywheel.metrics.intervals import iso
from genai_flywheel.report.segments import HISTORY_DAYS, MAX_HISTORY_DAYS

if TYPE_CHECKING:
    from genai_flywheel.config import Application, FlywheelConfig

log = logging.getLogger(__name__)

ConfigLoader = Callable[[], "FlywheelConfig"]

# No script, no external resource: the page is inline CSS and inline SVG. frame-ancestors 'self' lets the
# Airflow UI (same origin) embed it and nobody else.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

DaysQuery = Annotated[int, Query(ge=1, le=MAX_HISTORY_DAYS, description="Days of history before the latest interval")]
DimensionQuery = Annotated[str, Query(min_length=1, max_length=200, description="The segment's dimension")]
SegmentQuery = Annotated[str, Query(min_length=1, max_length=500, description="The segment's key")]

IntervalsQuery = Annotated[
    int | None,
    Query(ge=1, le=collect.MAX_INTERVALS, description="How many most recent intervals to include"),
]


class _NotFound(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _default_loader() -> FlywheelConfig:
    from flywheel_airflow.settings import flywheel_config

    return flywheel_config()


def _auth_dependencies(require_auth: bool) -> list[Any]:
    if not require_auth:
        return []
    # Only inside the Airflow api-server: it verifies the UI's session cookie or a bearer token.
    from airflow.api_fastapi.core_api.security import requires_authenticated

    return [Depends(requires_authenticated())]


def _is_api(request: Request) -> bool:
    root = request.scope.get("root_path", "")
    path = request.scope.get("path", "")
    return path.removeprefix(root).startswith("/api/")


def create_app(
    *,
    require_auth: bool = True,
    config_loader: ConfigLoader | None = None,
    mlflow_timeout_s: float = links.LOOKUP_TIMEOUT_S,
) -> FastAPI:
    """Build the app. ``require_auth=False`` serves without an Airflow user (tests, a standalone run);
    ``config_loader`` returns the configuration (default: the plugin's cached ``flywheel_config``)."""
    load_config = config_loader or _default_loader
    app = FastAPI(
        title="genai-flywheel: GenAI Quality",
        description="Read-only monitor, alerts, judge budget, datasets and evaluations of genai-flywheel.",
        docs_url=None,  # Swagger UI would fetch JavaScript from a CDN
        redoc_url=None,
        openapi_url="/api/openapi.json",
        dependencies=_auth_dependencies(require_auth),
    )

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        if exc.status_code in (401, 403):
            text = (
                "Sign in to Airflow to see this page."
                if exc.status_code == 401
                else ("Your Airflow user may not see this page.")
            )
            html = page.render_message(page.TITLE, text, hint_link=page.HintLink("/", "Open the Airflow UI", "top"))
            return HTMLResponse(html, status_code=exc.status_code, headers=exc.headers)
        html = page.render_message(page.TITLE, f"{exc.status_code}: {exc.detail}")
        return HTMLResponse(html, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')} (got {e.get('input')!r})"
            for e in exc.errors()
        )
        if _is_api(request):
            return JSONResponse({"detail": problems}, status_code=422)
        return HTMLResponse(page.render_message(page.TITLE, f"Bad request: {problems}"), status_code=422)

    @app.exception_handler(ConfigError)
    async def _config_error(request: Request, exc: ConfigError) -> Response:
        message = f"The flywheel configuration could not be loaded: {exc}"
        log.error("GenAI Quality page: %s", message)
        if _is_api(request):
            return JSONResponse({"detail": message}, status_code=503)
        hint = "Fix flywheel.yaml (or $FLYWHEEL_CONFIG) and restart the Airflow api-server."
        return HTMLResponse(page.render_message(page.TITLE, message, hint=hint), status_code=503)

    @app.exception_handler(_NotFound)
    async def _not_found(request: Request, exc: _NotFound) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.message}, status_code=404)
        hint = page.HintLink("../", "All applications")
        return HTMLResponse(page.render_message(page.TITLE, exc.message, hint_link=hint), status_code=404)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> Response:
        log.error("GenAI Quality page: %s", exc)
        if _is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=500)
        return HTMLResponse(page.render_message(page.TITLE, str(exc)), status_code=500)

    def config() -> FlywheelConfig:
        return load_config()

    def application(cfg: FlywheelConfig, name: str) -> Application:
        try:
            return cfg.app(name)
        except ConfigError as err:  # an unknown name in the URL, not a broken configuration
            raise _NotFound(str(err)) from None

    def mlflow_for(app_cfg: Application) -> links.MlflowLinks:
        return links.mlflow_links(app_cfg.mlflow.tracking_uri, app_cfg.mlflow.experiment, timeout_s=mlflow_timeout_s)

    @app.get("/", response_class=HTMLResponse)
    def index(intervals: IntervalsQuery = None) -> HTMLResponse:
        """Every configured application."""
        cfg = config()
        n = collect.clamp_intervals(intervals)
        root = cfg.data_path()
        mlflow = {a.name: mlflow_for(a) for a in cfg.applications}
        views = [collect.load_view(root, a, n, traces_url=mlflow[a.name].traces) for a in cfg.applications]
        return HTMLResponse(page.render_page(views, mlflow, intervals=n))

    @app.get("/apps/{app_name}", response_class=HTMLResponse)
    def app_page(app_name: str, intervals: IntervalsQuery = None) -> HTMLResponse:
        """One application."""
        cfg = config()
        app_cfg = application(cfg, app_name)
        n = collect.clamp_intervals(intervals)
        mlflow = mlflow_for(app_cfg)
        view = collect.load_view(cfg.data_path(), app_cfg, n, traces_url=mlflow.traces)
        html = page.render_page([view], {app_cfg.name: mlflow}, intervals=n, root="../")
        return HTMLResponse(html)

    def history(app_name: str, dimension: str, segment: str, days: int) -> dict[str, Any]:
        from genai_flywheel.metrics import MetricsStore
        from genai_flywheel.report.segments import segment_history

        cfg = config()
        app_cfg = application(cfg, app_name)
        if app_cfg.segments.dimension(dimension) is None:
            declared = [d.name for d in app_cfg.segments.dimensions]
            raise _NotFound(f"{app_cfg.name} declares no segment dimension {dimension!r}; declared: {declared}")
        label, points = segment_history(MetricsStore(cfg.data_path()), app_cfg.name, dimension, segment, days=days)
        return {
            "app": app_cfg.name,
            "dimension": dimension,
            "segment": segment,
            "label": label,
            "days": days,
            "points": [p.to_dict() for p in points],
            "_points": points,
        }

    @app.get("/apps/{app_name}/segments/history", response_class=HTMLResponse)
    def segment_history_page(
        app_name: str, dimension: DimensionQuery, segment: SegmentQuery, days: DaysQuery = HISTORY_DAYS
    ) -> HTMLResponse:
        """One segment's history as a table."""
        found = history(app_name, dimension, segment, days)
        return HTMLResponse(page.render_history(found, found.pop("_points"), root="../../../"))

    @app.get("/api/apps/{app_name}/segments/history")
    def api_segment_history(
        app_name: str, dimension: DimensionQuery, segment: SegmentQuery, days: DaysQuery = HISTORY_DAYS
    ) -> dict[str, Any]:
        """One segment's value, n and 95% CI per interval over the last ``days``."""
        found = history(app_name, dimension, segment, days)
        found.pop("_points")
        return collect.to_json(found)

    @app.get("/api/apps/{app_name}/segments")
    def api_segments(app_name: str) -> dict[str, Any]:
        """The worst segments of the latest interval per dimension, with estimate, CI, baseline and links."""
        cfg = config()
        app_cfg = application(cfg, app_name)
        worst = collect.worst_segments(cfg.data_path(), app_cfg, mlflow_for(app_cfg).traces)
        return collect.to_json(worst.to_dict())

    @app.get("/api/apps")
    def api_apps() -> dict[str, Any]:
        """The configured applications with where their data stands."""
        from genai_flywheel.alerts import AlertStore

        cfg = config()
        root = cfg.data_path()
        out = []
        for a in cfg.applications:
            total, last = collect.window_starts(root, a.name, 1)
            windows, _ = collect.read_points(root, a.name, last[0] if last else None, ["volume"])
            latest = windows[-1] if windows else None
            out.append(
                {
                    "name": a.name,
                    "experiment": a.mlflow.experiment,
                    "schedule": a.schedule,
                    "intervals": total,
                    "latest_interval": ({"start": iso(latest[0]), "end": iso(latest[1])} if latest else None),
                    "firing": AlertStore(root).load(a.name).firing(),
                    "links": {
                        "page": f"apps/{a.name}",
                        "airflow_dag": links.airflow_dag_link(a.name),
                        "mlflow": mlflow_for(a).to_dict(),
                    },
                }
            )
        return {"apps": out}

    @app.get("/api/apps/{app_name}/metrics")
    def api_metrics(
        app_name: str,
        metric: Annotated[list[str] | None, Query(description="Metric name; repeat for several")] = None,
        intervals: IntervalsQuery = None,
    ) -> dict[str, Any]:
        """Metric series (value, n, 95% CI per interval) of the most recent intervals."""
        cfg = config()
        app_cfg = application(cfg, app_name)
        n = collect.clamp_intervals(intervals)
        root = cfg.data_path()
        _, starts = collect.window_starts(root, app_cfg.name, n)
        windows, points = collect.read_points(root, app_cfg.name, starts[0] if starts else None)
        wanted = list(dict.fromkeys(metric)) if metric else sorted(points)
        return {
            "app": app_cfg.name,
            "intervals": [{"start": iso(s), "end": iso(e)} for s, e in windows],
            "available": sorted(points),
            # A metric that is not stored in the window is an empty series, not an error: new scorers and
            # feedback names appear over time.
            "metrics": {name: [collect.point_dict(p) for p in points.get(name, ())] for name in wanted},
        }

    @app.get("/api/apps/{app_name}/alerts")
    def api_alerts(app_name: str) -> dict[str, Any]:
        """Rules firing now, the configured rules with their status, and recent fired/resolved events."""
        from genai_flywheel.alerts import AlertStore

        cfg = config()
        app_cfg = application(cfg, app_name)
        root = cfg.data_path()
        events = collect.read_events(root, app_cfg.name)
        statuses = AlertStore(root).load(app_cfg.name).alerts
        return collect.to_json(
            {
                "app": app_cfg.name,
                "firing": collect.firing_now(statuses, events),
                "rules": collect.alert_rules(app_cfg, statuses),
                "recent_events": [{k: e[k] for k in _EVENT_FIELDS} for e in collect.notable_events(events)],
            }
        )

    return app


_EVENT_FIELDS = (
    "rule", "metric", "severity", "op", "threshold", "interval_start", "interval_end", "evaluation", "kind",
    "status", "notified", "firing_since", "value", "ci_low", "ci_high", "n", "reason",
)  # fmt: skip
