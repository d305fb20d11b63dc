"""PySide6 desktop app (later issue). The only package that imports Qt."""
