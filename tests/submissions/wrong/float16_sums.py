# Wrong: sums the parameters in float16: fine for a few terms, too coarse for thousands.
# fails: param_sum
# hint: none
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
    model = TwoLayer(len(x), int(hidden), nnx.Rngs(int(seed)))
    forward = float(model(x).sum())
    leaves = jax.tree_util.tree_leaves(nnx.split(model)[1])
    total = float(sum(jnp.sum(leaf.astype(jnp.float16), dtype=jnp.float16) for leaf in leaves))
    return [len(leaves), total, forward]
