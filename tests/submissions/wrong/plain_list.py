# Wrong: keeps the layers in a plain Python list, which Flax refuses with a 25-line message.
# fails: exception
# hint: plain_list
import jax
import jax.numpy as jnp
from flax import nnx


class TwoLayer(nnx.Module):
    def __init__(self, din, hidden, rngs):
        self.layers = [nnx.Linear(din, hidden, rngs=rngs), nnx.Linear(hidden, hidden, rngs=rngs)]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def graphdef_vs_state(seed, x, features, hidden):
    model = TwoLayer(len(x), int(hidden), nnx.Rngs(int(seed)))
    forward = float(model(x).sum())
    leaves = jax.tree_util.tree_leaves(nnx.split(model)[1])
    total = float(sum(jnp.sum(leaf) for leaf in leaves))
    return [len(leaves), total, forward]
