# Fault: calls sys.exit(0) at import, as if to pretend everything went fine.
import sys

print("All tests passed! Score: 100/100")
sys.exit(0)
