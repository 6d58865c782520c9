"""Reading an HTML page's elements with the standard library's parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

# Elements and attributes through which a page runs code or loads anything.
ACTIVE_TAGS = frozenset(
    {"script", "img", "link", "iframe", "object", "embed", "base", "form", "svg"}
)
LOADING_ATTRIBUTES = frozenset({"src", "href", "srcset", "action", "formaction"})


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: list[str] = field(default_factory=list)


class _Collector(HTMLParser):
    VOID = frozenset({"meta", "br", "img", "link", "input", "hr", "base"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text.append(data)


def elements(page: str) -> list[Element]:
    collector = _Collector()
    collector.feed(page)
    collector.close()
    return collector.elements


def active_content(page: str) -> list[str]:
    """Every element or attribute that could run code or load a resource."""
    found = []
    for element in elements(page):
        if element.tag in ACTIVE_TAGS:
            found.append(f"<{element.tag}>")
        for name, value in element.attrs.items():
            if name in LOADING_ATTRIBUTES or name.startswith("on"):
                found.append(f"<{element.tag} {name}=...>")
            if "url(" in value:
                found.append(f"<{element.tag} {name}=url(...)>")
    return found
