"""Constrained caption decoding: the decoder writes only what the caption grammar allows.

Why: greedy decoding of a small decoder writes clauses no template can write ("the right foot
is further forward than the right"), which read well to BLEU and say nothing true. Here the
grammar of ``language/grammar.py`` becomes a token-level automaton over the decoder's own
vocabulary: a trie of every clause (and of every action sentence), the connectors between
clauses, the full stop between sentences. At each step the decoder picks its most likely token
among those the automaton allows, so every clause it writes is a template's clause, a claim
about the body that the rules can check, and none is written twice in one caption (which also
does the job of the n-gram repetition rule of unconstrained decoding).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from p2l3d_core.language.grammar import CONNECTOR_TEXTS, action_units, clause_table


@dataclass
class _Node:
    children: dict[int, int] = field(default_factory=dict)
    unit: int | None = None  # the unit that ends here
    below: set[int] = field(default_factory=set)  # units ending here or deeper


class _Trie:
    def __init__(self):
        self.nodes = [_Node()]

    def add(self, tokens: list[int], unit: int) -> None:
        n = 0
        self.nodes[0].below.add(unit)
        for t in tokens:
            nxt = self.nodes[n].children.get(t)
            if nxt is None:
                nxt = len(self.nodes)
                self.nodes.append(_Node())
                self.nodes[n].children[t] = nxt
            n = nxt
            self.nodes[n].below.add(unit)
        self.nodes[n].unit = unit


@dataclass
class CaptionState:
    """Where one caption is in the grammar: inside a unit (``trie``, ``node``), inside a
    connector (``connector``: the tokens written of it), or at a sentence start (``node`` 0 of
    the sentence trie, ``started``: a sentence has been written); ``used``: units written."""

    trie: str = "sentence"
    node: int = 0
    connector: tuple[int, ...] | None = None
    started: bool = False
    used: set[int] = field(default_factory=set)


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
        for text, is_clause in [(c, True) for c in clause_table()] + [
                (a, False) for a in action_units()]:
            tokens = encode(text)
            if not tokens:
                continue
            unit = len(self.is_clause)
            self.is_clause.append(is_clause)
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
        nodes = self._trie(state).nodes  # a child leading only to written units is closed
        out = [t for t, child in node.children.items()
               if not nodes[child].below.issubset(state.used)]
        if state.node == 0 and state.trie == "sentence" and state.started:
            out.append(self.eos)
        if node.unit is not None and node.unit not in state.used:
            out.append(self.period)
            if self.is_clause[node.unit]:
                out += [c[0] for c in self.connectors]
        return sorted(set(out))

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
            used = state.used | {node.unit}
            if token == self.period:
                return CaptionState("sentence", 0, None, True, used)
            one = (token,)
            if one in {tuple(c) for c in self.connectors}:
                return CaptionState("clause", 0, None, state.started, used)
            return CaptionState(state.trie, state.node, one, state.started, used)
        return state  # eos, or a token the automaton did not allow
