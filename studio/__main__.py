from studio.launch import launch

# freeze_support, windowed stdio, a visible reason when it cannot start (studio/launch.py).
raise SystemExit(launch("main"))
