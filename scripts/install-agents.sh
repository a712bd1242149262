#!/usr/bin/env bash
# Installs the agent CLIs forgebot's end-to-end tests run, at pinned versions, into a cache folder outside the
# clone (default ~/.cache/forgebot/agents, or $FORGEBOT_AGENTS_DIR) that later runs reuse. Prints the PATH entries.
#   scripts/install-agents.sh [DIR]
# A version already installed is kept; bump a pin here and the next run installs the new one.
set -euo pipefail
DIR="${1:-${FORGEBOT_AGENTS_DIR:-$HOME/.cache/forgebot/agents}}"
NPM_PACKAGES=(
  "@anthropic-ai/claude-code@2.1.197"
  "@openai/codex@0.171.0"
  "@google/gemini-cli@0.61.0"
  "@qwen-code/qwen-code@0.15.10"
  "opencode-ai@1.18.33"
  "@github/copilot@1.0.102"
)
AIDER="aider-chat==0.86.2"
mkdir -p "$DIR/npm"
stamp="$DIR/npm/.forgebot-pins"
if [ "$(cat "$stamp" 2>/dev/null)" != "${NPM_PACKAGES[*]}" ]; then
  echo "installing npm agent CLIs into $DIR/npm: ${NPM_PACKAGES[*]}" >&2
  npm install --prefix "$DIR/npm" --no-audit --no-fund --loglevel=error "${NPM_PACKAGES[@]}" >&2
  echo "${NPM_PACKAGES[*]}" > "$stamp"
else
  echo "npm agent CLIs already installed in $DIR/npm" >&2
fi
if [ "$(cat "$DIR/aider/.forgebot-pin" 2>/dev/null)" != "$AIDER" ]; then
  echo "installing $AIDER into $DIR/aider" >&2
  rm -rf "$DIR/aider"
  python3 -m venv "$DIR/aider"
  "$DIR/aider/bin/pip" install -q --disable-pip-version-check "$AIDER" >&2
  echo "$AIDER" > "$DIR/aider/.forgebot-pin"
else
  echo "aider already installed in $DIR/aider" >&2
fi
# Only the CLIs, not the venv's python, go on PATH: aider gets its own bin folder of one link.
mkdir -p "$DIR/bin"
ln -sf "$DIR/aider/bin/aider" "$DIR/bin/aider"
echo "$DIR/npm/node_modules/.bin:$DIR/bin"
