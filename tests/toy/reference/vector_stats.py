"""Reference for the toy problem tests/toy/problems/vector_stats.toml."""

import numpy as np


def vector_stats(x, k):
    return [float(len(x)), float(np.sum(x) * k), float(np.max(np.abs(x)))]


def magnitudes(x, k):
    return [0.0, float(np.sum(np.abs(x)) * abs(k)), float(np.max(np.abs(x)))]
