# PIN lockout (docs/door-controller.md section 5): wrong PINs counted per
# door and credential, so guessing is slow and one person's typing locks
# out as little as it can.
#
# - A PIN alone names nobody until it matches, so its wrong guesses count
#   per door: `attempts` of them, each within `lockout_ms` of the one
#   before, refuse PINs alone at that door for `lockout_ms`. No grant
#   resets this count: a PIN any user holds (a disabled one's, or the
#   guesser's own) would otherwise be a reset key, and a 4-digit PIN falls
#   to a few thousand guesses. The count forgets a wrong PIN `lockout_ms`
#   after the last one instead.
# - A card with its PIN counts per door and card: a card's wrong PINs lock
#   out that card's PIN there, not every card+PIN user of the door (one
#   person must not keep a door shut to everyone). Its grant starts it
#   again: the card and its PIN were both proven.
# The table is fixed (SLOTS entries): when it is full of counts still
# running (someone is trying many cards at once), a card's wrong PIN counts
# against the door's cards together, so a full table is never a way round.
from agent import hal, log

SLOTS = 16
ALONE = None   # the credential of a PIN alone
ANY_CARD = -1  # the credential that counts for every card when the table is full


class Lockout:
    __slots__ = ("attempts", "lockout_ms", "_t")

    def __init__(self, attempts, lockout_ms):
        self.attempts = attempts
        self.lockout_ms = lockout_ms
        # [door, credential, wrong PINs, ticks of the last one, ticks the lockout ends or None]
        self._t = []

    def _live(self, e, now_ms):
        if e[4] is not None:
            return hal.ticks_diff(e[4], now_ms) > 0
        return hal.ticks_diff(now_ms, e[3]) < self.lockout_ms

    def _find(self, door, cred, now_ms):
        for e in self._t:
            if e[0] == door and e[1] == cred:
                if self._live(e, now_ms):
                    return e
                self._t.remove(e)
                return None
        return None

    def locked(self, door, card, now_ms):
        """Whether PINs with this card (None: a PIN alone) are refused at the door now."""
        for cred in (card, ANY_CARD) if card is not None else (ALONE,):
            e = self._find(door, cred, now_ms)
            if e is not None and e[4] is not None:
                return True
        return False

    def wrong(self, door, card, now_ms):
        """A wrong PIN at the door (with this card, or alone)."""
        e = self._find(door, card, now_ms)
        if e is None:
            cards = 0
            for old in list(self._t):
                if not self._live(old, now_ms):
                    self._t.remove(old)
                elif old[1] is not ALONE and old[1] != ANY_CARD:
                    cards += 1
            # Counts per card are bounded; those per door (a PIN alone, any
            # card) are one each per door of the board.
            if card is not None and cards >= SLOTS:
                card = ANY_CARD
                e = self._find(door, card, now_ms)
            if e is None:
                e = [door, card, 0, now_ms, None]
                self._t.append(e)
        e[2] += 1
        e[3] = now_ms
        if e[2] >= self.attempts:
            e[2] = 0
            e[4] = hal.ticks_add(now_ms, self.lockout_ms)
            log.count("pin_lockouts")
            log.warn("access", "%d wrong PINs at %s %s: refused there for %d s"
                     % (self.attempts, door, "alone" if card is ALONE else "with a card" if card != ANY_CARD
                        else "with many cards", self.lockout_ms // 1000))

    def granted(self, door, card, now_ms):
        """A grant with a card and its PIN: that card's count starts again.
        A PIN alone resets nothing (see above)."""
        if card is not None:
            e = self._find(door, card, now_ms)
            if e is not None and e[4] is None:
                self._t.remove(e)
