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


# Known mistakes, run on the same cases as the reference so that the grader can tell a
# student which one their outputs match (see [[mistakes]] in the spec). Not for students.


class _Variant(nnx.Module):
    def __init__(
        self,
        din: int,
        hidden: int,
        out: int,
        rngs: nnx.Rngs,
        *,
        use_bias: bool,
        order: tuple[str, str],
        relu: bool,
    ) -> None:
        make = {
            "l1": lambda: nnx.Linear(din, hidden, use_bias=use_bias, rngs=rngs),
            "l2": lambda: nnx.Linear(hidden, out, use_bias=use_bias, rngs=rngs),
        }
        for name in order:
            setattr(self, name, make[name]())
        self.relu = relu

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.l1(x)
        return self.l2(nnx.relu(h) if self.relu else h)


def _variant(
    seed: float,
    x: jax.Array,
    hidden: float,
    *,
    rng_seed: int | None = None,
    use_bias: bool = True,
    order: tuple[str, str] = ("l1", "l2"),
    relu: bool = False,
    out_width: int | None = None,
    reduce: str = "sum",
    count: str = "leaves",
    swap: bool = False,
) -> list[float]:
    width = int(hidden)
    model = _Variant(
        len(x),
        width,
        out_width or width,
        nnx.Rngs(int(seed) if rng_seed is None else rng_seed),
        use_bias=use_bias,
        order=order,
        relu=relu,
    )
    y = model(x)
    forward = float(y.mean() if reduce == "mean" else y.sum())
    _graphdef, state = nnx.split(model)
    leaves = jax.tree_util.tree_leaves(state)
    total = float(sum(jnp.mean(v) if reduce == "mean" else jnp.sum(v) for v in leaves))
    number = float(len(state.keys()) if count == "keys" else len(leaves))
    return [number, forward, total] if swap else [number, total, forward]


def mistake_state_keys(seed, x, features, hidden):
    return _variant(seed, x, hidden, count="keys")


def mistake_no_bias(seed, x, features, hidden):
    return _variant(seed, x, hidden, use_bias=False)


def mistake_ignore_seed(seed, x, features, hidden):
    return _variant(seed, x, hidden, rng_seed=0)


def mistake_seed_mod_1000(seed, x, features, hidden):
    return _variant(seed, x, hidden, rng_seed=int(seed) % 1000)


def mistake_swapped(seed, x, features, hidden):
    return _variant(seed, x, hidden, swap=True)


def mistake_relu(seed, x, features, hidden):
    return _variant(seed, x, hidden, relu=True)


def mistake_layer_order(seed, x, features, hidden):
    return _variant(seed, x, hidden, order=("l2", "l1"))


def mistake_mean(seed, x, features, hidden):
    return _variant(seed, x, hidden, reduce="mean")


def mistake_l2_input_width(seed, x, features, hidden):
    return _variant(seed, x, hidden, out_width=len(x))


def mistake_seed_float32(seed, x, features, hidden):
    # float32 keeps integers exactly up to 2**24; 2**31 - 1 rounds up to 2**31, past int32.
    rounded = int(jnp.float32(seed))
    return _variant(seed, x, hidden, rng_seed=max(-(2**31), min(2**31 - 1, rounded)))
