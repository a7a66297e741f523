"""State facts: a tiny language for conditions, and the logic merging and retrieval need.

A fact is a string about one quantity or flag of the state:

- ``wood>=1``, ``health<3``, ``stone==2``, ``sapling!=0`` (``>= <= > < == !=``);
- ``near:table`` (a flag is true), ``!near:table`` (it is false).

Quantities compared with whole numbers are taken as integers (inventory counts, vitals),
so ``wood>1`` is the same set as ``wood>=2``. Each fact constrains one name to a set of
values; a list of facts is their conjunction.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_FACT = re.compile(r"^\s*(!?)\s*([A-Za-z_][\w:.\-]*)\s*(?:(>=|<=|==|!=|=|>|<)\s*(-?\d+(?:\.\d+)?))?\s*$")


class FactError(ValueError):
    """A string that is not a fact."""


@dataclass(frozen=True)
class Constraint:
    """The values one name may take: ``lo <= v <= hi`` minus ``excluded``."""

    name: str
    lo: float = -math.inf
    hi: float = math.inf
    excluded: frozenset[float] = field(default_factory=frozenset)

    @property
    def empty(self) -> bool:
        if self.lo > self.hi:
            return True
        return self.lo == self.hi and self.lo in self.excluded

    def __and__(self, other: Constraint) -> Constraint:
        return Constraint(self.name, max(self.lo, other.lo), min(self.hi, other.hi),
                          self.excluded | other.excluded)

    def implies(self, other: Constraint) -> bool:
        """Every value allowed here is allowed by ``other``."""
        if self.empty:
            return True
        if self.lo < other.lo or self.hi > other.hi:
            return False
        return all(not (self.lo <= x <= self.hi) or x in self.excluded for x in other.excluded)


def _number(text: str) -> float:
    value = float(text)
    return float(int(value)) if value.is_integer() else value


def parse(fact: str) -> Constraint:
    """The constraint a fact states; :class:`FactError` names what is wrong."""
    match = _FACT.match(fact) if isinstance(fact, str) else None
    if not match:
        raise FactError(f"not a fact: {fact!r} (expected e.g. 'wood>=1', 'near:table', '!near:table')")
    neg, name, op, num = match.groups()
    if op is None:
        value = 0.0 if neg else 1.0
        return Constraint(name, value, value)
    if neg:
        raise FactError(f"not a fact: {fact!r} ('!' only negates a flag such as '!near:table')")
    v = _number(num)
    whole = v.is_integer()
    if op in ("==", "="):
        return Constraint(name, v, v)
    if op == "!=":
        return Constraint(name, excluded=frozenset({v}))
    if op == ">=":
        return Constraint(name, lo=v)
    if op == "<=":
        return Constraint(name, hi=v)
    if op == ">":
        return Constraint(name, lo=v + 1 if whole else math.nextafter(v, math.inf))
    return Constraint(name, hi=v - 1 if whole else math.nextafter(v, -math.inf))


def canonical(fact: str) -> str:
    """One spelling per fact: no spaces, ``=`` as ``==``, ``1.0`` as ``1``."""
    match = _FACT.match(fact) if isinstance(fact, str) else None
    if not match:
        parse(fact)  # raises with the message
    neg, name, op, num = match.groups()
    if op is None:
        return f"{neg}{name}"
    op = "==" if op == "=" else op
    v = _number(num)
    return f"{name}{op}{int(v) if v.is_integer() else v}"


def canonical_set(facts: list[str] | tuple[str, ...]) -> list[str]:
    """Canonical, sorted, without duplicates: the order-independent form of a condition."""
    return sorted({canonical(f) for f in facts})


def constraints(facts: list[str]) -> dict[str, Constraint]:
    """The conjunction of ``facts``, one constraint per name."""
    out: dict[str, Constraint] = {}
    for fact in facts:
        c = parse(fact)
        out[c.name] = out[c.name] & c if c.name in out else c
    return out


def satisfiable(facts: list[str]) -> bool:
    """Some state makes all ``facts`` true at once."""
    return not any(c.empty for c in constraints(facts).values())


def compatible(a: list[str], b: list[str]) -> bool:
    """Some state satisfies both condition lists (their conjunction is satisfiable)."""
    return satisfiable(list(a) + list(b))


def met(preconditions: list[str], state_facts: list[str]) -> tuple[int, int]:
    """How many ``preconditions`` the known ``state_facts`` guarantee, of how many.

    A name the state says nothing about counts as not met (unknown).
    """
    known = constraints(state_facts)
    wanted = constraints(preconditions)
    ok = sum(1 for name, c in wanted.items() if name in known and known[name].implies(c))
    return ok, len(wanted)


def from_state(inventory: dict[str, int] | None = None, nearby: list[str] | None = None,
               vitals: dict[str, float] | None = None) -> list[str]:
    """Exact facts for a state: ``wood==3``, ``health==9``, ``near:table``."""
    facts = [f"{k}=={int(v)}" for k, v in sorted((inventory or {}).items())]
    facts += [f"{k}=={v:g}" for k, v in sorted((vitals or {}).items())]
    facts += [f"near:{n}" for n in sorted(set(nearby or []))]
    return facts


def signature(facts: list[str]) -> str:
    """The condition signature: a hash of the canonical fact set, independent of order.

    Empty conditions hash to ``"any"`` so "no known condition" is a value one can filter on.
    """
    import hashlib

    canon = canonical_set(facts)
    if not canon:
        return "any"
    return hashlib.sha1("&".join(canon).encode()).hexdigest()[:16]
