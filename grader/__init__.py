"""grader: an automated grader for JAX/Flax exercises."""

__version__ = "0.1.0"
