"""The caption grammar: every clause the templates write, and the action sentences."""

from __future__ import annotations

import re

from p2l3d_core.language.captions import CONNECTORS
from p2l3d_core.language.grammar import CONNECTOR_TEXTS, action_units, clause_table, normalise
from p2l3d_core.language.posecodes import CODE_CATEGORIES

CONNECTOR = re.compile("|".join(re.escape(c) for c in CONNECTORS))


def test_the_clause_table_covers_every_stated_category_and_no_clause_holds_a_connector():
    table = clause_table()
    assert not [c for c in table if CONNECTOR.search(c)]
    stated = {pair for asserted in table.values() for pair in asserted}
    # a few categories are never said ("far" from the head, a hand on its own side, ...)
    silent = {("l_hand_head", 1), ("r_hand_head", 1), ("l_hand_side", 0), ("r_hand_side", 0),
              ("l_knee_ground", 1), ("r_knee_ground", 1), ("lean_fb", 1), ("lean_lr", 1)}
    every = {(n, k) for n, cats in CODE_CATEGORIES.items() for k in range(len(cats))}
    assert stated == every - silent



def test_action_units_are_whole_sentences_without_the_full_stop():
    units = action_units()
    assert "the person is walking" in units and "someone is jumping" in units
    assert "the person is hopping" in units  # a real label's phrase, answered "jumping"
    assert not [u for u in units if u.endswith(".") or u != normalise(u)]


def test_connectors_as_written():
    assert CONNECTOR_TEXTS == ("and", ", and", ", while", ";")
