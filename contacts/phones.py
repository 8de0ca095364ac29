"""Telephone numbers: one canonical form for storage and lookup, and a mask for logs.

The rule (:func:`normalise_number`), applied to every number we store or look up:

1. spaces, dots, dashes, slashes and parentheses are dropped (``333 123.45-67`` -> ``3331234567``);
2. ``+CC...`` is already international: kept as ``+`` and the digits;
3. ``00CC...`` is the Italian way of dialling abroad: ``00`` becomes ``+`` (``0039 06 ...`` ->
   ``+3906...``);
4. anything else is an Italian national number and gets ``+39`` in front, keeping its own leading
   ``0`` (landlines: ``06 1234 5678`` -> ``+390612345678``; mobiles: ``333 1234567`` ->
   ``+393331234567``). A bare ``39...`` without ``+`` or ``00`` is therefore *not* taken as the
   country code: carriers deliver Italian callers in national form or with ``+39``;
5. the result is ``+`` and 7 to 15 digits, the first not 0 (E.164: at most 15 digits, and no
   country code starts with 0), and a national number has at least 6 digits; otherwise
   ``ValueError``:
   withheld callers (``anonymous``, empty) have no number and are guests.

One number belongs to at most one customer. Contacts keep the caller number exactly as Asterisk
gave it, so matching a customer's contacts by number uses :func:`number_variants`.

Example::

    normalise_number("0039 333 123 4567")      # '+393331234567'
    mask_number("+393331234567")               # '+39 333 ***4567'
    logger.info("call from %s", mask_number(caller))
"""

from __future__ import annotations

import re

ITALY = "39"
_SEPARATORS = re.compile(r"[\s.\-/()]")
_DIGITS = re.compile(r"[1-9][0-9]{6,14}")  # country codes never start with 0
_MIN_NATIONAL = 6  # the shortest Italian numbers (some landlines, short codes like 803160)


def normalise_number(raw: str) -> str:
    """The canonical ``+<digits>`` form of ``raw`` (see the module's rule); ``ValueError`` if none."""
    text = _SEPARATORS.sub("", raw)
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]
    elif len(text) >= _MIN_NATIONAL:
        digits = ITALY + text
    else:
        digits = ""
    if not _DIGITS.fullmatch(digits):
        raise ValueError(f"not a telephone number: {mask_number(raw)!r} (want +CC..., 00CC... or an Italian number)")
    return "+" + digits


def try_normalise(raw: str | None) -> str | None:
    """:func:`normalise_number`, or ``None`` for a withheld or unparseable number (a guest)."""
    if not raw:
        return None
    try:
        return normalise_number(raw)
    except ValueError:
        return None


def number_variants(number: str) -> tuple[str, ...]:
    """The spellings a caller id of this canonical number may have in ``contacts.caller``.

    ``+393331234567`` -> ``('+393331234567', '00393331234567', '393331234567', '3331234567')``.
    """
    digits = number.removeprefix("+")
    variants = [number, "00" + digits]
    if digits.startswith(ITALY):
        variants += [digits, digits[len(ITALY) :]]
    return tuple(variants)


def mask_number(phone: str | None) -> str:
    """A caller number safe for logs: country code, three digits, the last four.

    ``+393331234567`` -> ``'+39 333 ***4567'``; short numbers keep only their last two digits
    (``+39 ***78``); other countries keep two digits of the prefix (``+44 ***0123``); a withheld
    number gives ``'(withheld)'`` and something unparseable ``'***'``. Never raises.
    """
    if not phone:
        return "(withheld)"
    text = _SEPARATORS.sub("", phone)
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]
    else:
        digits = ITALY + text
    if not digits.isdigit() or len(digits) < 6:
        return "***"
    if digits.startswith(ITALY):
        national = digits[len(ITALY) :]
        if len(national) >= 8:
            return f"+{ITALY} {national[:3]} ***{national[-4:]}"
        return f"+{ITALY} ***{national[-2:]}"
    return f"+{digits[:2]} ***{digits[-4:] if len(digits) >= 10 else digits[-2:]}"
