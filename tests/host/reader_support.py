# What the host tests of the Wiegand reader share: an access controller that
# records what it was asked and grants it, and a bounded wait.
import asyncio


class Access:
    def __init__(self):
        self.asked = []

    async def present(self, door_name, source, card=None, pin=None):
        self.asked.append((door_name, source, card, pin))
        return True, "u1", None


async def until(cond, steps=300):
    """Poll cond() every 10 ms, `steps` times at most (bounded)."""
    for _ in range(steps):
        if cond():
            return True
        await asyncio.sleep(0.01)
    return False
