"""The rule files' text: YAML written here, deterministic and in the committed files' layout.

Every scalar is written in a form whose meaning cannot shift: PromQL (``expr``) and any multi-line
text as literal blocks (``|-``), plain only for identifiers and durations, other text in JSON's
double quotes (valid YAML), or folded (``>-``) where that line would pass 96 columns; folded
lines are filled to 96 columns and never break inside a ``{{ template action }}``. A test reads
every file back with PyYAML and compares it with the rules it was written from.

Why not PyYAML's dumper (measured, PyYAML 6.0): it gives these bytes only with a ``SafeDumper``
subclass that overrides four emitter methods (its folded writer breaks a line only once it has
passed the width and may break inside a template action; it picks no style by line length; it
indents every block list alike and writes no blank lines): 57 lines of code for the
byte-identical dumper against the 45 here. PyYAML writes no comments either, so the header is
text in both.
"""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any, Sequence

#: A rule file's rule groups: (group name, rules), each rule a dict in its YAML key order.
Groups = list[tuple[str, list[dict[str, Any]]]]

_PLAIN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.:/-]*|(?:\d+[wdhms])+")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}
_WRAP = 96


def _scalar(key: str, value: str, indent: str) -> list[str]:
    """``key: value`` as YAML lines whose value parses back to exactly ``value``."""
    if key == "expr" or "\n" in value:
        if value != value.strip() or any(line != line.rstrip() for line in value.split("\n")):
            raise ValueError(f"{key}: block text must not have outer or trailing spaces")
        return [f"{indent}{key}: |-"] + [f"{indent}  {line}" if line else ""
                                         for line in value.split("\n")]
    if _PLAIN_RE.fullmatch(value) and value.lower() not in _YAML_WORDS:
        return [f"{indent}{key}: {value}"]
    if len(indent) + len(key) + len(value) + 4 > _WRAP and "  " not in value \
            and value == value.strip() and value.isprintable():
        # Folded block: each line break reads back as one space; no escaping is needed.
        # Never break inside a {{ template action }}: it stays readable on one line.
        glued = re.sub(r"{{.*?}}", lambda m: m.group(0).replace(" ", "\0"), value)
        lines = [line.replace("\0", " ") for line in textwrap.wrap(
            glued, _WRAP - len(indent) - 2, break_long_words=False, break_on_hyphens=False)]
        if " ".join(lines) == value:
            return [f"{indent}{key}: >-"] + [f"{indent}  {line}" for line in lines]
    # Escaped as \uXXXX when not printable: YAML reads a raw NEL or U+2028 as a line break.
    return [f"{indent}{key}: {json.dumps(value, ensure_ascii=not value.isprintable())}"]


def _rule_lines(rule: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for key, value in rule.items():
        indent = "      "
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            for k, v in value.items():
                lines += _scalar(k, v, indent + "  ")
        else:
            lines += _scalar(key, value, indent)
    lines[0] = "    - " + lines[0][len("      "):]
    return lines


def render(header: Sequence[str], groups: Groups) -> str:
    """A rule file: ``header`` as comment lines, then the groups."""
    lines = [f"# {h}" if h else "#" for h in header]
    lines.append("groups:")
    for name, rules in groups:
        lines += ["", f"  - name: {name}", "    rules:"]
        for rule in rules:
            lines += _rule_lines(rule)
    return "\n".join(lines) + "\n"
