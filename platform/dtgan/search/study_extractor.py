"""One FID/KID extractor and one defect classifier for a whole study, on every node.

``evaluation.feature_extractor=auto`` picks Inception where its weights are found and the offline network
pre-trained on the procedural corpus (``dtgan-pretrained-cnn``) elsewhere; the data set's own CNN
(``dtgan-defect-cnn``, always the classifier of defect recall) is trained where it is missing, and so is the
pretrained one. Decided per trial, an autoscaled GPU node with an empty cache would score its trial with other
networks than its siblings (and pre-train them again), and the study would compare numbers that are not
comparable. So the study decides once, on the driver (``pin_extractor``): ``auto`` becomes the extractor the
driver found, the driver trains (or finds cached) the offline networks, and all are pinned by path. With remote
storage the weights go to the study storage, content-addressed (``extractors/<sha256>/``), where every trial
fetches them (``localise_extractor``); Inception's SHA-256 is checked before its weights are read. A trial that
cannot get the same weights fails with one line instead of switching or retraining.
"""

from __future__ import annotations

import logging
from pathlib import Path

from dtgan.config.root import DTGANConfig
from dtgan.search.ladder import apply_overrides
from dtgan.storage import Storage, fetch_file, is_uri

log = logging.getLogger(__name__)

EXTRACTORS_DIR = "extractors"  # under the study storage: <storage>/extractors/<sha256>/<weights file>
LOCAL_CACHE = Path("~/.cache/dtgan/extractors")


def pin_extractor(config: DTGANConfig) -> DTGANConfig:
    """``config`` with the study's FID extractor fixed (never ``auto``) and its networks pinned by path (the
    driver's files, or their copies in a remote storage). Bad or missing weights fail here, before any trial."""
    from dtgan.evaluation.extractors import (
        DEFECT_CNN,
        INCEPTION,
        PRETRAINED_CNN,
        find_inception_weights,
        read_inception_state_dict,
    )
    from dtgan.evaluation.feature_cache import fingerprint_file
    from dtgan.evaluation.pretrained_cnn import ensure_pretrained_cnn

    evaluation = config.evaluation
    storage = Storage.at(config.study.storage_path)
    delta: dict[str, object] = {}
    if evaluation.defect_cnn_weights_path is None:
        cnn = _offline_network(config)
        delta["defect_cnn_weights_path"] = _shared(storage, cnn, fingerprint_file(cnn))
    extractor = evaluation.feature_extractor
    weights = None if extractor in (DEFECT_CNN, PRETRAINED_CNN) else find_inception_weights(evaluation)
    if extractor == "auto" and weights is None:
        log.warning(
            "FID/KID: no Inception weights on the driver; every trial of this study uses the offline "
            "extractor %s (not comparable with Inception FIDs)",
            PRETRAINED_CNN,
        )
        extractor = delta["feature_extractor"] = PRETRAINED_CNN
    if extractor == PRETRAINED_CNN and evaluation.pretrained_cnn.weights_path is None:
        pretrained = ensure_pretrained_cnn(evaluation.pretrained_cnn)  # a few minutes of one core, once
        delta["pretrained_cnn"] = {"weights_path": _shared(storage, pretrained, fingerprint_file(pretrained))}
    if extractor in (DEFECT_CNN, PRETRAINED_CNN) or weights is None:
        # Inception asked for and not found: the evaluation's own one-line error says where
        return apply_overrides(config, {"evaluation": delta})
    read_inception_state_dict(weights, evaluation.inception_weights_sha256)
    delta["feature_extractor"] = INCEPTION
    delta["inception_weights_path"] = _shared(storage, weights, evaluation.inception_weights_sha256)
    return apply_overrides(config, {"evaluation": delta})


def _shared(storage: Storage, weights: Path, digest: str) -> str:
    """Where every trial finds ``weights``: the driver's own file when the storage is a local folder (one
    machine, or a file system every node shares), else a content-addressed copy in the storage."""
    if storage.is_local:
        return str(weights)
    shared = storage.child(EXTRACTORS_DIR, digest)
    if not shared.is_file(weights.name):
        shared.upload_file(weights, weights.name)
    return shared.child(weights.name).uri


def _offline_network(config: DTGANConfig) -> Path:
    """The data set's dtgan-defect-cnn, trained here once (or found in the driver's evaluation cache) on the same
    images and with the same settings as an evaluation would train it."""
    from dtgan.data.parquet_io import read_vocab
    from dtgan.evaluation.extractors import resolve_defect_classifier
    from dtgan.evaluation.inputs import load_evaluation_data, offline_training_images

    data_path = config.data.path
    data = load_evaluation_data(data_path, read_vocab(data_path), config.evaluation, config.model.img_size)
    return Path(
        resolve_defect_classifier(config.evaluation, lambda: offline_training_images(data)).weights_path
    )


def localise_extractor(config: DTGANConfig) -> DTGANConfig:
    """In a trial: the weights pinned in the study storage, downloaded into this node's cache under their
    content address (Inception's SHA-256 is checked again when the evaluation reads them). A storage error is
    one line naming the URI."""
    evaluation = config.evaluation
    delta: dict[str, object] = {}
    for key in ("inception_weights_path", "defect_cnn_weights_path"):
        path = getattr(evaluation, key)
        if path is not None and is_uri(path):
            delta[key] = _fetched(path)
    if evaluation.pretrained_cnn.weights_path is not None and is_uri(evaluation.pretrained_cnn.weights_path):
        delta["pretrained_cnn"] = {"weights_path": _fetched(evaluation.pretrained_cnn.weights_path)}
    return apply_overrides(config, {"evaluation": delta}) if delta else config


def _fetched(uri: str) -> str:
    digest = uri.rsplit("/", 2)[-2]  # .../extractors/<digest>/<file>
    return str(fetch_file(uri, LOCAL_CACHE.expanduser() / digest))
