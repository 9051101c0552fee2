#!/bin/sh
# Generates libconc's man pages from the comments in include/conc/*.h
# (scripts/genman.awk says how). POSIX sh and awk only, so a bare build
# machine can run it; CMake runs it at build time (cmake/ConcMan.cmake)
# whenever a header changes, so the pages never lag behind the API.
#
# Usage: sh scripts/genman.sh OUTDIR VERSION [SRCDIR]
#   OUTDIR gets man3/ and man7/ and is replaced as a whole, so a function
#   removed from the headers loses its page. AWK overrides the awk used.
set -eu
if [ $# -lt 2 ]; then
  echo "usage: $0 OUTDIR VERSION [SRCDIR]" >&2
  exit 2
fi
out=$1
version=$2
src=${3:-$(dirname "$0")/..}
awk_prog=${AWK:-awk}

tmp="$out.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/man3" "$tmp/man7"
trap 'rm -rf "$tmp"' EXIT
index_md="$src/docs/index.md"
[ -f "$index_md" ] || index_md=/dev/null

# C collation: the same header order (and so the same pages) everywhere.
LC_ALL=C
export LC_ALL
"$awk_prog" -v out="$tmp" -v version="$version" -f "$src/scripts/genman.awk" \
  "$index_md" "$src"/include/conc/*.h

rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
