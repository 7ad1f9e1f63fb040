#!/usr/bin/env python3
"""The slow upstream of scripts/bench-proxy, and its client.

  slow_upstream.py PORT DELAY       an HTTP/1.1 server on 127.0.0.1:PORT that
                                    answers every request after DELAY seconds
                                    (keep-alive, asyncio: any number at once)
  slow_upstream.py --client PORT N NAME
                                    N concurrent connections, one GET each, to
                                    127.0.0.1:PORT; prints the wall time until
                                    every answer is in, and how many were 200
"""
import asyncio
import sys
import time

BODY = b"slow hello\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)


async def serve(port, delay):
    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if length:
                    await reader.readexactly(length)
                await asyncio.sleep(delay)
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=8192)
    async with server:
        await server.serve_forever()


async def one(port):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 60)
        writer.close()
        return data.startswith(b"HTTP/1.1 200")
    except (OSError, asyncio.TimeoutError):
        return False


async def clients(port, n, name):
    began = time.monotonic()
    results = await asyncio.gather(*(one(port) for _ in range(n)))
    took = time.monotonic() - began
    print(f"{name:16s} {n:5d} concurrent: {took:6.3f} s wall, {sum(results)} of {n} answered 200",
          flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--client":
        asyncio.run(clients(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
    else:
        asyncio.run(serve(int(sys.argv[1]), float(sys.argv[2])))
