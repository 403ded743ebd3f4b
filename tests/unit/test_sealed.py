# Sealed scripts (agent/control/sealed.py), on both runtimes: what is
# sealed opens again whole and only under the same device key; a blob
# changed anywhere by one bit, cut short or made longer is refused, never
# returned; the device key is made once, kept (0600 on a host) and a key
# file of the wrong size is refused and left as it was.
import binascii
import os

from agent.control import sealed
from agent.control.sealed import SealError, device_key, is_sealed, seal, unseal
from agent.errors import CommandError
from agent.hal import aes

from support import MICROPYTHON, raises, tmpdir

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))
SCRIPT = b"door.open(5)  -- the text of a script nobody may read off the flash\n"


def _text(n):
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


def _flip(blob, bit):
    b = bytearray(blob)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def test_the_runtimes_aes_is_nist_cbc_aes256():
    # NIST SP 800-38A, F.2.5/F.2.6 (CBC-AES256), new bytes and in place.
    key = binascii.unhexlify("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
    iv = binascii.unhexlify("000102030405060708090a0b0c0d0e0f")
    plain = binascii.unhexlify("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
                               "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
    cipher = binascii.unhexlify("f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
                                "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b")
    assert aes.cbc_encrypt(key, iv, plain) == cipher
    assert aes.cbc_decrypt(key, iv, cipher) == plain
    buf = bytearray(plain)
    assert aes.cbc_encrypt(key, iv, buf, buf) is buf and buf == cipher
    assert aes.cbc_decrypt(key, iv, buf, buf) is buf and buf == plain
    for args in ((key, iv, plain[:17]), (key[:16], iv, plain), (key, iv[:8], plain), (key, iv, plain, bytearray(16))):
        raises(ValueError, aes.cbc_encrypt, *args)


def test_texts_of_every_length_around_a_block_open_again_whole():
    for n in (0, 1, 15, 16, 17, 31, 32, 33, 4096):
        text = _text(n)
        blob = seal(KEY, text)
        assert len(blob) == sealed.sealed_size(n) == 4 + 16 + (n // 16 + 1) * 16 + 32
        assert is_sealed(blob) and blob[:4] == b"DLS1"
        assert unseal(KEY, blob) == text, n


def test_the_text_is_not_in_the_blob_and_each_seal_is_new():
    a, b = seal(KEY, SCRIPT), seal(KEY, SCRIPT)
    assert a != b and a[4:20] != b[4:20]     # a fresh iv each time
    for blob in (a, b):
        assert b"door.open" not in blob and b"flash" not in blob
        assert unseal(KEY, blob) == SCRIPT


def test_a_str_is_sealed_as_its_utf8():
    assert unseal(KEY, seal(KEY, "tür.öffnen() \u2713")) == "tür.öffnen() \u2713".encode()


def test_one_flipped_bit_anywhere_is_refused():
    blob = seal(KEY, SCRIPT)
    assert len(blob) == 4 + 16 + 80 + 32
    for bit in range(len(blob) * 8):
        e = raises(SealError, unseal, KEY, _flip(blob, bit))
        if bit < 32:   # in the magic
            assert str(e) == "not a sealed script (it does not start with DLS1)", bit
        else:          # iv, ciphertext or MAC
            assert str(e) == sealed.FAILED, bit
    assert unseal(KEY, blob) == SCRIPT


def test_a_cut_or_lengthened_blob_is_refused():
    blob = seal(KEY, SCRIPT)
    for n in range(len(blob)):
        e = raises(SealError, unseal, KEY, blob[:n])
        assert str(e) in (sealed.FAILED, "not a sealed script (it does not start with DLS1)"), n
    for tail in (b"\0", bytes(16), blob[-32:], blob[20:36]):
        assert str(raises(SealError, unseal, KEY, blob + tail)) == sealed.FAILED
    # A whole block taken out before the MAC: the right shape, the wrong MAC.
    assert str(raises(SealError, unseal, KEY, blob[:20] + blob[36:])) == sealed.FAILED


def test_another_devices_key_opens_nothing():
    for n in (0, 16, 100):
        e = raises(SealError, unseal, OTHER, seal(KEY, _text(n)))
        assert "sealed by another device" in str(e)
    assert raises(ValueError, seal, KEY[:16], SCRIPT)


def test_sizes_are_checked_first_and_the_error_says_the_limit():
    text = _text(1000)
    size = sealed.sealed_size(1000)
    assert unseal(KEY, seal(KEY, text, max_bytes=size), max_bytes=size) == text
    e = raises(SealError, seal, KEY, text, size - 1)
    assert str(e) == "script too large to seal: 1000 bytes sealed into %d, at most %d" % (size, size - 1)
    blob = seal(KEY, text)
    e = raises(SealError, unseal, KEY, blob, size - 1)
    assert str(e) == "sealed script too large: %d bytes, at most %d" % (size, size - 1)
    assert raises(SealError, unseal, KEY, bytes(sealed.MAX_BYTES + 1))
    # A refusal is a CommandError: a request that meets one is refused with it.
    assert isinstance(e, CommandError)


def test_not_sealed_is_told_apart():
    assert not is_sealed(b"") and not is_sealed(b"DLS") and not is_sealed(SCRIPT)
    assert is_sealed(b"DLS1") and is_sealed(bytearray(seal(KEY, b"")))
    assert "not a sealed script" in str(raises(SealError, unseal, KEY, SCRIPT))


def test_the_device_key_is_made_once_kept_private_and_reused():
    folder = tmpdir()
    umask = None if MICROPYTHON else os.umask(0o022)
    try:
        key = device_key(folder)
        assert len(key) == 32 and key != bytes(32)
        assert _read(folder + "/.device_key") == key
        assert device_key(folder) == key
        assert os.listdir(folder) == [".device_key"]   # no temporary file left
        if not MICROPYTHON:
            assert os.stat(folder + "/.device_key").st_mode & 0o777 == 0o600
            assert os.umask(0o022) == 0o022            # the process's umask is as it was
    finally:
        if umask is not None:
            os.umask(umask)
    assert device_key(tmpdir()) != key                 # each device its own
    assert unseal(device_key(folder), seal(key, SCRIPT)) == SCRIPT


def test_a_key_file_of_the_wrong_size_is_refused_and_left_as_it_was():
    for size in (0, 1, 31, 33, 4096):
        folder = tmpdir()
        with open(folder + "/.device_key", "wb") as f:
            f.write(_text(size))
        e = raises(SealError, device_key, folder)
        assert str(e).startswith("device key %s/.device_key holds %s bytes, not 32; left as it is"
                                 % (folder, size if size < 32 else "more than 32")), str(e)
        assert _read(folder + "/.device_key") == _text(size)


def test_a_key_folder_that_is_not_there_is_a_seal_error():
    e = raises(SealError, device_key, tmpdir() + "/gone")
    assert str(e).startswith("device key not stored: flash refused the write of ")
