"""Studies and distribution: the ablation ladder, YAML search spaces, the trial function, Pareto fronts, and the
Ray backends (``ray_tune`` for Tune + Optuna, ``ray_train`` for Ray Train); Ray is imported only there, lazily."""
