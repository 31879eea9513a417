"""The logged generator's model code (MLflow models-from-code): MLflow stores this file with the model and
runs it when loading; it names the pyfunc class, which loads the EMA networks from the model's artifacts."""

from mlflow.models import set_model

from dtgan.tracking.mlflow.model import GeneratorModel

set_model(GeneratorModel())
