# A serial port on an ESP32: machine.UART behind the firmware's asyncio
# stream, same interface as serial_posix (async read(max_n) -> >= 1 byte,
# async write(data), close()). Not testable on the host (no machine.UART in
# the unix port); kept this small so there is little to get wrong.
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
