"""Reads dnsperf -v output on stdin and prints "p50/p99" latency in milliseconds."""
import sys

lat = []
for line in sys.stdin:
    parts = line.split()
    # Verbose lines look like: "> NOERROR name A 0.000123"
    if parts and parts[0] == ">" and len(parts) >= 2:
        try:
            lat.append(float(parts[-1]))
        except ValueError:
            pass
if not lat:
    print("n/a")
else:
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    print(f"{p(0.5):.3f}/{p(0.99):.3f} ms")
