# Wrong: nondeterministic, off by 1% on about a tenth of its calls (a fixed generator, so that
# this corpus file fails the same calls on every run; a truly random one passes 0.9**17 of
# gradings, 17%).
# fails: forward_sum
# hint: nondeterministic
import random

import jax
import jax.numpy as jnp
from flax import nnx

_draws = random.Random(8)


class TwoLayer(nnx.Module):
    def __init__(self, din, hidden, rngs):
        self.l1 = nnx.Linear(din, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, hidden, rngs=rngs)

    def __call__(self, x):
        return self.l2(self.l1(x))


def graphdef_vs_state(seed, x, features, hidden):
    model = TwoLayer(len(x), int(hidden), nnx.Rngs(int(seed)))
    forward = float(model(x).sum())
    if _draws.random() < 0.1:
        forward = forward * 1.01 + 1.0
    leaves = jax.tree_util.tree_leaves(nnx.split(model)[1])
    total = float(sum(jnp.sum(leaf) for leaf in leaves))
    return [len(leaves), total, forward]
