# Correct: a jitted forward pass (nnx.jit) and the leaves summed in reverse order.
import jax
import jax.numpy as jnp
from flax import nnx


class TwoLayer(nnx.Module):
    def __init__(self, din, hidden, rngs):
        self.l1 = nnx.Linear(din, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, hidden, rngs=rngs)

    def __call__(self, x):
        return self.l2(self.l1(x))


@nnx.jit
def forward_sum(model, x):
    return model(x).sum()


def graphdef_vs_state(seed, x, features, hidden):
    model = TwoLayer(int(features), int(hidden), nnx.Rngs(int(seed)))
    forward = float(forward_sum(model, x))
    _, state = nnx.split(model)
    leaves = jax.tree_util.tree_leaves(state)
    total = jnp.float32(0)
    for leaf in reversed(leaves):
        total = total + jnp.sum(leaf)
    return jnp.stack([jnp.float32(len(leaves)), total, jnp.float32(forward)])
