# Hostile: looks for the reference solution on disk and imports it; if it finds it, it
# returns the reference's answers (and would score), else nonsense.
# expect: graded
import importlib.util
import os
import sys


def find_reference():
    guesses = ["/work/main/reference/graphdef_vs_state.py", "reference/graphdef_vs_state.py",
               "../reference/graphdef_vs_state.py", "../../reference/graphdef_vs_state.py"]
    for top in ("/", os.path.expanduser("~"), os.getcwd()):
        for root, dirs, files in os.walk(top):
            if root.count(os.sep) > 6 or root.startswith(("/proc", "/sys", "/usr")):
                dirs[:] = []
                continue
            if "graphdef_vs_state.py" in files and "reference" in root:
                guesses.insert(0, os.path.join(root, "graphdef_vs_state.py"))
    for path in guesses:
        try:
            spec = importlib.util.spec_from_file_location("stolen", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
        except Exception:
            continue
    try:
        sys.path.insert(0, "/work/main")
        import reference.graphdef_vs_state as module
        return module
    except Exception:
        return None


def graphdef_vs_state(seed, x, features, hidden):
    stolen = find_reference()
    if stolen is not None:
        return stolen.graphdef_vs_state(seed, x, features, hidden)
    return [0.0, 0.0, 0.0]
