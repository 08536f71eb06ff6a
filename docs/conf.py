"""Sphinx configuration: the sansloop documentation (MyST markdown + autodoc).

Build, warnings as errors (CI does this, see .ci/run)::

    pip install -e '.[docs]'
    python -m sphinx -W --keep-going -b html docs docs/_build/html

Every ``*.md`` page in docs/ is part of the site: index.md's toctree picks the
pages up by glob, so a new page needs no edit here. The API reference
(api.md) is generated from the docstrings of the installed package.
"""

from __future__ import annotations

import sansloop

project = "sansloop"
author = "the sansloop authors"
copyright = "2026, the sansloop authors"  # noqa: A001 - Sphinx's name for it
release = sansloop.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST: fenced directives ({autoclass} ...), ``:::`` blocks, heading anchors
# so that [text](page.md#a-heading) links resolve.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 4

# autodoc: members in source order, type hints in the description.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"undoc-members": False, "show-inheritance": True}

# No network at build time: the Python inventory is not fetched, so
# references to the stdlib stay plain text instead of failing the build.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

html_theme = "alabaster"
html_title = f"sansloop {release}"
nitpicky = False


_UNDERLINES = set("=-~^\"'`#*+")


def _headings_to_rubrics(app, what, name, obj, options, lines):  # type: ignore[no-untyped-def]
    """Turn RST section titles in docstrings into rubrics.

    Module docstrings open with sections such as ``Contract`` / ``--------``;
    as real sections, several modules on one page would share the ID
    "contract" (an error) and break the page's outline.
    """
    i = 0
    while i + 1 < len(lines):
        title, rule = lines[i].strip(), lines[i + 1].strip()
        if (
            title
            and len(rule) >= len(title)
            and len(set(rule)) == 1
            and rule[0] in _UNDERLINES
            and not lines[i].startswith(" ")
        ):
            lines[i] = f".. rubric:: {title}"
            lines[i + 1] = ""
            i += 2
        else:
            i += 1


def _module_docstring_as_text(app, what, name, obj, options, lines):  # type: ignore[no-untyped-def]
    """Show a module's docstring as the preformatted text it is written as.

    The modules open with their contract laid out as plain text (aligned state
    tables, indented continuation lines), not as reStructuredText; parsed as RST
    those layouts turn into indentation errors. Classes and functions keep RST.
    """
    if what != "module" or not any(line.strip() for line in lines):
        return
    body = ["    " + line if line.strip() else "" for line in lines]
    lines[:] = ["::", "", *body, ""]


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("autodoc-process-docstring", _module_docstring_as_text)
    app.connect("autodoc-process-docstring", _headings_to_rubrics)
