# An SSD1306 as the chip sees its I2C writes (datasheet rev 1.1, sections
# 8.1.5 and 10): each transaction (after the address byte) is control bytes
# and what they announce - Co=0 (bit 7): everything after is commands
# (D/C#=0, bit 6) or GDDRAM data (D/C#=1); Co=1: one byte, then another
# control byte. Commands take their parameters from the command stream, even
# across transactions. Data lands in its own 1 KB GDDRAM (8 pages of 128
# columns, a byte a column of 8 rows) at the RAM pointer, which moves as
# the addressing mode says. Shared by the ESP32 stand-in's I2C
# (tests/mp/stubs/machine.py: machine.i2c_devices) and the Pi's fake smbus2
# bus; runs on MicroPython and CPython.

# command -> parameter bytes it takes (the rest take none)
PARAMS = {0x81: 1, 0x8D: 1, 0x20: 1, 0x21: 2, 0x22: 2, 0xA8: 1, 0xD3: 1, 0xD5: 1, 0xD9: 1, 0xDA: 1, 0xDB: 1,
          0xA3: 2, 0x26: 6, 0x27: 6, 0x29: 5, 0x2A: 5}
HORIZONTAL, VERTICAL, PAGE = 0, 1, 2


class Ssd1306Model:
    def __init__(self):
        # Reset values (datasheet section 10).
        self.ram = bytearray(1024)
        self.on = False
        self.charge_pump = False
        self.mode = PAGE
        self.contrast = 0x7F
        self.mux = 63
        self.com_pins = 0x12
        self.segment_remap = False
        self.com_scan_dec = False
        self.inverted = False
        self.entire_on = False
        self.cols = (0, 127)
        self.pages = (0, 7)
        self.col = 0
        self.page = 0
        self.commands = []       # every command, with its parameters, as a tuple
        self.transactions = []   # the length of every I2C write, control bytes included
        self._cmd = None         # a command waiting for its parameters

    # -- the wire -------------------------------------------------------------
    def write(self, buf):
        """One I2C write transaction to the chip's address (it ACKed)."""
        n = len(buf)
        self.transactions.append(n)
        i = 0
        while i < n:
            ctrl = buf[i]
            i += 1
            if ctrl & 0x3F:
                raise AssertionError("control byte 0x%02x: bits 5-0 must be 0" % ctrl)
            data = ctrl & 0x40
            if ctrl & 0x80:     # Co=1: one byte, then a control byte again
                if i < n:
                    self._byte(buf[i], data)
                    i += 1
                continue
            while i < n:
                self._byte(buf[i], data)
                i += 1

    def _byte(self, b, data):
        if data:
            self._data(b)
        elif self._cmd is not None:
            self._cmd.append(b)
            if len(self._cmd) == PARAMS[self._cmd[0]] + 1:
                cmd, self._cmd = self._cmd, None
                self._run(tuple(cmd))
        elif b in PARAMS:
            self._cmd = [b]
        else:
            self._run((b,))

    # -- commands ---------------------------------------------------------------
    def _run(self, cmd):
        self.commands.append(cmd)
        c = cmd[0]
        if c in (0xAE, 0xAF):
            self.on = c == 0xAF
        elif c == 0x8D:
            self.charge_pump = bool(cmd[1] & 0x04)
        elif c == 0x20:
            self.mode = cmd[1] & 0x03
        elif c == 0x21:
            self.cols = (cmd[1] & 0x7F, cmd[2] & 0x7F)
            self.col = self.cols[0]
        elif c == 0x22:
            self.pages = (cmd[1] & 0x07, cmd[2] & 0x07)
            self.page = self.pages[0]
        elif c == 0x81:
            self.contrast = cmd[1]
        elif c == 0xA8:
            self.mux = cmd[1] & 0x3F
        elif c == 0xDA:
            self.com_pins = cmd[1]
        elif c in (0xA0, 0xA1):
            self.segment_remap = c == 0xA1
        elif c in (0xC0, 0xC8):
            self.com_scan_dec = c == 0xC8
        elif c in (0xA6, 0xA7):
            self.inverted = c == 0xA7
        elif c in (0xA4, 0xA5):
            self.entire_on = c == 0xA5
        elif c <= 0x0F and self.mode == PAGE:
            self.col = (self.col & 0xF0) | c
        elif 0x10 <= c <= 0x1F and self.mode == PAGE:
            self.col = (self.col & 0x0F) | ((c & 0x0F) << 4)
        elif 0xB0 <= c <= 0xB7 and self.mode == PAGE:
            self.page = c & 0x07

    def _data(self, b):
        self.ram[self.page * 128 + self.col] = b
        c0, c1 = self.cols
        p0, p1 = self.pages
        if self.mode == HORIZONTAL:
            if self.col >= c1:
                self.col = c0
                self.page = p0 if self.page >= p1 else self.page + 1
            else:
                self.col += 1
        elif self.mode == VERTICAL:
            if self.page >= p1:
                self.page = p0
                self.col = c0 if self.col >= c1 else self.col + 1
            else:
                self.page += 1
        else:   # page addressing: the column wraps within the page
            self.col = 0 if self.col >= 127 else self.col + 1

    # -- what a test reads --------------------------------------------------------
    def rows(self):
        return self.mux + 1

    def shows(self):
        """The GDDRAM bytes the panel lights (its rows' pages), or None when
        it is dark: display off, or no charge pump to drive the OLEDs."""
        if not (self.on and self.charge_pump):
            return None
        return bytes(self.ram[:128 * (self.rows() // 8)])
