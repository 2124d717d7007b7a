"""Constrained caption decoding: the decoder writes only what the caption grammar allows.

Why: greedy decoding of a small decoder writes clauses no template can write ("the right foot
is further forward than the right"), which read well to BLEU and say nothing true. Here the
grammar of ``language/grammar.py`` becomes a token-level automaton over the decoder's own
vocabulary: a trie of every clause (and of every action sentence), the connectors between
clauses, the full stop between sentences. At each step the decoder picks its most likely token
among those the automaton allows, so every clause it writes is a template's clause, a claim
about the body that the rules can check. A posecode is stated once in a caption: once a clause
about the left hand's front/back position is written, no other clause about it may follow
("... in front of the body. the left hand is behind the back." contradicts itself), which also
does the job of the n-gram repetition rule of unconstrained decoding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from p2l3d_core.language.grammar import CONNECTOR_TEXTS, action_units, clause_table


@dataclass
class _Node:
    children: dict[int, int] = field(default_factory=dict)
    unit: int | None = None  # the unit that ends here
    below: list[int] = field(default_factory=list)  # units ending here or deeper


class _Trie:
    def __init__(self):
        self.nodes = [_Node()]

    def add(self, tokens: list[int], unit: int) -> None:
        n = 0
        self.nodes[0].below.append(unit)
        for t in tokens:
            nxt = self.nodes[n].children.get(t)
            if nxt is None:
                nxt = len(self.nodes)
                self.nodes.append(_Node())
                self.nodes[n].children[t] = nxt
            n = nxt
            self.nodes[n].below.append(unit)
        self.nodes[n].unit = unit


@dataclass
class CaptionState:
    """Where one caption is in the grammar: inside a unit (``trie``, ``node``), inside a
    connector (``connector``: the tokens written of it), or at a sentence start (``node`` 0 of
    the sentence trie, ``started``: a sentence has been written); ``used``: the posecodes (and
    "action") stated so far."""

    trie: str = "sentence"
    node: int = 0
    connector: tuple[int, ...] | None = None
    started: bool = False
    used: frozenset[str] = frozenset()


class CaptionGrammar:
    """The caption grammar over a decoder's token ids. ``encode(text)`` gives the ids of a text
    (None when a token is outside the decoder's vocabulary: such a unit cannot be written and is
    left out); ``eos`` ends a caption."""

    def __init__(self, encode: Callable[[str], list[int] | None], eos: int):
        self.eos = eos
        period = encode(".")
        if period is None or len(period) != 1:
            raise ValueError("the decoder's vocabulary has no full stop: no caption grammar")
        self.period = period[0]
        self.connectors = [c for c in (encode(t) for t in CONNECTOR_TEXTS) if c]
        self.clauses, self.sentences = _Trie(), _Trie()  # clauses; clauses + action sentences
        self.is_clause: list[bool] = []
        self.codes: list[frozenset[str]] = []  # what each unit states
        units = [(c, frozenset(name for name, _ in asserted))
                 for c, asserted in clause_table().items()]
        units += [(a, frozenset({"action"})) for a in action_units()]
        for text, codes in units:
            tokens = encode(text)
            if not tokens:
                continue
            is_clause = "action" not in codes
            unit = len(self.is_clause)
            self.is_clause.append(is_clause)
            self.codes.append(codes)
            self.sentences.add(tokens, unit)
            if is_clause:
                self.clauses.add(tokens, unit)
        if not self.is_clause:
            raise ValueError("no caption clause can be written in the decoder's vocabulary")

    def _trie(self, state: CaptionState) -> _Trie:
        return self.clauses if state.trie == "clause" else self.sentences

    def allowed(self, state: CaptionState) -> list[int]:
        """The tokens that may come next."""
        if state.connector is not None:
            k = len(state.connector)
            return sorted({c[k] for c in self.connectors
                           if len(c) > k and tuple(c[:k]) == state.connector})
        node = self._trie(state).nodes[state.node]
        nodes = self._trie(state).nodes  # a child leading only to stated codes is closed
        out = [t for t, child in node.children.items() if self._open(nodes[child], state.used)]
        if state.node == 0 and state.trie == "sentence" and state.started:
            out.append(self.eos)
        if node.unit is not None and self.codes[node.unit].isdisjoint(state.used):
            out.append(self.period)
            if self.is_clause[node.unit]:
                out += [c[0] for c in self.connectors]
        return sorted(set(out))

    def _open(self, node: _Node, used: frozenset[str]) -> bool:
        """Whether a unit ending at or below ``node`` states nothing stated yet."""
        return not used or any(self.codes[u].isdisjoint(used) for u in node.below)

    def advance(self, state: CaptionState, token: int) -> CaptionState:
        """The state after ``token`` (one of ``allowed(state)``)."""
        if state.connector is not None:
            written = state.connector + (token,)
            if written in {tuple(c) for c in self.connectors}:
                return CaptionState("clause", 0, None, state.started, state.used)
            return CaptionState(state.trie, state.node, written, state.started, state.used)
        trie = self._trie(state)
        node = trie.nodes[state.node]
        child = node.children.get(token)
        if child is not None and not (token == self.period or any(
                token == c[0] for c in self.connectors) and node.unit is not None):
            return CaptionState(state.trie, child, None, state.started, state.used)
        if node.unit is not None:
            used = state.used | self.codes[node.unit]
            if token == self.period:
                return CaptionState("sentence", 0, None, True, used)
            one = (token,)
            if one in {tuple(c) for c in self.connectors}:
                return CaptionState("clause", 0, None, state.started, used)
            return CaptionState(state.trie, state.node, one, state.started, used)
        return state  # eos, or a token the automaton did not allow
