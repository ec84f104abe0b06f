# Hostile: sys.exit(0) at import, after claiming success.
# expect: import_error
import sys

print("All tests passed: 14/14")
sys.exit(0)
