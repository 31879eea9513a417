"""FID/KID feature extractors: which one to use, where its weights are, and the offline one's torch-fidelity
registration.

Every number carries the extractor's name and a fingerprint of its weights; numbers from different
extractors are never comparable and never share a report column.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch_fidelity
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from dtgan.config.evaluation import EvaluationConfig
from dtgan.data.labelled import LabelledImages
from dtgan.errors import ConfigError
from dtgan.evaluation.defect_cnn import ensure_defect_cnn, load_defect_cnn
from dtgan.evaluation.feature_cache import FINGERPRINT_CHARS, fingerprint_file
from dtgan.evaluation.fine_tune import fine_tune, fine_tune_record
from dtgan.evaluation.pretrained_cnn import ensure_pretrained_cnn, pretrained_metadata

log = logging.getLogger(__name__)

INCEPTION = "inception-v3-compat"
DEFECT_CNN = "dtgan-defect-cnn"  # trained on the data set's own reference split
PRETRAINED_CNN = (
    "dtgan-pretrained-cnn"  # the same architecture pre-trained on the procedural corpus (the default)
)
OFFLINE = (PRETRAINED_CNN, DEFECT_CNN)
INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
FEATURE_LAYER = {INCEPTION: "2048", DEFECT_CNN: "features", PRETRAINED_CNN: "features"}
# The logits the Inception Score is computed on (torch-fidelity's default layer for "isc" of each extractor).
LOGITS_LAYER = {INCEPTION: "logits_unbiased", DEFECT_CNN: "logits", PRETRAINED_CNN: "logits"}


@dataclass(frozen=True)
class ExtractorSpec:
    """The extractor a set of numbers was computed with."""

    name: str
    weights_path: str
    weights_fingerprint: str

    @property
    def feature_layer(self) -> str:
        return FEATURE_LAYER[self.name]

    @property
    def logits_layer(self) -> str:
        return LOGITS_LAYER[self.name]

    def as_dict(self) -> dict:
        out: dict = {
            "extractor": self.name,
            "weights_fingerprint": self.weights_fingerprint,
            "weights_path": self.weights_path,
        }
        if self.name == PRETRAINED_CNN:  # its corpus and its accuracy on a corpus of another seed
            out["pretrained"] = pretrained_metadata(self.weights_path)
            out["pretrained"].update(fine_tune_record(self.weights_path))
        return out


@dataclass(frozen=True)
class ClassLabelledImages:
    """Real images with one class per product x defect: what the offline extractor is trained on. Built from a
    data set's :class:`~dtgan.data.labelled.LabelledImages` by :meth:`from_labelled`."""

    images: torch.Tensor  # (N, 3, H, W) uint8
    labels: torch.Tensor  # (N,) long, product_index * num_defects + defect_index
    class_names: list[str]  # "product/defect" per label
    fingerprint: str  # fingerprint_images of the decoded rows

    @staticmethod
    def from_labelled(
        rows: LabelledImages, products: tuple[str, ...], defects: tuple[str, ...], fingerprint: str
    ) -> ClassLabelledImages:
        """One class per ``product/defect`` that has images in ``rows`` (in product-major order): a class with no
        image is never in the classifier's head, where it could only be guessed."""
        codes = rows.p * len(defects) + rows.y
        present = torch.unique(codes)  # sorted
        labels = torch.searchsorted(present, codes)
        names = [f"{products[int(c) // len(defects)]}/{defects[int(c) % len(defects)]}" for c in present]
        return ClassLabelledImages(rows.images, labels, names, fingerprint)


class DefectCNNFeatureExtractor(torch_fidelity.FeatureExtractorBase):
    """torch-fidelity's view of :class:`dtgan.evaluation.defect_cnn.DefectCNN`: uint8 (N, 1|3, H, W) in,
    the ``feature_dim`` features (and the class logits) out. Weights come from
    ``feature_extractor_weights_path``; there is nothing to download."""

    def __init__(
        self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None, **kwargs
    ) -> None:
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise ValueError(f"{name} needs feature_extractor_weights_path (it is trained, never downloaded)")
        self.net = load_defect_cnn(feature_extractor_weights_path)
        self.requires_grad_(False)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("features", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return "logits" if metric == "isc" else "features"

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        return torch.zeros(1, 3, 32, 32, dtype=torch.uint8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected uint8 (N, 1|3, H, W) images, got {x.dtype} {tuple(x.shape)}")
        features, logits = self.net(x)
        out = {"features": features, "logits": logits}
        return tuple(out[name] for name in self.features_list)


def extractor_lines(record: dict | None) -> list[str]:
    """The terminal's view of the extractor block of a report (``ExtractorSpec.as_dict``): what the pretrained
    network was trained on and how well it does on a corpus it did not see."""
    meta = (record or {}).get("pretrained")
    if not meta:
        return []
    return [
        f"  {record['extractor']}@{record['weights_fingerprint']}: pre-trained on the procedural corpus "
        f"{meta.get('corpus_key')} ({meta.get('corpus_images')} images, {meta.get('num_classes')} background x "
        f"defect classes); accuracy on a corpus of another seed "
        f"{meta.get('heldout_accuracy', float('nan')):.3f} (defect type "
        f"{meta.get('heldout_defect_accuracy', float('nan')):.3f})"
        + (
            f"; fine-tuned {meta['fine_tune_steps']} steps on this data set's reference split "
            f"(corpus {meta['fine_tuned_on']})"
            if meta.get("fine_tuned_on")
            else ""
        )
    ]


def read_inception_state_dict(path: str | Path, expected_sha256: str) -> dict[str, torch.Tensor]:
    """The Inception weights of ``path`` once their bytes hash to ``expected_sha256``, read with
    ``weights_only=True`` from those same bytes (torch-fidelity's own loader unpickles any code in the file)."""
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_sha256:
        raise ConfigError(
            f"{path}: SHA-256 {digest[:FINGERPRINT_CHARS]}... is not that of the Inception weights "
            f"({expected_sha256[:FINGERPRINT_CHARS]}...); nothing was read from it. Download {INCEPTION_WEIGHTS_FILE} "
            "again, or set evaluation.inception_weights_sha256 for weights of your own"
        )
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # foreign bytes raise many types
        raise ConfigError(
            f"{path}: not a tensors-only weights file ({type(exc).__name__}); use {INCEPTION_WEIGHTS_FILE}"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path}: not a state dict of tensors; use {INCEPTION_WEIGHTS_FILE}")
    return state


class VerifiedInceptionV3(FeatureExtractorInceptionV3):
    """torch-fidelity's Inception built from a state dict we read safely (:func:`read_inception_state_dict`).

    Its constructor insists on loading a file itself (``torch.load(weights_only=False)``); it is handed our own
    re-serialisation of plain tensors, so what it unpickles is never the user's file.
    """

    def __init__(self, name: str, features_list: list[str], state_dict: dict[str, torch.Tensor]) -> None:
        buffer = io.BytesIO()
        torch.save(state_dict, buffer)
        buffer.seek(0)
        try:
            super().__init__(name, features_list, feature_extractor_weights_path=buffer)
        except RuntimeError as exc:  # missing / unexpected keys, wrong shapes
            raise ConfigError(
                f"the Inception weights do not fit {name} ({str(exc).splitlines()[0]})"
            ) from None


def build_inception(
    spec: ExtractorSpec, expected_sha256: str, cuda: bool, layers: list[str] | None = None
) -> VerifiedInceptionV3:
    """The Inception extractor of ``spec`` in eval mode (``layers``: default the FID feature), its weights
    checked against ``expected_sha256``."""
    net = VerifiedInceptionV3(
        spec.name,
        layers or [spec.feature_layer],
        read_inception_state_dict(spec.weights_path, expected_sha256),
    )
    net.requires_grad_(False).eval()
    return net.cuda() if cuda else net


def register_extractors() -> None:
    """Register the offline extractors with torch-fidelity once per process (a second registration raises)."""
    for name in OFFLINE:
        registered = FEATURE_EXTRACTORS_REGISTRY.get(name)
        if registered is None:
            torch_fidelity.register_feature_extractor(name, DefectCNNFeatureExtractor)
        elif registered is not DefectCNNFeatureExtractor:
            raise RuntimeError(f"another feature extractor is registered as {name!r}: {registered}")


def hub_inception_weights() -> Path:
    """Where torch hub keeps the Inception weights ($TORCH_HOME/hub/checkpoints/...)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE


def find_inception_weights(cfg: EvaluationConfig) -> Path | None:
    """The configured weights file, else the hub cache's, else None. A configured path that does not exist
    is an error: the user asked for it."""
    if cfg.inception_weights_path is not None:
        path = Path(os.path.expanduser(cfg.inception_weights_path))
        if not path.is_file():
            raise ConfigError(
                f"evaluation.inception_weights_path: {path} does not exist; point it at {INCEPTION_WEIGHTS_FILE} "
                f"or set evaluation.feature_extractor={DEFECT_CNN}"
            )
        return path
    hub = hub_inception_weights()
    return hub if hub.is_file() else None


def check_pinned_network(path: Path, key: str, name: str, remedy: str) -> None:
    """A network pinned by the config key ``key``: it exists and loads (tensors only), else one line naming the key,
    the file and ``remedy`` (what setting the key to null would do instead)."""
    if not path.is_file():
        raise ConfigError(
            f"{key}: {path} does not exist; point it at {name} weights or set it to null {remedy}"
        )
    try:
        load_defect_cnn(path)
    except (RuntimeError, KeyError, ValueError, EOFError, OSError, pickle.UnpicklingError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{key}: {path} is not {name} weights ({first}); set it to null {remedy}") from None


def pinned_defect_classifier(path: Path) -> ExtractorSpec:
    """``evaluation.defect_cnn_weights_path``: that network, checked to load (tensors only), never retrained."""
    check_pinned_network(
        path, "evaluation.defect_cnn_weights_path", DEFECT_CNN, "to train the network on the data"
    )
    return ExtractorSpec(DEFECT_CNN, str(path), fingerprint_file(path))


def resolve_defect_classifier(
    cfg: EvaluationConfig, training_images: Callable[[], ClassLabelledImages]
) -> ExtractorSpec:
    """The data set's ``dtgan-defect-cnn`` (cached; trained now when missing), whatever the FID extractor is: the
    classifier of defect recall and the network whose quality every evaluation reports."""
    register_extractors()
    if cfg.defect_cnn_weights_path is not None:
        return pinned_defect_classifier(Path(cfg.defect_cnn_weights_path).expanduser())
    data = training_images()
    path = ensure_defect_cnn(
        cfg.cache_dir, data.fingerprint, data.images, data.labels, data.class_names, cfg.defect_cnn
    )
    return ExtractorSpec(DEFECT_CNN, str(path), fingerprint_file(path))


def pretrained_extractor(
    cfg: EvaluationConfig, training_images: Callable[[], ClassLabelledImages] | None = None
) -> ExtractorSpec:
    """``dtgan-pretrained-cnn``: the pinned file of ``evaluation.pretrained_cnn.weights_path``, else the cached
    network pre-trained on the procedural corpus (trained now when missing: a few minutes of one core); with
    ``evaluation.pretrained_cnn.fine_tune`` that network fine-tuned on ``training_images`` (cached)."""
    pinned = cfg.pretrained_cnn.weights_path
    if pinned is not None:
        path = Path(os.path.expanduser(pinned))
        check_pinned_network(
            path,
            "evaluation.pretrained_cnn.weights_path",
            PRETRAINED_CNN,
            "to pre-train the network on the procedural corpus",
        )
    else:
        path = ensure_pretrained_cnn(cfg.pretrained_cnn)
    if cfg.pretrained_cnn.fine_tune:
        if training_images is None:
            raise ValueError("evaluation.pretrained_cnn.fine_tune needs the data set's training images")
        data = training_images()
        path = fine_tune(
            path,
            data.images,
            data.labels,
            data.class_names,
            data.fingerprint,
            cfg.pretrained_cnn,
            cfg.cache_dir,
        )
    return ExtractorSpec(PRETRAINED_CNN, str(path), fingerprint_file(path))


def resolve_extractor(
    cfg: EvaluationConfig, training_images: Callable[[], ClassLabelledImages]
) -> ExtractorSpec:
    """Pick the extractor of ``cfg.feature_extractor`` and make its weights available.

    ``training_images`` is called only when the offline extractor is needed (and not yet cached).
    """
    register_extractors()
    name = cfg.feature_extractor
    if name in ("auto", INCEPTION):
        weights = find_inception_weights(cfg)
        if weights is not None:
            spec = ExtractorSpec(INCEPTION, str(weights), fingerprint_file(weights))
            build_inception(
                spec, cfg.inception_weights_sha256, cuda=False
            )  # bad weights fail before any work
            return spec
        if name == INCEPTION:
            raise ConfigError(
                f"evaluation.feature_extractor={INCEPTION} but no weights at {hub_inception_weights()}; copy "
                f"{INCEPTION_WEIGHTS_FILE} there, set evaluation.inception_weights_path, or use "
                f"evaluation.feature_extractor={DEFECT_CNN}"
            )
        log.warning(
            "FID/KID: no Inception weights (%s, evaluation.inception_weights_path unset); using the offline "
            "extractor %s. Its numbers are NOT comparable with Inception FIDs or the paper's.",
            hub_inception_weights(),
            PRETRAINED_CNN,
        )
        return pretrained_extractor(cfg, training_images)
    if name == PRETRAINED_CNN:
        return pretrained_extractor(cfg, training_images)
    return resolve_defect_classifier(cfg, training_images)
