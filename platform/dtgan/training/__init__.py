"""Training: TrainState, the D/G step functions, schedules, EMA, atomic checkpoints and the loop."""
