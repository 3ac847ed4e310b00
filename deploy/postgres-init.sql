-- Runs once, when the postgres service starts on an empty data volume (docker-entrypoint-initdb.d), as
-- $POSTGRES_USER. One server, two databases: the Airflow metadata DB (also the Celery result backend) and
-- the MLflow tracking store, so neither component's migrations can touch the other's tables.
CREATE DATABASE airflow;
CREATE DATABASE mlflow;
