# Correct: accumulates every parameter in float64 with math.fsum (exactly rounded), and the
# forward sum in float64 too; returns plain Python floats.
import math

import jax
import numpy as np
from flax import nnx


class TwoLayer(nnx.Module):
    def __init__(self, din, hidden, rngs):
        self.l1 = nnx.Linear(din, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, hidden, rngs=rngs)

    def __call__(self, x):
        return self.l2(self.l1(x))


def graphdef_vs_state(seed, x, features, hidden):
    model = TwoLayer(len(x), int(hidden), nnx.Rngs(int(seed)))
    forward = math.fsum(np.asarray(model(x), dtype=np.float64).tolist())
    leaves = jax.tree_util.tree_leaves(nnx.split(model)[1])
    total = math.fsum(v for leaf in leaves for v in np.asarray(leaf, dtype=np.float64).ravel())
    return [float(len(leaves)), total, forward]
