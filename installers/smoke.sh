#!/usr/bin/env bash
# Smoke test of the frozen Linux bundle (dist/studio) and its .deb. Run after `make installer`.
# Every step runs the frozen binaries, in a fresh data home, offline, with the tiny model.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUNDLE:-dist/studio}/studio
test -x "$B" || { echo "no bundle at $B: run make installer" >&2; exit 1; }
H=$(mktemp -d /tmp/studio-smoke.XXXXXX)
export STUDIO_HOME=$H/home QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 \
  MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false STUDIO_NO_DIALOG=1
NODE_PID=
cleanup() {
  [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null || true
  "$B" devnet down >/dev/null 2>&1 || true
  rm -rf "$H"
}
trap cleanup EXIT
t() { local s; s=$(date +%s.%N); "$@"; echo "  ($(echo "$(date +%s.%N) - $s" | bc)s)"; }

echo "== --version"; t "$B" --version
echo "== doctor"; t "$B" doctor
echo "== -c (the GUI's device probe runs sys.executable -c)"
"$B" -c 'import torch; from studio.train.device import choose_device; print("  device:", choose_device().device, torch.__version__)'
test -x "$(dirname "$B")/studio-gui"
echo "== studio-gui --screenshots (offscreen; the desktop entry's executable)"
t "$(dirname "$B")/studio-gui" --screenshots "$H/shots"
n=$(ls "$H/shots"/*.png | wc -l); echo "  $n screenshots"; [ "$n" -ge 2 ]
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

DEB=$(ls dist/openledger-studio_*.deb 2>/dev/null | head -1 || true)
if [ -n "$DEB" ] && [ "$(id -u)" = 0 ] && command -v dpkg >/dev/null; then
  echo "== dpkg -i $DEB"
  dpkg -i "$DEB" >/dev/null
  [ "$(command -v studio)" = /usr/bin/studio ]
  (cd / && studio --version)
  if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate /usr/share/applications/openledger-studio.desktop && echo "  desktop entry valid"
  fi
  echo "== dpkg -r leaves the data home alone"
  dpkg -r openledger-studio >/dev/null
  [ ! -e /opt/openledger-studio ] && [ ! -e /usr/bin/studio ]
  [ -f "$STUDIO_HOME/demo-password.txt" ] && echo "  data home kept: $STUDIO_HOME"
else
  echo "== .deb checks skipped (need dist/*.deb, root and dpkg)"
fi
echo "smoke: OK"
