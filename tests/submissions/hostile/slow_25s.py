# Hostile: right answers, but each call sleeps 25 s: fine for one case, too slow in total.
# expect: timeout
import time

import jax
import jax.numpy as jnp
from flax import nnx


class TwoLayer(nnx.Module):
    def __init__(self, din, hidden, rngs):
        self.l1 = nnx.Linear(din, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, hidden, rngs=rngs)

    def __call__(self, x):
        return self.l2(self.l1(x))


def graphdef_vs_state(seed, x, features, hidden):
    time.sleep(25)
    model = TwoLayer(len(x), int(hidden), nnx.Rngs(int(seed)))
    forward = float(model(x).sum())
    leaves = jax.tree_util.tree_leaves(nnx.split(model)[1])
    return [len(leaves), float(sum(jnp.sum(leaf) for leaf in leaves)), forward]
