# Wrong: converts the seed with int() but hands nnx.Rngs a JAX int32 array, which it refuses.
# fails: exception
# hint: invalid_rng
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
    model = TwoLayer(len(x), int(hidden), nnx.Rngs(jnp.int32(int(seed))))
    forward = float(model(x).sum())
    _, state = nnx.split(model)
    leaves = jax.tree_util.tree_leaves(state)
    total = float(sum(jnp.sum(leaf) for leaf in leaves))
    return [len(leaves), total, forward]
