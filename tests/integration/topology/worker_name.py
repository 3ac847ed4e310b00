"""Airflow's ``[core] hostname_callable`` for the Celery workers of the topology tier.

Both workers run on this one machine, so the default (the FQDN) would give every task instance the same
``hostname``. Each worker process is started with its own ``FLYWHEEL_CELERY_WORKER``; the task processes
it forks inherit it and report it as their hostname, which is how the test tells the workers apart.
"""

from __future__ import annotations

import os


def worker_name() -> str:
    """The name of the Celery worker this task process runs under."""
    return os.environ["FLYWHEEL_CELERY_WORKER"]
