"""Reading the Bokeh models a Panel object renders to, without a browser (session-level dashboard tests)."""


def bokeh_root(panel_obj):
    """The Bokeh model a Panel object renders to (in a fresh document): what the page would receive."""
    from bokeh.document import Document

    return panel_obj.get_root(Document())


def glyph_renderers(root) -> list:
    """Every glyph renderer under a Bokeh model."""
    from bokeh.models import GlyphRenderer

    return [r for r in root.references() if isinstance(r, GlyphRenderer)]


def rows(renderer) -> int:
    """Rows of a glyph renderer's data source."""
    return len(next(iter(renderer.data_source.data.values()), []))
