#!/bin/bash
# Keeps the repo's ids followable from the repo alone (run by scripts/test.sh;
# needs nothing but bash, git and GNU grep):
#  - every threat id cited anywhere (T1, T26) has a row in docs/threats.md;
#  - every requirement id cited anywhere (W1, W1.7, X.4, M.1) has a row or a
#    heading in docs/design.md, and every section cited as `design.md, "Name"` is
#    a heading there;
#  - every test docs/threats.md names (`file::function`, or `file::prefix_*`)
#    is a `fn` in some Rust file.
# Prints each failure with the id or test and where it is cited; exits 1 if any.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
THREATS=docs/threats.md
DESIGN=docs/design.md
for doc in "$THREATS" "$DESIGN"; do
    [[ -f $doc ]] || { echo "check-ids: $doc is missing" >&2; exit 1; }
done

# The files to scan: the checkout's text files, tracked or new, not ignored (all
# files but build output if this is not a git checkout, or git refuses it), less
# the lock file and this script, whose comments hold examples.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files --cached --others --exclude-standard)
else
    mapfile -t files < <(find . -type f -not -path '*/target/*' -not -path './.git/*' -not -path './bench/results/*' | sed 's|^\./||')
fi
scan=()
for f in "${files[@]}"; do
    case $f in Cargo.lock | scripts/check-ids.sh) continue ;; esac
    [[ -f $f ]] && scan+=("$f")
done

# An id stands alone: not inside a word, a hex number, a version (`1.2.3`),
# a date (`2024-01-01T12:00`) or a ticket name (`T-1`).
T_ID='(?<![A-Za-z0-9_])T[0-9]+(?![A-Za-z0-9_])'
R_ID='(?<![A-Za-z0-9_.])(W[0-9]+(\.[0-9]+)?|[XM]\.[0-9]+)(?![A-Za-z0-9_]|\.[0-9])'

# Defined: the first cell of a table row, or (requirements) a heading's first word.
defined_t=$(grep -oP '^\|\s*\K'"$T_ID"'(?=\s*\|)' "$THREATS" | sort -u || true)
defined_r=$( {
    grep -oP '^\|\s*\K'"$R_ID"'(?=\s*\|)' "$DESIGN" || true
    grep -oP '^#+\s+\K'"$R_ID"'(?=[\s:]|$)' "$DESIGN" || true
} | sort -u)

failures=0
fail() {
    echo "check-ids: $*" >&2
    failures=$((failures + 1))
}

# file:line:id for every citation (grep -o prints one line per match).
while IFS=: read -r file line id; do
    if ! grep -qxF "$id" <<<"$defined_t"; then
        fail "threat $id (cited at $file:$line) is defined nowhere: add its row to $THREATS"
    fi
done < <(grep -HnoIP "$T_ID" "${scan[@]}" || true)

while IFS=: read -r file line id; do
    if ! grep -qxF "$id" <<<"$defined_r"; then
        fail "requirement $id (cited at $file:$line) is defined nowhere: add it to $DESIGN"
    fi
done < <(grep -HnoIP "$R_ID" "${scan[@]}" || true)

# Sections cited by name (`docs/design.md, "Recordings"`) are headings there.
while IFS=: read -r file line section; do
    if ! grep -qP '^#+\s+\Q'"$section"'\E\s*$' "$DESIGN"; then
        fail "section \"$section\" (cited at $file:$line) is not a heading of $DESIGN"
    fi
done < <(grep -HnoIP 'design\.md, "\K[^"]+(?=")' "${scan[@]}" || true)

# Test names: the backquoted `a::b` in the last column of each threat row,
# `a::{b, c}` standing for `a::b` and `a::c`.
rust=()
for f in "${scan[@]}"; do [[ $f == *.rs ]] && rust+=("$f"); done
fns=$(grep -ohP '\bfn\s+\K[A-Za-z0-9_]+' "${rust[@]}" | sort -u)
while IFS= read -r row; do
    id=$(grep -oP '^\|\s*\K'"$T_ID" <<<"$row")
    tests=$(awk -F'|' '{ print $(NF - 1) }' <<<"$row")
    while IFS= read -r ref; do
        case $ref in
            *'::{'*'}')
                prefix=${ref%%::\{*}
                IFS=, read -ra names <<<"${ref#*::\{}"
                names[-1]=${names[-1]%\}}
                ;;
            *) prefix=${ref%::*}; names=("${ref##*::}") ;;
        esac
        for name in "${names[@]}"; do
            name=${name// /}
            if [[ $name == ?*'*' ]]; then
                grep -q "^${name%\*}" <<<"$fns" && continue
            elif [[ $name =~ ^[A-Za-z0-9_]+$ ]]; then
                grep -qxF "$name" <<<"$fns" && continue
            fi
            fail "$THREATS, $id: test \`$prefix::$name\` is not a fn in any Rust file"
        done
    done < <(grep -oP '`\K[A-Za-z0-9_]+(::[A-Za-z0-9_]+)*::(\{[A-Za-z0-9_, ]+\}|[A-Za-z0-9_]+\*?|\*)(?=`)' <<<"$tests")
done < <(grep -P '^\|\s*'"$T_ID"'\s*\|' "$THREATS")

if ((failures)); then
    echo "check-ids: $failures failure(s); ids are defined in $THREATS (T) and $DESIGN (W, X, M)" >&2
    exit 1
fi
echo "check-ids: every cited id is defined, every named test exists"
