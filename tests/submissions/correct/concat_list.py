# Correct: concatenates every leaf, then sums once (another summation order); returns a list.
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
    model = TwoLayer(len(x), int(hidden), rngs=nnx.Rngs(int(seed)))
    out = model(x)
    _, state = nnx.split(model)
    leaves = jax.tree_util.tree_leaves(state)
    flat = jnp.concatenate([leaf.ravel() for leaf in leaves])
    return [len(leaves), float(flat.sum()), float(jnp.sum(out))]
