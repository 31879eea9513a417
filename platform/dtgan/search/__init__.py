"""Search and distribution backends: Ray Train (``ray_train``) and Ray Tune; Ray is imported only here, lazily."""
