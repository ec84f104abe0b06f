# Correct: jax.tree_util.tree_reduce over per-leaf sums; returns a tuple.
import operator

import jax
import jax.numpy as jnp
from flax import nnx


class TwoLayer(nnx.Module):
    def __init__(self, din, hidden, *, rngs):
        self.l1 = nnx.Linear(din, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, hidden, rngs=rngs)

    def __call__(self, x):
        h = self.l1(x)
        return self.l2(h)


def graphdef_vs_state(seed, x, features, hidden):
    model = TwoLayer(x.shape[0], int(hidden), rngs=nnx.Rngs(int(seed)))
    forward = float(model(x).sum())
    graphdef, state = nnx.split(model)
    sums = jax.tree_util.tree_map(jnp.sum, state)
    total = jax.tree_util.tree_reduce(operator.add, sums)
    return (float(len(jax.tree_util.tree_leaves(state))), float(total), forward)
