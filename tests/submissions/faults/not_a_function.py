# Fault: the name is bound to a value, not a function.
graphdef_vs_state = [4, 0.0, 0.0]
