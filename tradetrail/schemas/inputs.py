"""What every request body and form shares: strict parsing (no unknown fields, no coerced types) and the
patterns free text and names must match. Below the faces, so the API and the web pages validate alike."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _In(BaseModel):
    """A request body: unknown fields and values of another type (``0`` for ``false``, ``"5"`` for ``5``) are
    refused, as the OpenAPI document says, rather than coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


_CONTROL = r"\x00-\x1f\x7f-\x9f"
_SPACE = r"\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"  # what str.strip() removes, past controls
TEXT_PATTERN = r"^[^\x00]*$"  # free text: anything but NUL
NAME_TEXT_PATTERN = rf"^[^{_CONTROL}]*$"  # a name: no control character
LABEL_PATTERN = rf"^[^{_CONTROL}]*[^{_CONTROL}{_SPACE}][^{_CONTROL}]*$"  # a name with something visible in it
