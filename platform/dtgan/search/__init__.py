"""Studies: the ablation ladder, YAML search spaces, the trial function (``trial``), Pareto fronts, the study
driver and runner, and the Ray Tune + Optuna backend (``ray_tune``, the only place importing Ray Tune, lazily).
Training itself, in process or on Ray Train workers, is ``dtgan.training.launch``."""
