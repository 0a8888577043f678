"""Outages: every sample kept across a broker outage and across kill -9 with buffer_file;
fault injection between wisp and mosquitto (black hole, garbage, cuts, delay, TLS)."""
import asyncio
import json
import os
import signal
import socket
import threading
import time

import pytest

from conftest import ROOT, SECRET, VALGRIND, Mosquitto, Observer, stripped
from test_agent import HISTORY, POST, SAMPLES, device

EMBEDDED = VALGRIND + [str(stripped(ROOT / ".build-embedded/release/wisp", "embedded") if VALGRIND else ROOT / ".build-embedded/release/wisp")]
OUTAGE = int(os.environ.get("WISP_OUTAGE_SECONDS", "20"))


def sample_ids(observer):
    """Sequence numbers of the samples received, in arrival order: a post's id, or for a
    history batch its id (the first sample's) and the ones after it, one per sample (a batch
    holds consecutive waiting samples; their times must not fall)."""
    ids = []
    with observer.lock:
        for t, p in observer.messages:
            body = json.loads(p)
            if t == POST:
                ids.append(int(body["id"]))
            elif t == HISTORY:
                times = [next(iter(s.values()))["time"] for s in body["params"][0]["properties"]]
                assert times == sorted(times), f"a batch out of order: {times}"
                ids += range(int(body["id"]), int(body["id"]) + len(times))
    return ids


def assert_complete(ids, first, last):
    """Every sample from first to last arrived, in order; repeats only as QoS 1 resends."""
    unique = sorted(set(ids))
    assert unique == list(range(first, last + 1)), f"missing: {sorted(set(range(first, last + 1)) - set(ids))}"
    order = []
    for i in ids:
        if i not in order:
            order.append(i)
    assert order == unique, "first deliveries out of order"
    return len(ids) - len(unique)


@pytest.fixture
def durable(tmp_path, certs):
    m = Mosquitto(tmp_path, certs, persistent=True)
    m.start()
    yield m
    m.stop()


def test_broker_outage_loses_no_sample(durable, keyfile, start_wisp, tmp_path):
    """Broker down for OUTAGE seconds (120 by hand: WISP_OUTAGE_SECONDS=120) while sampling
    every second: afterwards the subscriber has every sample, in order. The observer's
    record is left in observer.jsonl beside mosquitto.log and wisp's log."""
    observer = Observer(durable, topic=SAMPLES, persistent=True)
    try:
        w = start_wisp(EMBEDDED, keyfile(**device(durable, keepalive="30")))
        assert w.wait_log("online", 10)
        time.sleep(3)
        durable.stop()
        time.sleep(OUTAGE)
        durable.start()
        # Reconnect backoff is capped at 60 s (full jitter): allow that plus the catch-up.
        assert w.wait_log("samples buffered while offline", 75), w.log()
        time.sleep(4)
    finally:
        observer.save(tmp_path / "observer.jsonl")
    ids = sample_ids(observer)
    last = max(ids)
    assert last >= OUTAGE + 3
    dups = assert_complete(ids, 1, last)
    print(f"\noutage {OUTAGE} s: {last} samples delivered, {dups} QoS 1 duplicates")
    assert dups <= 4
    observer.close()


def test_buffer_file_survives_kill_9(durable, keyfile, start_wisp, tmp_path):
    observer = Observer(durable, topic=SAMPLES, persistent=True)
    path = keyfile(**device(durable, buffer_file=str(tmp_path / "wisp.buffer")))
    durable.stop()
    first = start_wisp(EMBEDDED, path)
    time.sleep(5.5)
    first.proc.send_signal(signal.SIGKILL)  # mid-run, mid-outage: no chance to save anything
    first.proc.wait()
    second = start_wisp(EMBEDDED, path)
    assert second.wait_log("undelivered samples from before the restart", 5), second.log()
    time.sleep(3)
    durable.start()
    assert second.wait_log("samples buffered while offline", 30), second.log()
    time.sleep(3)
    ids = sample_ids(observer)
    dups = assert_complete(ids, 1, max(ids))
    assert max(ids) >= 8, ids
    print(f"\nkill -9 with buffer_file: {max(ids)} samples delivered, {dups} duplicates")
    observer.close()


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of one broker port, with faults to switch on."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.mode = "pass"          # pass | blackhole | delay
        self.inject = None          # bytes to send to the client once
        self.cut_after = None       # close after this many more server bytes
        self.close_at_hello = False
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        self.server = None
        started = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(asyncio.start_server(self.handle, "127.0.0.1", 0))
            self.port = self.server.sockets[0].getsockname()[1]
            started.set()
            self.loop.run_forever()
        threading.Thread(target=run, daemon=True).start()
        started.wait(5)

    async def handle(self, reader, writer):
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.close()
            return

        async def client_to_server():
            first = True
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if first and self.close_at_hello:
                    writer.close()
                    up_writer.close()
                    return
                first = False
                if self.mode == "blackhole":
                    continue
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def server_to_client():
            while True:
                data = await up_reader.read(65536)
                if not data:
                    break
                if self.mode == "blackhole":
                    continue
                if self.mode == "delay":
                    await asyncio.sleep(0.2)
                if self.cut_after is not None:
                    data = data[:self.cut_after]
                    writer.write(data)
                    await writer.drain()
                    self.cut_after = None
                    writer.close()
                    up_writer.close()
                    return
                writer.write(data)
                if self.inject:
                    writer.write(self.inject)
                    self.inject = None
                await writer.drain()
            writer.close()

        await asyncio.gather(client_to_server(), server_to_client(), return_exceptions=True)

    def close(self):
        async def shutdown():
            # Connections still open (a black hole, say) are cancelled, not dropped pending.
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def proxied(broker):
    p = FaultProxy(broker.ws)
    yield p
    p.close()


def through(proxy, broker, **extra):
    return device(broker, endpoint=f"ws://127.0.0.1:{proxy.port}/mqtt", **extra)


def test_black_hole_is_noticed_within_one_and_a_half_keepalives(broker, proxied, keyfile, start_wisp):
    w = start_wisp(EMBEDDED, keyfile(**through(proxied, broker, keepalive="30", telemetry_interval="5")))
    assert w.wait_log("online", 10)
    proxied.mode = "blackhole"  # half-open: nothing closes, nothing arrives
    start = time.time()
    assert w.wait_log("no PINGRESP in time", 50), w.log()
    noticed = time.time() - start
    assert noticed <= 45, f"noticed after {noticed:.1f} s"
    proxied.mode = "pass"
    deadline = time.time() + 15
    while w.log().count("online: ") < 2 and time.time() < deadline:
        time.sleep(0.1)
    assert w.log().count("online: ") == 2, w.log()
    print(f"\nblack hole noticed after {noticed:.1f} s (keep-alive 30 s)")


@pytest.mark.parametrize("name, garbage, expected", [
    ("reserved WebSocket bits", b"\xf2\x02\x00\x00", "WebSocket protocol error: WebSocket frame with reserved bits set"),
    ("malformed MQTT in a frame", b"\x82\x02\x00\x00", "protocol error from the broker: MQTT packet type 0 is reserved"),
    ("oversized frame", b"\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff" + b"\x31" * 64, "protocol error from the broker"),
])
def test_garbage_drops_the_connection_with_a_reason_and_reconnects(broker, proxied, keyfile, start_wisp, name, garbage, expected):
    w = start_wisp(EMBEDDED, keyfile(**through(proxied, broker, telemetry_interval="1")))
    assert w.wait_log("online", 10)
    proxied.inject = garbage
    assert w.wait_log(expected, 10), w.log()
    deadline = time.time() + 15
    while w.log().count("online: ") < 2 and time.time() < deadline:
        time.sleep(0.1)
    assert w.log().count("online: ") >= 2, w.log()


def test_cut_in_the_middle_of_a_frame_and_delay(broker, proxied, keyfile, start_wisp, observer):
    proxied.mode = "delay"
    w = start_wisp(EMBEDDED, keyfile(**through(proxied, broker, telemetry_interval="1")))
    assert w.wait_log("online", 15), w.log()
    assert observer.wait_for(lambda m: m[0] == POST, 10), "delayed link still delivers"
    proxied.mode = "pass"
    proxied.cut_after = 3   # the next server bytes (a PUBACK frame) arrive cut short
    assert w.wait_log("closed by the other end", 10), w.log()
    deadline = time.time() + 15
    while w.log().count("online: ") < 2 and time.time() < deadline:
        time.sleep(0.1)
    assert w.log().count("online: ") >= 2


def test_close_during_the_tls_handshake(broker, certs, keyfile, start_wisp):
    proxy = FaultProxy(broker.wss)
    proxy.close_at_hello = True
    try:
        values = device(broker, certs, "wss", endpoint=f"wss://localhost:{proxy.port}/mqtt")
        w = start_wisp(EMBEDDED, keyfile(**values))
        assert w.wait_log("TLS handshake with localhost: the connection was closed", 10), w.log()
        proxy.close_at_hello = False
        assert w.wait_log("online", 20), w.log()
    finally:
        proxy.close()


def test_secret_never_reaches_logs_or_check(broker, keyfile, start_wisp):
    """Every Wisp stop() asserts the secret is not in its log; here also the refusal paths."""
    w = start_wisp(EMBEDDED, keyfile(**device(broker, device_secret=SECRET + "x")))
    assert w.wait_log("credentials refused", 10)
    assert SECRET not in w.log()
