"""Which text Kinline stores: the one rule both entrances (socket frames, REST bodies) apply.

PostgreSQL's ``text`` cannot hold U+0000 (NUL), and neither database driver can encode a lone
surrogate (U+D800..U+DFFF) to UTF-8. Such text is refused where it enters, with the stable code
``invalid_text``, so it never reaches a transaction it would fail (nor a batch of other users'
messages). Everything else Unicode is stored as sent. One regular-expression scan, linear in the
text: cheap next to parsing it.
"""

from __future__ import annotations

import re
from typing import Final

INVALID_TEXT: Final = "invalid_text"

_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> bool:
    """Whether both databases can store ``text`` as it is."""
    return _UNSTORABLE.search(text) is None
