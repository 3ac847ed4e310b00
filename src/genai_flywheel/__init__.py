"""genai-flywheel: production traces in, continuous improvement out.

The library holds all logic and imports no Airflow; ``dags/`` and ``plugins/`` wire it into Airflow.
"""

__version__ = "0.1.0"
