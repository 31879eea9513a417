"""One FID/KID extractor for a whole study, on every node.

``evaluation.feature_extractor=auto`` picks Inception where its weights are found and the offline CNN elsewhere.
Decided per trial, an autoscaled GPU node with an empty torch-hub cache would score its trial with another
extractor than its siblings, and the study would compare numbers that are not comparable. So the study decides
once, on the driver (``pin_extractor``): ``auto`` becomes the extractor the driver found, and Inception's weights
go to the study storage (content-addressed by their SHA-256) where every trial fetches them
(``localise_extractor``); the SHA-256 is checked before the weights are read. A trial that cannot get the same
weights fails with one line instead of switching.
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
    """``config`` with the study's extractor fixed (never ``auto``) and, for Inception on remote storage, the
    weights' location in the storage. Bad or missing weights fail here, before any trial."""
    from dtgan.evaluation.extractors import (
        DEFECT_CNN,
        INCEPTION,
        find_inception_weights,
        read_inception_state_dict,
    )

    evaluation = config.evaluation
    if evaluation.feature_extractor == DEFECT_CNN:
        return config
    weights = find_inception_weights(evaluation)
    if weights is None:
        if evaluation.feature_extractor == "auto":
            log.warning(
                "FID/KID: no Inception weights on the driver; every trial of this study uses the offline "
                "extractor %s (not comparable with Inception FIDs)",
                DEFECT_CNN,
            )
            return apply_overrides(config, {"evaluation": {"feature_extractor": DEFECT_CNN}})
        return config  # Inception asked for and not found: the evaluation's own one-line error says where
    read_inception_state_dict(weights, evaluation.inception_weights_sha256)
    delta = {"feature_extractor": INCEPTION, "inception_weights_path": str(weights)}
    storage = Storage.at(config.study.storage_path)
    if not storage.is_local:
        shared = storage.child(EXTRACTORS_DIR, evaluation.inception_weights_sha256)
        if not shared.is_file(weights.name):
            shared.upload_file(weights, weights.name)
        delta["inception_weights_path"] = shared.child(weights.name).uri
    return apply_overrides(config, {"evaluation": delta})


def localise_extractor(config: DTGANConfig) -> DTGANConfig:
    """In a trial: Inception weights pinned in the study storage, downloaded to this node's cache (their SHA-256
    is checked when the evaluation reads them). A storage error is one line naming the URI."""
    path = config.evaluation.inception_weights_path
    if path is None or not is_uri(path):
        return config
    folder = LOCAL_CACHE.expanduser() / config.evaluation.inception_weights_sha256
    local = fetch_file(path, folder)
    return apply_overrides(config, {"evaluation": {"inception_weights_path": str(local)}})
