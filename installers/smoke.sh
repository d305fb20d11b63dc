#!/usr/bin/env bash
# Smoke test of the frozen Linux bundle (dist/studio) and its .deb. Run after `make installer`.
# Every step runs the frozen binaries, in a fresh data home, offline, with the tiny model. The
# GUI's screenshots and the .deb checks need nothing from the demo: they run beside it, each in a
# data home of its own, and their output is shown when they end.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUNDLE:-dist/studio}/studio
test -x "$B" || { echo "no bundle at $B: run make installer" >&2; exit 1; }
H=$(mktemp -d /tmp/studio-smoke.XXXXXX)
export STUDIO_HOME=$H/home QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 \
  MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false STUDIO_NO_DIALOG=1
NODE_PID= GUI_PID= DEB_PID=
cleanup() {
  local p
  for p in $NODE_PID $GUI_PID $DEB_PID; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for p in home gui-home deb-home; do  # anvil.json: a devnet that may still run
    if [ -f "$H/$p/devnet/anvil.json" ]; then STUDIO_HOME=$H/$p "$B" devnet down >/dev/null 2>&1 || true; fi
  done
  if [ -f "$H/deb-installed" ]; then dpkg -r openledger-studio >/dev/null 2>&1 || true; fi
  rm -rf "$H"
}
trap cleanup EXIT
t() { local s; s=$(date +%s.%N); "$@"; echo "  ($(echo "$(date +%s.%N) - $s" | bc)s)"; }
# Waits for a background check and shows its output; its exit status is the check's.
join() { local rc=0; wait "$1" || rc=$?; cat "$2"; return "$rc"; }

echo "== --version"; t "$B" --version
echo "== doctor"; t "$B" doctor
echo "== -c (the GUI's device probe runs sys.executable -c)"
"$B" -c 'import torch; from studio.train.device import choose_device; print("  device:", choose_device().device, torch.__version__)'
echo "== the causal-LM families kept in the bundle resolve (installers/smoke_models.py)"
"$B" -c "$(cat installers/smoke_models.py)"
test -x "$(dirname "$B")/studio-gui"

gui_check() {
  echo "== studio-gui --screenshots (offscreen; the desktop entry's executable)"
  t env STUDIO_HOME="$H/gui-home" "$(dirname "$B")/studio-gui" --screenshots "$H/shots" 2>&1 \
    | grep -v 'does not support propagateSizeHints'  # the offscreen platform, once a window
  local n; n=$(ls "$H/shots"/*.png | wc -l); echo "  $n screenshots"; [ "$n" -ge 2 ]
}
gui_check > "$H/gui.log" 2>&1 &
GUI_PID=$!

DEB=$(ls dist/openledger-studio_*.deb 2>/dev/null | head -1 || true)
deb_check() {
  echo "== dpkg -i $DEB"
  touch "$H/deb-installed"
  dpkg -i "$DEB" >/dev/null
  [ "$(command -v studio)" = /usr/bin/studio ]
  (cd / && studio --version)
  (cd / && STUDIO_HOME=$H/deb-home studio doctor >/dev/null) && echo "  doctor from the PATH: ok"
  if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate /usr/share/applications/openledger-studio.desktop && echo "  desktop entry valid"
  fi
  echo "== dpkg -r leaves the data home alone"
  STUDIO_HOME=$H/deb-home studio devnet down >/dev/null 2>&1 || true
  dpkg -r openledger-studio >/dev/null
  rm -f "$H/deb-installed"
  [ ! -e /opt/openledger-studio ] && [ ! -e /usr/bin/studio ]
  [ -d "$H/deb-home" ] && [ -n "$(ls -A "$H/deb-home")" ] && echo "  data home kept: $H/deb-home"
}
if [ -n "$DEB" ] && [ "$(id -u)" = 0 ] && command -v dpkg >/dev/null; then
  deb_check > "$H/deb.log" 2>&1 &
  DEB_PID=$!
else
  echo "== .deb checks skipped (need dist/*.deb, root and dpkg)" > "$H/deb.log"
fi

echo "== demo on the bundled devnet, tiny model (a real LoRA step, an attribution)"
t env STUDIO_DEMO_BASE=tiny STUDIO_DEMO_TRAIN_STEPS=2 "$B" demo --fresh | tail -25
MODEL=$("$B" model list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
echo "== node run: /health and one completion from $MODEL"
"$B" node run --api 127.0.0.1:0 --free --model "$MODEL" \
  --password-file "$STUDIO_HOME/demo-password.txt" 2> "$H/node.err" &
NODE_PID=$!
URL=
for _ in $(seq 600); do
  URL=$(sed -n 's/^ready \([^ ]*\).*/\1/p' "$H/node.err" | head -1)
  [ -n "$URL" ] && break
  kill -0 "$NODE_PID" 2>/dev/null || { cat "$H/node.err"; exit 1; }
  sleep 0.5
done
[ -n "$URL" ] || { cat "$H/node.err"; exit 1; }
curl -fsS "$URL/health"; echo
curl -fsS "$URL/v1/completions" -H 'Content-Type: application/json' \
  -d "{\"model\": \"$MODEL\", \"prompt\": \"The tide\", \"max_tokens\": 4, \"seed\": 1}" \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print("  completion:", repr(d["choices"][0]["text"]))'
kill -TERM "$NODE_PID"; wait "$NODE_PID" || true; NODE_PID=
"$B" devnet down >/dev/null

join "$GUI_PID" "$H/gui.log"; GUI_PID=
if [ -n "$DEB_PID" ]; then join "$DEB_PID" "$H/deb.log"; DEB_PID=; else cat "$H/deb.log"; fi
echo "smoke: OK"
