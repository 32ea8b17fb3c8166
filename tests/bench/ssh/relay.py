"""A relay for ssh's ProxyCommand that gives a loopback connection a round-trip time.

    ProxyCommand python3 relay.py DELAY_MS HOST PORT

Connects to HOST:PORT and copies stdin to it and it to stdout, holding every chunk for
DELAY_MS in each direction (so a round trip gains 2 × DELAY_MS); order is kept. This kernel
has no netem qdisc, hence a relay.
"""

import os
import queue
import socket
import sys
import threading
import time


def pump(read, write, finish, delay):
    """Reads chunks with `read`, writes each with `write` `delay` seconds after it arrived."""
    held: queue.Queue = queue.Queue()

    def reader():
        while True:
            try:
                data = read()
            except OSError:
                data = b""
            held.put((time.monotonic() + delay, data))
            if not data:
                return

    threading.Thread(target=reader, daemon=True).start()
    while True:
        due, data = held.get()
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if not data:
            finish()
            return
        try:
            write(data)
        except OSError:
            return


def main():
    delay = float(sys.argv[1]) / 1000
    sock = socket.create_connection((sys.argv[2], int(sys.argv[3])))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write_stdout(data):
        view = memoryview(data)
        while view:
            view = view[os.write(1, view):]

    def close_up():
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    up = threading.Thread(target=pump, args=(lambda: os.read(0, 65536), sock.sendall, close_up, delay))
    up.daemon = True
    up.start()
    pump(lambda: sock.recv(65536), write_stdout, lambda: os.close(1), delay)


if __name__ == "__main__":
    main()
