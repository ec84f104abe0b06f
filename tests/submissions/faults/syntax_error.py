# Fault: a syntax error on line 6 (a missing closing parenthesis).
import jax
from flax import nnx

def graphdef_vs_state(seed, x, features, hidden):
    model = nnx.Linear(len(x), int(hidden), rngs=nnx.Rngs(int(seed))
    return [4, 0.0, 0.0]
