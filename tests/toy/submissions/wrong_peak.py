# Wrong: the peak ignores negative elements.
def vector_stats(x, k):
    return [len(x), float(sum(x)) * k, float(max(x))]
