#!/usr/bin/python3
"""The router of scripts/netns-cluster when it adds delay, jitter or loss (this kernel has no netem).

Runs in the cluster's router namespace: creates a TUN device, then for every IP packet the kernel
routes into it (everything between the hosts, by policy routing) waits `delay` plus a uniform
jitter in [-jitter, +jitter] (so packets may be reordered), drops it with probability `loss`, and
writes it back into the TUN device, from where the kernel routes it on to its host. Test tooling,
not part of Roundhouse; single-threaded, so it adds its own few tens of microseconds and caps the
throughput at what one Python thread moves (tens of MB/s): the cluster's `status` and the note
measure what it really adds.

Usage: netns-forwarder.py TUN_NAME DELAY_US JITTER_US LOSS SEED
"""
import fcntl
import heapq
import os
import random
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def main():
    name, delay_us, jitter_us, loss, seed = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    os.set_blocking(fd, False)
    rnd = random.Random(seed)
    pending = []  # (due, seq, packet)
    seq = 0
    stats = {"forwarded": 0, "dropped": 0}
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    print(f"netns-forwarder: {name} up, delay {delay_us} us, jitter {jitter_us} us, loss {loss}", flush=True)
    while not stop:
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, pkt = heapq.heappop(pending)
            try:
                os.write(fd, pkt)
                stats["forwarded"] += 1
            except BlockingIOError:
                heapq.heappush(pending, (now + 1e-5, seq, pkt))
                seq += 1
                break
        timeout = max(0.0, pending[0][0] - time.monotonic()) if pending else 0.5
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
        except InterruptedError:
            continue
        if not ready:
            continue
        while True:
            try:
                pkt = os.read(fd, 65536)
            except BlockingIOError:
                break
            if loss > 0 and rnd.random() < loss:
                stats["dropped"] += 1
                continue
            extra = delay_us + (rnd.uniform(-jitter_us, jitter_us) if jitter_us > 0 else 0.0)
            heapq.heappush(pending, (time.monotonic() + max(0.0, extra) / 1e6, seq, pkt))
            seq += 1
    print(f"netns-forwarder: stopped; forwarded {stats['forwarded']}, dropped {stats['dropped']}", flush=True)


if __name__ == "__main__":
    main()
