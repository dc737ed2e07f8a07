"""The rule files' text: PyYAML with a deterministic dumper, in the committed files' layout.

Every scalar is written in a form whose meaning cannot shift: PromQL (``expr``) and any multi-line
text as literal blocks (``|-``), plain only for identifiers and durations, other text
double-quoted, or folded (``>-``) where a double-quoted line would pass 96 columns.

PyYAML does the structure, the quoting and the escaping. What the dumper below adds, because
PyYAML's emitter has no option for it and the committed files have it:

- folded prose: PyYAML's folded writer breaks a line only once it has passed the width, and
  inside a ``{{ template action }}`` too; here lines are filled to at most 96 columns
  (``textwrap``) and an action is never broken, so an alert's text stays readable;
- the header comment (PyYAML writes no comments), the groups' list indented under ``groups:``
  while the rules' lists are not (PyYAML indents every block list alike), and a blank line
  before each group.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any, Sequence

import yaml

#: A rule file's rule groups: (group name, rules), each rule a dict in its YAML key order.
Groups = list[tuple[str, list[dict[str, Any]]]]

_PLAIN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.:/-]*|(?:\d+[wdhms])+")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}
_WRAP = 96
_STR = "tag:yaml.org,2002:str"


class _Block(str):
    """Text written as a literal block even on one line (PromQL)."""


def _fold(text: str, width: int) -> list[str]:
    """``text`` filled to ``width`` columns, never breaking inside a ``{{ ... }}`` action."""
    glued = re.sub(r"{{.*?}}", lambda m: m.group(0).replace(" ", "\0"), text)
    return [line.replace("\0", " ") for line in textwrap.wrap(
        glued, width, break_long_words=False, break_on_hyphens=False)]


class _Dumper(yaml.SafeDumper):
    _folded: list[str] = []

    def ignore_aliases(self, data: Any) -> bool:
        return True  # two rules with equal labels are written out twice, not as &id001/*id001

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, indentless and self.indent != 0)

    def expect_block_sequence_item(self, first: bool = False) -> None:
        if self.indent == 2 and isinstance(self.event, yaml.MappingStartEvent):
            self.write_line_break()  # a blank line before each group
            self.write_line_break()
        super().expect_block_sequence_item(first)

    def choose_scalar_style(self) -> str:
        style = super().choose_scalar_style()
        assert isinstance(self.event, yaml.ScalarEvent)
        text = self.event.value
        self._folded = []
        if (style == '"' and self.column + len(text) + 3 > _WRAP and "  " not in text
                and text == text.strip() and text.isprintable()):
            lines = _fold(text, _WRAP - (self.indent or 0) - self.best_indent)
            if " ".join(lines) == text:
                self._folded, style = lines, ">"
        return style

    def write_folded(self, text: str) -> None:
        self.write_indicator(">-", True)
        for line in self._folded:
            self.write_indent()
            self.write_indicator(line, False)


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    if isinstance(text, _Block) or "\n" in text:
        return dumper.represent_scalar(_STR, text, style="|")
    plain = _PLAIN_RE.fullmatch(text) and text.lower() not in _YAML_WORDS
    return dumper.represent_scalar(_STR, text, style=None if plain else '"')


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_Block, _represent_str)


def render(header: Sequence[str], groups: Groups) -> str:
    """A rule file: ``header`` as comment lines, then the groups."""
    document = {"groups": [
        {"name": name, "rules": [{k: _Block(v) if k == "expr" else v for k, v in rule.items()}
                                 for rule in rules]}
        for name, rules in groups]}
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     width=float("inf"))
    return "".join(f"# {line}\n" if line else "#\n" for line in header) + body
