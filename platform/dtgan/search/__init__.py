"""Studies: the ablation ladder, YAML search spaces, the trial function, Pareto fronts, and the Ray Tune adapter."""
