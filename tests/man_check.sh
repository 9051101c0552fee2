#!/bin/sh
# The installed man pages (cmake/ConcMan.cmake, scripts/genman.sh): installs
# the build's doc component to a temporary prefix and checks that
#   - every CONC_EXTERN function in include/conc/*.h has a page, found by its
#     own name with `man -w`, and no page is left over for a function that
#     is gone (the pages are regenerated from the headers at build time);
#   - every page renders without a groff warning (groff -man -ww) and every
#     .so link points at a page that exists;
#   - `man conc_queue_get` and `man -l` on a module page render, with the
#     header's Python-to-C table still a table;
#   - the guide and the lessons are installed under share/doc/conc.
# Skipped (exit 77, with the reason) only where man or groff is missing.
# Usage: sh tests/man_check.sh CMAKE_COMMAND BUILD_DIR SOURCE_DIR
set -u
if [ $# -ne 3 ]; then
  echo "usage: $0 CMAKE_COMMAND BUILD_DIR SOURCE_DIR" >&2
  exit 2
fi
cmake=$1
build=$2
src=$3

skip() {
  echo "SKIP: $*"
  exit 77
}
command -v groff >/dev/null 2>&1 ||
  skip "groff is not installed (Debian package groff-base)"
command -v man >/dev/null 2>&1 ||
  skip "man is not installed (Debian package man-db)"
man --version >/dev/null 2>&1 ||
  skip "man does not run here: $(man --version 2>&1 | head -1)"

# man-db's seccomp sandbox is refused in some containers; the pages are ours.
MAN_DISABLE_SECCOMP=1
MANPAGER="cat"
PAGER="cat"
MANWIDTH=100
LC_ALL=C
export MAN_DISABLE_SECCOMP MANPAGER PAGER MANWIDTH LC_ALL
unset MANOPT MANSECT 2>/dev/null || true

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

if ! "$cmake" --build "$build" --target conc_man >"$tmp/build.log" 2>&1; then
  cat "$tmp/build.log"
  echo "FAIL: building the man pages"
  exit 1
fi
# The doc component only (man pages, guide, lessons): what a full install
# puts under share/, without needing every library target built.
if ! "$cmake" --install "$build" --prefix "$tmp/p" --component doc \
  >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log"
  echo "FAIL: cmake --install"
  exit 1
fi
mandir="$tmp/p/share/man"
docdir="$tmp/p/share/doc/conc"
[ -d "$mandir/man3" ] || {
  echo "FAIL: nothing installed under share/man/man3"
  exit 1
}

# The public functions, read from the headers independently of the
# generator: comments and preprocessor lines dropped, statements split at
# ';', the name before '(' of each CONC_EXTERN one (conc__ is internal).
awk '
  BEGIN { c = 0 }
  {
    line = $0
    if (pp) { pp = (line ~ /\\$/); next }
    out = ""
    while (line != "") {
      if (c) {
        i = index(line, "*/")
        if (i == 0) { line = ""; break }
        line = substr(line, i + 2); c = 0
      } else {
        i = index(line, "/*"); j = index(line, "//")
        if (j > 0 && (i == 0 || j < i)) { out = out substr(line, 1, j - 1); line = ""; break }
        if (i == 0) { out = out line; line = ""; break }
        out = out substr(line, 1, i - 1) " "; line = substr(line, i + 2); c = 1
      }
    }
    if (out ~ /^[ \t]*#/) { pp = (out ~ /\\$/); next }
    code = code " " out
  }
  END {
    n = split(code, st, ";")
    for (k = 1; k <= n; k++) {
      s = st[k]
      sub(/.*}/, "", s)
      if (s !~ /CONC_EXTERN/) continue
      if (match(s, /conc_[A-Za-z0-9_]*[ \t]*\(/)) {
        name = substr(s, RSTART, RLENGTH)
        sub(/[ \t]*\($/, "", name)
        if (name !~ /^conc__/) print name
      }
    }
  }' "$src"/include/conc/*.h | sort -u >"$tmp/functions"
nfn=$(wc -l <"$tmp/functions")
if [ "$nfn" -lt 100 ]; then
  fail "only $nfn public functions read from the headers"
fi

# Few processes below: ctest runs this on a loaded 2-core machine.
(cd "$mandir/man3" && ls) | sed -n 's/\.3$//p' | sort >"$tmp/have"
comm -23 "$tmp/functions" "$tmp/have" >"$tmp/missing"
while read -r f; do
  fail "no page for $f"
done <"$tmp/missing"
echo "functions with a page: $((nfn - $(wc -l <"$tmp/missing"))) of $nfn"

# No page without a function, a module or the index behind it.
for h in "$src"/include/conc/*.h; do
  m=${h##*/}
  echo "conc_${m%.h}"
done >"$tmp/modules"
echo conc | cat - "$tmp/functions" "$tmp/modules" | sort -u >"$tmp/expected"
comm -23 "$tmp/have" "$tmp/expected" >"$tmp/stale"
while read -r f; do
  fail "stale page man3/$f.3"
done <"$tmp/stale"
[ -f "$mandir/man7/libconc.7" ] || fail "no man7/libconc.7"

# .so links resolve; real pages render without a warning.
(cd "$mandir" && awk 'FNR == 1 { print FILENAME "\t" $0 }' man3/*.3 man7/*.7) \
  >"$tmp/first"
awk -F '\t' '$2 !~ /^\.so / { print $1 }' "$tmp/first" >"$tmp/pages"
awk -F '\t' '$2 ~ /^\.so / { sub(/^\.so /, "", $2); print $1 "\t" $2 }' \
  "$tmp/first" >"$tmp/links"
while IFS="$(printf '\t')" read -r page target; do
  [ -f "$mandir/$target" ] || fail "$page links to missing $target"
done <"$tmp/links"
npages=$(wc -l <"$tmp/pages")
# one groff run over every page: a warning names its file and line
# shellcheck disable=SC2046
(cd "$mandir" && groff -man -ww -z -Tutf8 $(cat "$tmp/pages")) \
  >"$tmp/groff.log" 2>&1
if [ -s "$tmp/groff.log" ]; then
  head -n 40 "$tmp/groff.log"
  fail "groff warnings ($(wc -l <"$tmp/groff.log") lines)"
fi
echo "pages rendered by groff -man -ww: $npages"

# What a user types.
export MANPATH="$mandir"
where=$(man -w conc_queue_get 2>&1)
[ "$where" = "$mandir/man3/conc_queue_get.3" ] ||
  fail "man -w conc_queue_get gave: $where"
man --warnings conc_queue_get >"$tmp/get.txt" 2>"$tmp/get.err"
[ -s "$tmp/get.err" ] && fail "man conc_queue_get warned: $(head -3 "$tmp/get.err")"
grep -q 'conc_queue_get(conc_queue_t \*q' "$tmp/get.txt" ||
  fail "man conc_queue_get shows no prototype"
grep -q '#include <conc/queue.h>' "$tmp/get.txt" ||
  fail "man conc_queue_get shows no #include line"
grep -q -- '-lconc' "$tmp/get.txt" || fail "man conc_queue_get shows no link flag"
man --warnings -l "$mandir/man3/conc_queue.3" >"$tmp/queue.txt" 2>"$tmp/queue.err"
[ -s "$tmp/queue.err" ] && fail "man -l conc_queue.3 warned: $(head -3 "$tmp/queue.err")"
# the table: a Python line and its C line on one output line
grep -Eq 'q\.put\(x\) +conc_queue_put\(&q' "$tmp/queue.txt" ||
  fail "conc_queue(3) lost the Python-to-C table"
man -w conc >/dev/null 2>&1 || fail "man -w conc found nothing"
man 7 libconc 2>/dev/null | grep -q 'conc_queue(3)' ||
  fail "libconc(7) does not list conc_queue(3)"

# The guide and the lessons.
[ -f "$docdir/index.md" ] || fail "share/doc/conc/index.md not installed"
[ -f "$docdir/README.md" ] || fail "share/doc/conc/README.md not installed"
[ -f "$docdir/examples/00_hello.c" ] ||
  fail "share/doc/conc/examples/00_hello.c not installed"

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "man pages: all checks passed"
