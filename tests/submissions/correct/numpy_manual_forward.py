# Correct: recomputes the forward pass by hand in float64 numpy from the split state's arrays,
# walking the state as a nested mapping.
import jax
import numpy as np
from flax import nnx


class TwoLayer(nnx.Module):
    def __init__(self, din, hidden, rngs):
        self.l1 = nnx.Linear(din, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, hidden, rngs=rngs)

    def __call__(self, x):
        return self.l2(self.l1(x))


def graphdef_vs_state(seed, x, features, hidden):
    model = TwoLayer(len(x), int(hidden), nnx.Rngs(int(seed)))
    _, state = nnx.split(model)
    arrays = {
        name: {p: np.asarray(state[name][p][...], dtype=np.float64) for p in ("kernel", "bias")}
        for name in ("l1", "l2")
    }
    h = np.asarray(x, dtype=np.float64) @ arrays["l1"]["kernel"] + arrays["l1"]["bias"]
    y = h @ arrays["l2"]["kernel"] + arrays["l2"]["bias"]
    leaves = jax.tree_util.tree_leaves(state)
    total = sum(float(a.sum()) for layer in arrays.values() for a in layer.values())
    return [len(leaves), total, float(y.sum())]
