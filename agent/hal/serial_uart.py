# A serial port on an ESP32: machine.UART behind the firmware's asyncio
# stream, same interface as serial_posix (async read(max_n) -> >= 1 byte,
# async write(data), close()). Tested under the unix port against the
# stand-in machine.UART (tests/mp/stubs) over the ZFM emulator's pty.
import asyncio

from machine import UART


class UartPort:
    __slots__ = ("uart", "_stream")

    def __init__(self, uart_id, baud, tx=None, rx=None):
        kw = {"baudrate": baud, "bits": 8, "parity": None, "stop": 1, "timeout": 0}
        if tx is not None:
            kw["tx"] = tx
        if rx is not None:
            kw["rx"] = rx
        self.uart = UART(uart_id, **kw)
        # asyncio waits on the UART with the same poll as a socket
        self._stream = asyncio.StreamReader(self.uart)

    async def read(self, max_n):
        while True:
            data = await self._stream.read(max_n)
            if data:
                return data

    async def write(self, data):
        self._stream.write(data)
        await self._stream.drain()

    def close(self):
        self.uart.deinit()


def open_port(uart_id, baud=57600, tx=None, rx=None):
    return UartPort(uart_id, baud, tx, rx)


def uart_name(port):
    """"uart2" -> (2, None, None): the UART's default pins; "uart1:4:5" ->
    (1, 4, 5): its TX and RX GPIOs. ValueError for anything else."""
    nums = []
    for part in port[4:].split(":") if port.startswith("uart") else ():
        if not part.isdigit():
            nums = ()
            break
        nums.append(int(part))
    if len(nums) == 1:
        return nums[0], None, None
    if len(nums) == 3:
        return nums[0], nums[1], nums[2]
    raise ValueError("serial port %r: name an ESP32 UART as uartN or uartN:TX:RX (GPIO numbers)" % port)


def open_named(port, baud=57600):
    """The UART a board file names ("uart2", "uart1:4:5")."""
    uart_id, tx, rx = uart_name(port)
    return UartPort(uart_id, baud, tx, rx)
