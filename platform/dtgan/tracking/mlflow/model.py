"""The logged generator: the pyfunc model MLflow loads (``GeneratorModel``), its signature and input example,
and logging a checkpoint's EMA networks as a run's model. The only part of the MLflow adapter needing torch
(imported where a checkpoint is read or a prediction made)."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Run, RunStatus
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo

from dtgan import keys
from dtgan.config import DTGANConfig
from dtgan.errors import CheckpointError
from dtgan.tracking.mlflow.fluent import fluent_store

GENERATOR_ARTIFACT_PATH = "generator"
GENERATOR_FILE = "generator.pt"
# The models-from-code file MLflow stores with the logged generator and runs when loading it.
GENERATOR_MODEL_CODE = Path(__file__).with_name("generator_model.py")


class GeneratorModel(mlflow.pyfunc.PythonModel):
    """pyfunc model of a logged generator: translates sources to target defects with the EMA nets.

    ``predict(model_input, params)``: ``model_input`` is ``{"sources": uint8 (N,3,H,W), "y_trg": int64 (N,)
    target defect indices, "references": uint8 (M,3,H,W)}`` (references are used by reference guidance
    only; pass at least one image otherwise); ``params`` ``{"guidance": "latent"|"reference", "seed": int}``.
    Returns uint8 (N,3,H,W). Keys ``guidance`` and ``seed`` inside ``model_input`` are accepted too.
    """

    def load_context(self, context) -> None:
        from dtgan.training.checkpoint import load_inference_nets

        self.nets = load_inference_nets(context.artifacts["checkpoint"], device="cpu")

    def predict(self, context, model_input, params=None):
        import torch

        from dtgan.evaluation.synthesis import synthesize

        options = {**{k: model_input[k] for k in ("guidance", "seed") if k in model_input}, **(params or {})}
        guidance = str(options.get("guidance", "latent"))
        references = model_input.get("references")
        x_fake = synthesize(
            self.nets,
            torch.as_tensor(np.asarray(model_input["sources"]), dtype=torch.uint8),
            torch.as_tensor(np.asarray(model_input["y_trg"]), dtype=torch.long),
            guidance=guidance,
            references=None
            if references is None
            else torch.as_tensor(np.asarray(references), dtype=torch.uint8),
            seed=int(options.get("seed", 0)),
        )
        return x_fake.numpy()


def generator_signature(img_size: int):
    """Inputs ``sources``/``references`` uint8 (-1,3,S,S), ``y_trg`` int64 (-1,); output uint8 (-1,3,S,S);
    params ``guidance`` (default latent) and ``seed`` (default 0)."""
    from mlflow.types.schema import ParamSchema, ParamSpec, Schema, TensorSpec

    image = (-1, 3, img_size, img_size)
    return ModelSignature(
        inputs=Schema(
            [
                TensorSpec(np.dtype(np.uint8), image, "sources"),
                TensorSpec(np.dtype(np.int64), (-1,), "y_trg"),
                TensorSpec(np.dtype(np.uint8), image, "references"),
            ]
        ),
        outputs=Schema([TensorSpec(np.dtype(np.uint8), image)]),
        params=ParamSchema([ParamSpec("guidance", "string", "latent"), ParamSpec("seed", "long", 0)]),
    )


def generator_input_example(img_size: int, num_defects: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Two mid-grey sources translated to the last defect, one reference; latent guidance, seed 0."""
    image = np.full((2, 3, img_size, img_size), 128, dtype=np.uint8)
    target = np.full((2,), num_defects - 1, dtype=np.int64)
    return {"sources": image, "y_trg": target, "references": image[:1].copy()}, {
        "guidance": "latent",
        "seed": 0,
    }


def log_generator_model(
    client: MlflowClient, tracking_uri: str, run: Run, checkpoint_path: str | Path
) -> tuple[ModelInfo, str]:
    """Log the checkpoint's EMA networks as ``run``'s MLflow logged model ``generator`` (models-from-code,
    ``generator_model.py``, with a signature and an input example); its ModelInfo and a description for the
    registry version. The run keeps its status. The model holds ``generator.pt`` (format_version, config,
    vocab, step, nets_ema: no discriminator, no optimizer state)."""
    import torch

    from dtgan.training.checkpoint import inference_payload

    run_id = run.info.run_id
    path = Path(checkpoint_path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; nothing to register")
    checkpoint = inference_payload(torch.load(path, map_location="cpu", weights_only=True), path)
    config = DTGANConfig.model_validate(checkpoint["config"])
    vocab = checkpoint["vocab"]
    description = (
        f"dtgan generator (EMA G, M, E) of run {run.info.run_name} at step {checkpoint['step']}: "
        f"ablation ({config.model.ablation}), {config.model.img_size} px, products "
        f"{', '.join(vocab['products'])}, target defects {', '.join(vocab['defects'])}. "
        "predict(sources uint8 (N,3,H,W), y_trg int64 (N,) defect indices, references uint8 "
        "(M,3,H,W) for reference guidance; params guidance='latent'|'reference', seed) -> uint8 (N,3,H,W)."
    )
    previous_status = run.info.status
    with tempfile.TemporaryDirectory(prefix="dtgan-generator-") as tmp:
        slim = Path(tmp) / GENERATOR_FILE
        torch.save(checkpoint, slim)
        with fluent_store(tracking_uri), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # MLflow's notes on pip requirements and hints
            with mlflow.start_run(run_id=run_id):
                info = mlflow.pyfunc.log_model(
                    name=GENERATOR_ARTIFACT_PATH,
                    python_model=str(GENERATOR_MODEL_CODE),
                    artifacts={"checkpoint": str(slim)},
                    signature=generator_signature(config.model.img_size),
                    input_example=generator_input_example(config.model.img_size, len(vocab["defects"])),
                    pip_requirements=["torch", "dtgan-platform"],
                    tags={keys.TAG_VARIANT: config.model.ablation, "step": str(checkpoint["step"])},
                )
        if previous_status != RunStatus.to_string(RunStatus.FINISHED):
            client.update_run(run_id, status=previous_status)  # start_run's exit marked it FINISHED
    return info, description
