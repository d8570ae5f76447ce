"""``Any`` for annotations without importing ``typing`` at run time.

Every module here uses postponed annotations, so ``Any`` is only needed by type checkers;
importing typing would add ~8 ms to the first blink call of every new session.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any
else:
    Any = Callable = object

__all__ = ["TYPE_CHECKING", "Any", "Callable"]
