"""The heartbeat table: shared memory the master makes before forking, one
256-byte slot per worker (the layout is _core/heartbeat.h's). A worker's
loop writes its slot; the master reads it for --timeout, and the workers
read each other's to share new connections fairly."""
import mmap
import struct

SLOT_BYTES = 256
FLAGS_OFFSET = 12
REQUEST_OFFSET = 16
RETIRING = 4  # HEARTBEAT_RETIRING
# Room for this many workers at once (a reload runs two generations side
# by side); untouched slots cost no memory.
SLOTS = 1024


class HeartbeatTable:
    def __init__(self, slots=SLOTS):
        self.memory = mmap.mmap(-1, slots * SLOT_BYTES)  # anonymous and shared across fork
        self.free = list(range(slots - 1, -1, -1))

    def acquire(self):
        """A cleared slot for a new worker, or None when all are taken."""
        if not self.free:
            return None
        slot = self.free.pop()
        self.clear(slot)
        return slot

    def release(self, slot):
        """The worker is gone: its slot, cleared, can be given again (a
        worker that crashed left it saying it serves)."""
        self.clear(slot)
        self.free.append(slot)

    def clear(self, slot):
        start = slot * SLOT_BYTES
        self.memory[start:start + SLOT_BYTES] = bytes(SLOT_BYTES)

    def busy_since(self, slot):
        """Monotonic time since which the worker's loop has been running
        callbacks (app code) without going back to wait for events; None
        while it waits, or before it serves (loading the app)."""
        return struct.unpack_from("d", self.memory, slot * SLOT_BYTES)[0] or None

    def retiring(self, slot):
        """Whether the worker reached --max-requests and is leaving (its
        WebSockets may still run until the graceful timeout)."""
        return bool(struct.unpack_from("I", self.memory, slot * SLOT_BYTES + FLAGS_OFFSET)[0] & RETIRING)

    def request(self, slot):
        """'METHOD target' of the request whose app call is in progress."""
        start = slot * SLOT_BYTES
        return self.memory[start + REQUEST_OFFSET:start + SLOT_BYTES].split(b"\0")[0].decode("latin-1")

    def close(self):
        self.memory.close()
