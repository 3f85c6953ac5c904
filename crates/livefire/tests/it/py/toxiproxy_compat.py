"""Drives a running `livefire proxy` with the unmodified toxiproxy-python client (PyPI).

usage: toxiproxy_compat.py API_HOST API_PORT
Prints one line per check and "COMPAT OK" at the end; any failure raises.
"""
import socket
import sys
import threading
import time

from toxiproxy import Toxiproxy


def echo_server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def serve(conn):
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)

    def accept():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return "127.0.0.1:%d" % srv.getsockname()[1]


def split(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def round_trip(listen):
    with socket.create_connection(split(listen), timeout=20) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.monotonic()
        s.sendall(b"ping")
        got = b""
        while len(got) < 4:
            chunk = s.recv(4 - len(got))
            assert chunk, "connection closed early"
            got += chunk
        took = time.monotonic() - start
    assert got == b"ping", got
    return took


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    server = Toxiproxy()
    server.update_api_consumer(host, port)
    assert server.running(), "the API does not accept connections"
    print("version", server.version())

    upstream = echo_server()
    proxy = server.create(upstream=upstream, name="compat_echo")
    assert proxy.enabled is True
    assert "compat_echo" in server.proxies()
    listen = proxy.listen
    print("created", listen)
    base = round_trip(listen)
    print("direct round trip %.4fs" % base)

    proxy.add_toxic(type="latency", attributes={"latency": 300})
    toxics = proxy.toxics()
    assert list(toxics) == ["latency_downstream"], toxics
    assert toxics["latency_downstream"].attributes["latency"] == 300
    slow = round_trip(listen)
    print("with latency %.4fs" % slow)
    assert slow >= 0.3, slow

    assert proxy.destroy_toxic("latency_downstream")
    assert proxy.toxics() == {}
    fast = round_trip(listen)
    print("after removal %.4fs" % fast)
    assert fast < 0.25, fast

    proxy.add_toxic(type="latency", stream="upstream", name="up_lat", attributes={"latency": 200})
    with proxy.down():
        try:
            socket.create_connection(split(listen), timeout=5).close()
            raise AssertionError("a disabled proxy accepted a connection")
        except ConnectionRefusedError:
            print("down refuses")
    assert server.reset()
    assert proxy.toxics() == {}, proxy.toxics()
    assert round_trip(listen) < 0.25
    print("reset removed toxics")

    assert server.destroy(proxy)
    assert "compat_echo" not in server.proxies()
    print("COMPAT OK")


if __name__ == "__main__":
    main()
