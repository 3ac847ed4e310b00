#!/usr/bin/env bash
# One-shot initialisation of the compose topology (service `airflow-init`); every other Airflow service
# starts only after it exits 0. Idempotent: safe on every `docker compose up`.
#   1. validate $FLYWHEEL_CONFIG, so a typo fails here with the key's path, not later inside a task;
#   2. migrate the Airflow metadata database;
#   3. create or resize the LLM-judge pools named in the configuration (judge.pool, judge.pool_slots);
#   4. create the judge connection `flywheel_judge` when FLYWHEEL_JUDGE_BASE_URL is set.
set -euo pipefail

log() { printf '[airflow-init] %s\n' "$*"; }

log "validating ${FLYWHEEL_CONFIG:?FLYWHEEL_CONFIG must name the flywheel.yaml to use}"
flywheel config validate --config "${FLYWHEEL_CONFIG}"

log "migrating the Airflow metadata database"
airflow db migrate

# From the validated configuration, one line per judge pool, "pool <name> <slots>" (the largest slot count
# wins when applications share a pool), and one per configured judge connection, "conn <conn_id>".
plan="$(python - <<'PY'
from genai_flywheel.config import load_config

apps = load_config().applications
slots: dict[str, int] = {}
for app in apps:
    slots[app.judge.pool] = max(slots.get(app.judge.pool, 0), app.judge.pool_slots)
for name in sorted(slots):
    print("pool", name, slots[name])
for conn_id in sorted({app.judge.conn_id for app in apps if app.judge.conn_id}):
    print("conn", conn_id)
PY
)"

while read -r kind pool slots; do
    [ "${kind}" = "pool" ] || continue
    log "pool ${pool}: ${slots} slot(s)"
    airflow pools set "${pool}" "${slots}" "LLM-judge calls of genai-flywheel (judge.pool_slots)"
done <<< "${plan}"

if [ -n "${FLYWHEEL_JUDGE_BASE_URL:-}" ]; then
    log "connection flywheel_judge -> ${FLYWHEEL_JUDGE_BASE_URL}"
    # `connections add` refuses an existing id: replace it so a changed URL or key takes effect.
    airflow connections delete flywheel_judge >/dev/null 2>&1 || true
    airflow connections add flywheel_judge \
        --conn-type http \
        --conn-host "${FLYWHEEL_JUDGE_BASE_URL}" \
        --conn-password "${FLYWHEEL_JUDGE_API_KEY:-unused}"
else
    log "FLYWHEEL_JUDGE_BASE_URL is not set: no judge connection; LLM judges run only where judge.conn_id is set"
fi

# A judge.conn_id with no connection behind it fails every scoring task: say so now, not at 3 a.m.
# (A warning, not an error: the connection may come from a secrets backend or an AIRFLOW_CONN_* variable.)
while read -r kind conn_id; do
    [ "${kind}" = "conn" ] || continue
    if ! airflow connections get "${conn_id}" >/dev/null 2>&1; then
        log "WARNING: judge.conn_id ${conn_id} is configured but no Airflow connection ${conn_id} exists;" \
            "set FLYWHEEL_JUDGE_BASE_URL in .env (creates flywheel_judge) or add it yourself"
    fi
done <<< "${plan}"

log "done"
