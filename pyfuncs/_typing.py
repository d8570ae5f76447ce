"""Names for annotations without importing ``typing`` or ``collections`` at run time.

Every module here uses postponed annotations, so these are only needed by type checkers;
importing typing (~8 ms) or collections.abc (~3 ms) would add to the first blink call of
every new session.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any
else:
    Any = Callable = Mapping = Sequence = object

__all__ = ["TYPE_CHECKING", "Any", "Callable", "Mapping", "Sequence"]
