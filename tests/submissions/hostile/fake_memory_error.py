# Hostile: prints what a memory failure prints, on stderr only, and exits: the status must come
# from what happened (an exit with code 3), not from what the file printed.
# expect: crashed
import os
import sys

print("MemoryError: out of memory (RESOURCE_EXHAUSTED, std::bad_alloc)", file=sys.stderr)
sys.stderr.flush()
os._exit(3)
