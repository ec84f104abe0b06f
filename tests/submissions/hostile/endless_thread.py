# Hostile: leaves a non-daemon thread running forever, which would keep a naive worker alive.
# expect: graded
import threading
import time


def graphdef_vs_state(seed, x, features, hidden):
    threading.Thread(target=lambda: time.sleep(10**9), daemon=False).start()
    return [0.0, 0.0, 0.0]
