"""The logged generator's model code (MLflow models-from-code): MLflow stores this file with the model and
runs it when loading; it names the pyfunc class, which loads the EMA networks from the model's artifacts."""

from dtgan.tracking.mlflow_backend import GeneratorModel, set_model

set_model(GeneratorModel())
