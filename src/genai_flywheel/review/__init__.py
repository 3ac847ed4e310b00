"""Human review: MLflow review queues fed from curation, labels flowing back, judges calibrated against people.

``backend``      the one interface to MLflow's review queues, label schemas and trace assessments
                 (:class:`MlflowReviewBackend`, and :class:`InMemoryReviewBackend` for tests and dry runs)
``schemas``      ``review.label_schemas`` of ``flywheel.yaml`` -> MLflow label schemas, created idempotently
``queue``        which traces a queue gets (curation rules, a stratified calibration sample) and the writer
``labels``       completed review items -> human labels beside the automated scores of the same traces
``calibration``  agreement of each automated scorer with the reviewers, as ``calibration.<scorer>.*`` metrics
"""
