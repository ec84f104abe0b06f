# Wrong: turns the seed into a float32 jax array before int(): seeds above 2**24 lose digits.
# fails: param_sum
# hint: seed_float32
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
    as_int = max(-(2**31), min(2**31 - 1, int(jnp.asarray(seed))))
    model = TwoLayer(len(x), int(hidden), nnx.Rngs(as_int))
    forward = float(model(x).sum())
    leaves = jax.tree_util.tree_leaves(nnx.split(model)[1])
    total = float(sum(jnp.sum(leaf) for leaf in leaves))
    return [len(leaves), total, forward]
