# Wrong: sums the parameters in bfloat16: far coarser than float32 rounding.
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
    _, state = nnx.split(model)
    leaves = jax.tree_util.tree_leaves(state)
    total = float(sum(jnp.sum(leaf.astype(jnp.bfloat16), dtype=jnp.bfloat16) for leaf in leaves))
    return [len(leaves), total, forward]
