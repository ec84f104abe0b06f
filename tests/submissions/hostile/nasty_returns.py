# Hostile: returns a different nasty object for each case.
# expect: graded
import itertools

import jax.numpy as jnp


class Unfloatable:
    def __float__(self):
        raise RuntimeError("no float for you")

    def __array__(self, *args, **kwargs):
        raise RuntimeError("no array for you")


NASTY = itertools.cycle([
    lambda: None,
    lambda: "4, 1.0, 2.0",
    lambda: [4.0, float("nan"), 1.0],
    lambda: [4.0, Unfloatable(), 1.0],
    lambda: Unfloatable(),
    lambda: jnp.zeros(10**8),
    lambda: {"num_leaves": 4},
    lambda: [4.0, 1j, 2.0],
    lambda: [4.0, float("inf"), 1.0],
])


def graphdef_vs_state(seed, x, features, hidden):
    return next(NASTY)()
