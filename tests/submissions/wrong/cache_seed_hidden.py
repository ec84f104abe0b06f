# Wrong: caches its result by (seed, hidden) and ignores x when the cache hits.
# fails: forward_sum
# hint: calls_depend
import jax
import jax.numpy as jnp
from flax import nnx

_cache = {}


class TwoLayer(nnx.Module):
    def __init__(self, din, hidden, rngs):
        self.l1 = nnx.Linear(din, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, hidden, rngs=rngs)

    def __call__(self, x):
        return self.l2(self.l1(x))


def graphdef_vs_state(seed, x, features, hidden):
    key = (seed, hidden)
    if key not in _cache:
        model = TwoLayer(len(x), int(hidden), nnx.Rngs(int(seed)))
        forward = float(model(x).sum())
        leaves = jax.tree_util.tree_leaves(nnx.split(model)[1])
        total = float(sum(jnp.sum(leaf) for leaf in leaves))
        _cache[key] = [float(len(leaves)), total, forward]
    return _cache[key]
