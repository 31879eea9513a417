"""Which number a study's early stopping compares, and which objective it stands in for: ``study.intermediate_signal``
read from the config alone (no torch; the signals themselves are :mod:`dtgan.search.intermediate`)."""

from __future__ import annotations

from dtgan import keys
from dtgan.config.root import DTGANConfig
from dtgan.config.study import StudyConfig

# The signals that estimate a downstream classifier's error, and the result key each reports under.
DOWNSTREAM_SIGNALS = {
    "defect_miss": keys.SEARCH_INTERMEDIATE_DEFECT_MISS,
    "downstream_probe": keys.SEARCH_INTERMEDIATE_PROBE,
}


def signal_key(study: StudyConfig) -> str:
    """The result key ASHA compares."""
    return DOWNSTREAM_SIGNALS.get(study.intermediate_signal, keys.SEARCH_INTERMEDIATE_FID)


def stands_in_for(config: DTGANConfig) -> tuple[str, ...]:
    """The single objective the signal estimates in intermediate results (Optuna reads the objective from every
    result): FID-mix for ``fid_mix``, a downstream error for ``defect_miss`` and ``downstream_probe``; () when it
    estimates none."""
    objectives = [o.metric for o in config.study.objectives]
    if len(objectives) != 1:
        return ()
    if config.study.intermediate_signal in DOWNSTREAM_SIGNALS:
        return tuple(objectives) if objectives[0].startswith(f"{keys.DOWNSTREAM_PREFIX}error_") else ()
    return tuple(objectives) if objectives == [keys.fid_key("mix")] else ()


def final_signal(config: DTGANConfig, final: dict[str, float]) -> dict[str, float]:
    """The signal from a trial's full evaluation (what the last ASHA rung compares): FID-mix; 100 - the
    evaluation's defect recall of the mix set over all products; for ``downstream_probe`` the objective itself
    (the full downstream study has run by then)."""
    signal = config.study.intermediate_signal
    if signal == "defect_miss":
        recall = final.get(keys.defect_recall_key("mix"))
        return {} if recall is None else {keys.SEARCH_INTERMEDIATE_DEFECT_MISS: 100.0 * (1.0 - recall)}
    if signal == "downstream_probe":
        value = final.get(config.study.objectives[0].metric)
        return {} if value is None else {keys.SEARCH_INTERMEDIATE_PROBE: value}
    fid = final.get(keys.fid_key("mix"))
    return {} if fid is None else {keys.SEARCH_INTERMEDIATE_FID: fid}
