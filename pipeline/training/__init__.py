"""Training the stage classifiers: synthetic organisations with known stages (synthetic.py), the
training frames and the cache of fitted models beside the database (cache.py), and the held-out
evaluation (evaluation.py). The pipeline drives it; models/ only fits and predicts on frames."""
