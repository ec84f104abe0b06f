# Correct: a plain sequential float32 accumulation, element by element (the worst summation
# order a reasonable student would write).
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
    out = np.asarray(model(x))
    forward = np.float32(0)
    for value in out:
        forward = np.float32(forward + value)
    leaves = jax.tree_util.tree_leaves(nnx.split(model)[1])
    total = np.float32(0)
    for leaf in leaves:
        for value in np.asarray(leaf).ravel():
            total = np.float32(total + value)
    return [len(leaves), float(total), float(forward)]
