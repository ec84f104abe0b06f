# Correct: takes the state with nnx.state(model) rather than nnx.split; returns a numpy array.
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
    forward = model(x).sum()
    state = nnx.state(model)
    leaves = jax.tree_util.tree_leaves(state)
    total = np.sum([np.sum(np.asarray(leaf)) for leaf in leaves])
    return np.array([len(leaves), total, forward], dtype=np.float64)
