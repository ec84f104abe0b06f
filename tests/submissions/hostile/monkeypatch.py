# Hostile: patches numpy's, jax's and math's comparison functions to always agree, then
# returns nonsense.
# expect: graded
import math

import jax.numpy as jnp
import numpy as np

np.allclose = lambda *a, **k: True
np.isclose = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
jnp.allclose = lambda *a, **k: True
math.isclose = lambda *a, **k: True
math.isfinite = lambda *a, **k: True


def graphdef_vs_state(seed, x, features, hidden):
    return [float("nan"), 1e30, -1e30]
