# The emulated hal's exit button on both runtimes (the virtual board runs
# this hal under MicroPython): a press and its release can both be read off
# the emulator's socket before the door's next poll - the line handler
# latches the press as it arrives, so the door still opens.
import json

from agent import config
from agent.hal.emulated import EmulatedIO
from agent.peripherals.door import Door
from agent.peripherals.doors import Doors
from agent.thing import Thing

from door_pins import REX, Events


def _line(pin, value):
    return (json.dumps({"pin": pin, "value": value}) + "\n").encode()


def _door(io):
    thing = Thing("d1")
    events = Events(thing)
    door = Door(thing, io, config.peripheral("door", {"name": "front", "relay_pin": 26, "rex_pin": REX}))
    Doors(thing).add(door)
    return door, events


def test_a_press_and_release_read_before_a_poll_still_open():
    io = EmulatedIO("127.0.0.1", 1)
    door, events = _door(io)
    io._apply(_line(REX, 0))         # held down as the emulator connects: not a press
    door.poll(0)
    door.poll(100)
    io._apply(_line(REX, 1))
    door.poll(200)
    door.poll(260)                   # let go for a debounce: the next press counts
    assert events.names() == []
    io._apply(_line(REX, 0))         # the press and its release, back to back
    io._apply(_line(REX, 1))
    door.poll(1000)
    assert events.names() == ["rex", "unlocked"] and door.relay.energised
    io._apply(_line(REX, 1))         # the idle level again is nothing
    door.poll(1100)
    assert events.names().count("rex") == 1
