"""Curation: production traces -> selection rules -> evaluation records -> a versioned MLflow dataset.

Modules: :mod:`.rules` (rule kinds, priorities, caps, ``default_rules``), :mod:`.clusters` (query clusters and
the cluster report), :mod:`.records` (records with lineage, deduplication, merging across runs),
:mod:`.datasets` (versioned snapshots, ``load_dataset_version``), :mod:`.dataset_store` (MLflow datasets and
runs), :mod:`.stages` (one function per DAG task).

Nothing heavy is imported here, so ``import genai_flywheel.curation`` stays cheap for DAG parsing.
"""
