# Correct, in another style than the reference: a loop and a tuple.
def vector_stats(x, k):
    total = 0.0
    for value in x:
        total += value * k
    return (len(x), total, max(abs(v) for v in x))
