from studio.core.frozen import launch

# freeze_support, windowed stdio, a visible reason when it cannot start (core/frozen.py).
raise SystemExit(launch("main"))
