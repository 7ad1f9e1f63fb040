#!/usr/bin/env python3
"""Slowloris load: N connections trickle header bytes while one normal client
keeps asking; prints the normal client's latency percentiles and what the
slow connections got back (ringhttpd answers 408 after request_timeout_ms).

usage: scripts/slowloris.py --port P [--conns 500] [--duration 15] [--interval 0.2]
Sends only to 127.0.0.1; bounded in connections and time.
"""
import argparse, asyncio, statistics, time


async def slow_client(port, interval, deadline, outcome):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        outcome["refused"] += 1
        return
    head = b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: "
    try:
        writer.write(head)
        await writer.drain()
        while time.monotonic() < deadline:
            try:  # look for an answer first: after it the server closes
                data = await asyncio.wait_for(reader.read(256), interval)
            except asyncio.TimeoutError:
                writer.write(b"a")
                await writer.drain()
                continue
            status = data[9:12].decode() if data.startswith(b"HTTP/1.1 ") else "closed"
            outcome[status] = outcome.get(status, 0) + 1
            return
        outcome["still open"] = outcome.get("still open", 0) + 1
    except (ConnectionError, OSError):
        outcome["reset"] = outcome.get("reset", 0) + 1
    finally:
        writer.close()


async def normal_client(port, deadline, latencies, errors):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET /healthz HTTP/1.1\r\nHost: normal\r\n\r\n"
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        try:
            writer.write(request)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            latencies.append((time.monotonic() - t0) * 1000)
        except Exception:
            errors.append(1)
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.01)
    writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, default=500)
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--interval", type=float, default=0.2)
    a = ap.parse_args()
    deadline = time.monotonic() + a.duration
    outcome = {"refused": 0}
    latencies, errors = [], []
    slow = [slow_client(a.port, a.interval, deadline, outcome) for _ in range(a.conns)]
    await asyncio.gather(normal_client(a.port, deadline, latencies, errors), *slow)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    print(f"slow connections: {a.conns}, outcome: {outcome}")
    print(f"normal client: {len(latencies)} requests, {len(errors)} errors, "
          f"p50 {q[49]:.2f} ms, p99 {q[98]:.2f} ms, max {max(latencies):.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
