"""wisp's buffer-file format, written by the tests and benchmarks that need a file of waiting
samples (the reader is Sources/WispCore/Telemetry/BufferReplay.swift; this is not a command).
bench and drain-bench import it from beside them; the integration tests import it because
Tests/integration/pytest.ini puts this folder on the path.

A file is frames: 0xB7, type, length (2 bytes LE), payload, CRC-32 of type..payload (4 bytes
LE). Type 0 is the header (the property names, comma-separated), 1 a sample record, 2 a
delivered mark (the sample's sequence number)."""
import zlib


def frame(kind, payload):
    body = bytes([kind]) + len(payload).to_bytes(2, "little") + payload
    return b"\xb7" + body + zlib.crc32(body).to_bytes(4, "little")


def header(names):
    return frame(0, ",".join(names).encode())


def sample(seq, time_ms, values):
    """A sample record: `values` are (scaled integer, decimals) pairs, property i = the i-th."""
    record = seq.to_bytes(8, "little") + time_ms.to_bytes(8, "little") + bytes([len(values)])
    for i, (scaled, decimals) in enumerate(values):
        record += bytes([i, decimals]) + scaled.to_bytes(8, "little", signed=True)
    return frame(1, record)


def delivered(seq):
    return frame(2, seq.to_bytes(8, "little"))
