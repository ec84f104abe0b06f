# Wrong: builds one model per shape and keeps it, whatever the seed of later calls.
# fails: param_sum
# hint: calls_depend
import jax
import jax.numpy as jnp
from flax import nnx

_models = {}


class TwoLayer(nnx.Module):
    def __init__(self, din, hidden, rngs):
        self.l1 = nnx.Linear(din, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, hidden, rngs=rngs)

    def __call__(self, x):
        return self.l2(self.l1(x))


def graphdef_vs_state(seed, x, features, hidden):
    shape = (len(x), int(hidden))
    if shape not in _models:
        _models[shape] = TwoLayer(len(x), int(hidden), nnx.Rngs(int(seed)))
    model = _models[shape]
    forward = float(model(x).sum())
    leaves = jax.tree_util.tree_leaves(nnx.split(model)[1])
    total = float(sum(jnp.sum(leaf) for leaf in leaves))
    return [float(len(leaves)), total, forward]
