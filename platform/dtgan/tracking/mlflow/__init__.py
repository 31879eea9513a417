"""The MLflow adapter, the only package importing MLflow: ``runs`` (the run tracker and the registry),
``model`` (the logged generator: the only part needing torch), ``reading`` (the reports' reading side) and
``fluent`` (MLflow's process-wide API pointed at one store for a block). Nothing is imported here: importing
``dtgan.tracking.mlflow`` loads no MLflow."""
