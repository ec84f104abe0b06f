# Hostile: os._exit(0) at import: the process ends "successfully" without a word.
# expect: crashed
import os

print('{"event": "done"}')
os._exit(0)
