"""Where generators logged before the MLflow adapter became the package ``dtgan.tracking.mlflow`` find their model
class: MLflow stores the models-from-code file with each logged model and runs that stored copy when loading it,
and the copies of that time read ``from dtgan.tracking.mlflow_backend import GeneratorModel, set_model``.
Nothing in the platform imports this module; it keeps those registered models loadable."""

from mlflow.models import set_model

from dtgan.tracking.mlflow.model import GeneratorModel

__all__ = ["GeneratorModel", "set_model"]
