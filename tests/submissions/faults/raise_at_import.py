# Fault: code at the top level raises while the file is imported.
scores = {"a": 1}
print(scores["b"])


def graphdef_vs_state(seed, x, features, hidden):
    return [4, 0.0, 0.0]
