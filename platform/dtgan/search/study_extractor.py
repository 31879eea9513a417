"""One FID/KID extractor and one defect classifier for a whole study, on every node.

``evaluation.feature_extractor=auto`` picks Inception where its weights are found and the offline CNN elsewhere,
and the offline CNN (``dtgan-defect-cnn``, the FID extractor without Inception and always the classifier of
defect recall) is trained where it is missing. Decided per trial, an autoscaled GPU node with an empty cache
would score its trial with other networks than its siblings, and the study would compare numbers that are not
comparable. So the study decides once, on the driver (``pin_extractor``): ``auto`` becomes the extractor the
driver found, the driver trains (or finds cached) the offline CNN, and both are pinned by path. With remote
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
        find_inception_weights,
        read_inception_state_dict,
    )
    from dtgan.evaluation.feature_cache import fingerprint_file

    evaluation = config.evaluation
    storage = Storage.at(config.study.storage_path)
    delta: dict[str, str] = {}
    if evaluation.defect_cnn_weights_path is None:
        cnn = _offline_network(config)
        delta["defect_cnn_weights_path"] = _shared(storage, cnn, fingerprint_file(cnn))
    if evaluation.feature_extractor == DEFECT_CNN:
        return apply_overrides(config, {"evaluation": delta})
    weights = find_inception_weights(evaluation)
    if weights is None:
        if evaluation.feature_extractor == "auto":
            log.warning(
                "FID/KID: no Inception weights on the driver; every trial of this study uses the offline "
                "extractor %s (not comparable with Inception FIDs)",
                DEFECT_CNN,
            )
            delta["feature_extractor"] = DEFECT_CNN
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
    delta = {}
    for key in ("inception_weights_path", "defect_cnn_weights_path"):
        path = getattr(config.evaluation, key)
        if path is not None and is_uri(path):
            digest = path.rsplit("/", 2)[-2]  # .../extractors/<digest>/<file>
            delta[key] = str(fetch_file(path, LOCAL_CACHE.expanduser() / digest))
    return apply_overrides(config, {"evaluation": delta}) if delta else config
