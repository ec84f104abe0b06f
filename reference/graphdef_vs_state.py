"""Reference solution for problems/graphdef_vs_state.toml. Not for students."""

import jax
import jax.numpy as jnp
from flax import nnx


class TwoLayer(nnx.Module):
    def __init__(self, in_features: int, hidden: int, *, rngs: nnx.Rngs) -> None:
        self.l1 = nnx.Linear(in_features, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, hidden, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.l2(self.l1(x))


def _build(seed: float, x: jax.Array, hidden: float) -> TwoLayer:
    return TwoLayer(len(x), int(hidden), rngs=nnx.Rngs(int(seed)))


def graphdef_vs_state(seed: float, x: jax.Array, features: float, hidden: float) -> jax.Array:
    model = _build(seed, x, hidden)
    forward_output_sum = float(model(x).sum())
    _graphdef, state = nnx.split(model)
    leaves = jax.tree_util.tree_leaves(state)
    total_param_sum = float(sum(jnp.sum(leaf) for leaf in leaves))
    return jnp.array([float(len(leaves)), total_param_sum, forward_output_sum])


def magnitudes(seed: float, x: jax.Array, features: float, hidden: float) -> list[float]:
    """The scale of each output for its tolerance: the magnitude of what is summed.

    Rounding in a float32 sum is proportional to the sum of |terms|, not to the result, so:
    the parameter count is exact (scale 0); the parameter sum's scale is the sum of |params|;
    the forward sum's scale is the forward pass with |weights|, |biases| and |x|.
    """
    model = _build(seed, x, hidden)
    graphdef, state = nnx.split(model)
    absolute_state = jax.tree_util.tree_map(jnp.abs, state)
    param_scale = float(sum(jnp.sum(leaf) for leaf in jax.tree_util.tree_leaves(absolute_state)))
    forward_scale = float(nnx.merge(graphdef, absolute_state)(jnp.abs(x)).sum())
    return [0.0, param_scale, forward_scale]
