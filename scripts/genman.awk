# Man pages from the public headers (run by scripts/genman.sh; POSIX awk,
# tested with mawk and gawk). Input: docs/index.md (for the module -> guide
# page map), then include/conc/*.h. Output under `out`:
#   man3/<first function of a group>.3   NAME, SYNOPSIS, DESCRIPTION, ...
#   man3/<other function of the group>.3 a ".so" link to the group's page
#   man3/conc_<module>.3                  the header's top comment, its
#                                         public types and its functions
#   man7/libconc.7, man3/conc.3 (.so)     the library's index page
#
# What a page documents: a "group" is the comment that ends right above a
# CONC_EXTERN declaration together with every CONC_EXTERN declaration that
# follows it with no blank line, comment or other code in between (the
# headers write put/put_nowait, or qsize/empty/full, under one comment). A
# declaration with no comment above it gets a page that sends the reader
# to the module page.
#
# Comment text keeps its layout where layout means something: an indented
# line that opens a paragraph (or follows a line ending in ':') starts a
# verbatim block (.nf/.fi), so the Python-to-C tables stay tables; other
# lines are filled text.

BEGIN {
  if (out == "")
    fail("usage: awk -v out=DIR -v version=X.Y.Z -f genman.awk index.md headers...")
  for (b = 1; b < 256; b++)
    ORD[sprintf("%c", b)] = b
  nmods = 0
  ngroups = 0
  errors_ok = 0
}

function fail(msg) {
  print "genman: " msg > "/dev/stderr"
  failed = 1
  exit 1
}

function trim(s) {
  sub(/^[ \t\r\n]+/, "", s)
  sub(/[ \t\r\n]+$/, "", s)
  return s
}

# ---------------------------------------------------------------- input ---

function start_file(   base) {
  base = FILENAME
  sub(/.*\//, "", base)
  if (base !~ /\.h$/) {
    mode = "index"
    return
  }
  mode = "header"
  sub(/\.h$/, "", base)
  mod = base
  mods[++nmods] = mod
  modfns[mod] = ""
  in_comment = 0
  depth = 0
  stmt = ""
  fnbody = 0
  pp_cont = 0
  in_errlist = 0
  seen_code = 0
  doc = ""
  have_doc = 0
  cur_group = 0
  comment = ""
  decl_group = 0
}

FNR == 1 { start_file() }

# docs/index.md: the first `(page.md)` on a table row naming conc/<mod>.h.
mode == "index" {
  if ($0 ~ /^\|/) {
    iline = $0
    ipage = ""
    if (match(iline, /\]\([a-z0-9_-]+\.md\)/))
      ipage = substr(iline, RSTART + 2, RLENGTH - 3)
    while (ipage != "" && match(iline, /conc\/[a-z0-9_]+\.h/)) {
      imod = substr(iline, RSTART + 5, RLENGTH - 7)
      if (!(imod in guide))
        guide[imod] = ipage
      iline = substr(iline, RSTART + RLENGTH)
    }
  }
  next
}

# The header's lines as written, for the TYPES section.
mode == "header" { RAW[FNR] = $0 }

# Preprocessor lines (and their continuations) are not declarations; the
# error list macros are read for the ERRORS sections.
mode == "header" && pp_cont {
  pp_cont = ($0 ~ /\\[ \t]*$/)
  if (in_errlist)
    errtext = errtext " " $0
  next
}

mode == "header" && !in_comment && /^[ \t]*#/ {
  pp_cont = ($0 ~ /\\[ \t]*$/)
  in_errlist = ($0 ~ /^[ \t]*#[ \t]*define[ \t]+CONC_[A-Z]*ERR[A-Z]*_LIST\(/)
  if (in_errlist)
    errtext = errtext " " $0
  if (stmt == "" && depth == 0)
    end_group()
  next
}

mode == "header" {
  hline = $0
  if (!in_comment && hline ~ /^[ \t]*$/) {
    if (depth == 0 && stmt == "")
      end_group()
    next
  }
  # A macro alone on its line (CONC_BEGIN_DECLS) is a statement of its own.
  if (!in_comment && depth == 0 && stmt == "" && hline ~ /^[ \t]*[A-Z_][A-Z0-9_]*[ \t]*$/) {
    end_group()
    next
  }
  scan(hline)
}

# Splits a line into code and comment pieces.
function scan(line,   c, s) {
  while (1) {
    if (in_comment) {
      c = index(line, "*/")
      if (c == 0) {
        comment = comment line "\n"
        return
      }
      comment = comment substr(line, 1, c - 1)
      line = substr(line, c + 2)
      in_comment = 0
      comment_done()
      continue
    }
    c = index(line, "/*")
    s = index(line, "//")
    if (s > 0 && (c == 0 || s < c)) {
      code(substr(line, 1, s - 1))
      return
    }
    if (c == 0) {
      code(line)
      return
    }
    code(substr(line, 1, c - 1))
    line = substr(line, c + 2)
    in_comment = 1
    comment = ""
    comment_line = FNR
  }
}

function comment_done() {
  if (depth > 0 || stmt != "")
    return
  # a comment after a declaration, on its line, documents it
  if (comment_line == decl_line && decl_group && gdoc[decl_group] == "") {
    gdoc[decl_group] = comment
    end_group()
    return
  }
  if (!seen_code && !(mod in top)) {
    top[mod] = comment
    return
  }
  end_group()
  doc = comment
  have_doc = 1
}

function code(text,   i, ch) {
  if (text ~ /^[ \t]*$/)
    return
  seen_code = 1
  for (i = 1; i <= length(text); i++) {
    ch = substr(text, i, 1)
    if (ch == "{") {
      if (depth == 0)
        fnbody = (trim(stmt) ~ /\)$/)
      depth++
    } else if (ch == "}") {
      depth--
      if (depth == 0 && fnbody) {
        # an inline function's body ends its statement
        stmt = ""
        fnbody = 0
        end_group()
      }
    } else if (ch == ";" && depth == 0) {
      statement(stmt)
      stmt = ""
    } else if (depth == 0 && (stmt != "" || ch !~ /[ \t\r]/)) {
      if (stmt == "")
        stmt_line = FNR
      stmt = stmt ch
    }
  }
  if (depth == 0 && stmt != "")
    stmt = stmt " "
}

function end_group() {
  cur_group = 0
  doc = ""
  have_doc = 0
}

function statement(s,   name) {
  s = trim(s)
  gsub(/[ \t\r\n]+/, " ", s)
  if (s !~ /(^| )CONC_EXTERN( |$)/) {
    if (s ~ /^typedef /)
      typedef_seen(s)
    # a forward typedef between a comment and its declaration keeps the
    # comment for the declaration
    if (s ~ /^typedef [^{]*$/)
      cur_group = 0
    else
      end_group()
    return
  }
  # conc__ names are the library's internals (exported for its own inline
  # code and tests): no pages.
  if (!match(s, /conc_[A-Za-z0-9_]*[ ]?\(/)) {
    if (s !~ /conc__[A-Za-z0-9_]*[ ]*(\[[^]]*\])?$/)
      print "genman: " FILENAME ": not a function, no page: " s > "/dev/stderr"
    end_group()
    return
  }
  name = substr(s, RSTART, RLENGTH)
  sub(/[ ]?\($/, "", name)
  if (name ~ /^conc__/) {
    end_group()
    return
  }
  if (name in fngroup) {
    print "genman: " FILENAME ": " name " declared twice; first kept" > "/dev/stderr"
    return
  }
  if (name == "conc_" mod)
    fail(FILENAME ": function " name " has the module page's name")
  if (!cur_group) {
    cur_group = ++ngroups
    gmod[cur_group] = mod
    gdoc[cur_group] = have_doc ? doc : ""
    gn[cur_group] = 0
  }
  gfn[cur_group, ++gn[cur_group]] = name
  gproto[cur_group, gn[cur_group]] = prototype(s, name)
  fngroup[name] = cur_group
  decl_group = cur_group
  decl_line = FNR
  modfns[mod] = modfns[mod] " " name
  nfns++
}

# A public typedef for the module page's TYPES: a struct, union or enum
# with its fields (not one whose contents are private, `priv`, nor one built
# by the preprocessor), a function pointer type, or a commented alias.
function typedef_seen(s,   text, k, name, body) {
  text = ""
  for (k = stmt_line; k <= FNR; k++)
    text = text RAW[k] "\n"
  body = (index(text, "{") > 0)
  if (body && (text ~ /[ \t]priv[ ;]/ || text ~ /\n[ \t]*#/))
    return
  if (match(s, /\(\*[ ]*[A-Za-z0-9_]+[ ]*\)/)) {
    name = substr(s, RSTART + 2, RLENGTH - 3)
    gsub(/ /, "", name)
  } else {
    name = s
    sub(/[ ]*(\[[^]]*\])?[ ]*$/, "", name)
    sub(/.*[ *]/, "", name)
  }
  if (name !~ /^conc_/ || name ~ /^conc__/)
    return
  if (!body && index(s, "(") == 0 && !have_doc)
    return
  ntypes[mod]++
  tname[mod, ntypes[mod]] = name
  ttext[mod, ntypes[mod]] = text
  tdoc[mod, ntypes[mod]] = have_doc ? doc : ""
}

# Removes __attribute__((...)) with balanced parentheses.
function strip_attributes(s,   p, i, d, ch) {
  while ((p = index(s, "__attribute__")) > 0) {
    i = p + length("__attribute__")
    while (substr(s, i, 1) == " ")
      i++
    d = 0
    for (; i <= length(s); i++) {
      ch = substr(s, i, 1)
      if (ch == "(")
        d++
      else if (ch == ")" && --d == 0)
        break
    }
    s = substr(s, 1, p - 1) substr(s, i + 1)
  }
  return s
}

# "prefix\tname\tparams\tflags": the declaration without export and
# attribute macros; flags has n (noreturn) and w (warn_unused_result).
function prototype(s, name,   at, pre, rest, i, d, ch, params, n, t, k, flags, p2) {
  s = strip_attributes(s)
  at = index(s, name)
  pre = substr(s, 1, at - 1)
  rest = substr(s, at + length(name))
  sub(/^ /, "", rest)
  d = 0
  for (i = 1; i <= length(rest); i++) {
    ch = substr(rest, i, 1)
    if (ch == "(")
      d++
    else if (ch == ")" && --d == 0)
      break
  }
  params = substr(rest, 2, i - 2)
  flags = ""
  n = split(pre, t, " ")
  p2 = ""
  for (k = 1; k <= n; k++) {
    if (t[k] == "CONC_NORETURN") {
      flags = flags "n"
      p2 = p2 " _Noreturn"
    } else if (t[k] == "CONC_WARN_UNUSED") {
      flags = flags "w"
    } else if (t[k] !~ /^CONC_[A-Z0-9_]+$/ && t[k] != "") {
      p2 = p2 " " t[k]
    }
  }
  if (rest ~ /CONC_WARN_UNUSED/ || s ~ /warn_unused_result/)
    if (flags !~ /w/)
      flags = flags "w"
  p2 = trim(p2)
  gsub(/\( /, "(", params)
  gsub(/ \)/, ")", params)
  return p2 "\t" name "\t" trim(params) "\t" flags
}

# ------------------------------------------------------------ rendering ---

# Text for groff: backslashes, leading control characters, minus signs and
# UTF-8 (as \[uXXXX]) made safe.
function esc(s,   r, i, c, o, v, n, k) {
  gsub(/\\/, "\\e", s)
  gsub(/-/, "\\-", s)
  if (match(s, /[^\001-\177]/)) {
    r = ""
    for (i = 1; i <= length(s); i++) {
      c = substr(s, i, 1)
      o = ORD[c]
      if (o < 128) {
        r = r c
        continue
      }
      if (o >= 240) { v = o - 240; n = 3 }
      else if (o >= 224) { v = o - 224; n = 2 }
      else if (o >= 192) { v = o - 192; n = 1 }
      else { r = r "?"; continue }
      for (k = 1; k <= n; k++)
        v = v * 64 + (ORD[substr(s, i + k, 1)] % 64)
      i += n
      r = r sprintf("\\[u%04X]", v)
    }
    s = r
  }
  if (s ~ /^[.']/)
    s = "\\&" s
  return s
}

# The comment's lines without the comment markers and "clang-format" lines.
function comment_lines(text, L,   n, raw, i, m, s) {
  n = split(text, raw, "\n")
  m = 0
  for (i = 1; i <= n; i++) {
    s = raw[i]
    sub(/[ \t]+$/, "", s)
    sub(/^[ \t]*/, "", s)
    if (s ~ /^\*/ && s !~ /^\*\//) {
      s = substr(s, 2)
      sub(/^ /, "", s)
    }
    if (s ~ /^[ ]*(\/\/)?[ ]*clang-format (off|on)[ ]*$/)
      continue
    L[++m] = s
  }
  while (m > 0 && L[m] ~ /^[ ]*$/)
    m--
  return m
}

# groff lines for a comment: filled paragraphs, verbatim indented blocks.
function render(text,   L, n, i, first, s, state, prev, r, pend) {
  render_prose = ""
  n = comment_lines(text, L)
  first = 1
  while (first <= n && L[first] ~ /^[ ]*$/)
    first++
  r = ""
  state = "start"   # start | prose | verbatim | gap
  prev = ""
  for (i = first; i <= n; i++) {
    s = L[i]
    if (s ~ /^[ ]*$/) {
      if (state == "verbatim")
        pend = pend + 1
      else if (state != "start")
        state = "gap"
      continue
    }
    if (s ~ /^  / && (state != "prose" || prev ~ /:$/)) {
      if (state != "verbatim") {
        r = r ".PP\n.nf\n"
        pend = 0
      }
      while (pend > 0) {
        r = r "\n"
        pend--
      }
      state = "verbatim"
      r = r "\\&" esc(s) "\n"
      prev = s
      continue
    }
    if (state == "verbatim") {
      r = r ".fi\n"
      state = "gap"
      pend = 0
    }
    s = trim(s)
    render_prose = render_prose " " s
    if (state != "prose" || s ~ /^- /)
      r = r (s ~ /^- / ? ".IP \\(bu 2\n" : ".PP\n")
    if (s ~ /^- /)
      s = substr(s, 3)
    r = r esc(s) "\n"
    state = "prose"
    prev = s
  }
  if (state == "verbatim")
    r = r ".fi\n"
  return r
}

# The first sentence of a comment, for NAME (and so for whatis/apropos).
function summary(text, is_module, full,   L, n, i, s, p, q, cut) {
  n = comment_lines(text, L)
  s = ""
  for (i = 1; i <= n; i++) {
    if (L[i] ~ /^[ ]*$/) {
      if (s != "")
        break
      continue
    }
    if (L[i] ~ /^  / && s != "")
      break
    s = s " " trim(L[i])
  }
  s = trim(s)
  if (is_module)
    sub(/^[a-z0-9_]+: /, "", s)
  # the first ". " that ends a sentence (not "0x... " or "e.g. ")
  cut = 0
  q = 0
  while ((p = index(substr(s, q + 1), ". ")) > 0) {
    p += q
    if (substr(s, p - 1, 1) != "." && substr(s, p - 3, 4) != "e.g." && \
        substr(s, p - 3, 4) != "i.e.") {
      cut = p
      break
    }
    q = p + 1
  }
  if (!is_module) {
    q = index(s, ": ")
    if (q > 0 && substr(s, q - 1, 1) != "." && (cut == 0 || q < cut))
      cut = q - 1
    q = index(s, "; ")
    if (q > 0 && (cut == 0 || q < cut))
      cut = q - 1
  }
  if (cut > 0)
    s = substr(s, 1, cut)
  sub(/[.:]$/, "", s)
  if (!full && length(s) > 72) {
    s = substr(s, 1, 69)
    sub(/ [^ ]*$/, "", s)
    s = s "..."
  }
  return s
}

function th(name, sect) {
  return ".TH " toupper(name) " " sect " \"\" \"libconc " version \
    "\" \"libconc Manual\"\n.nh\n.ad l\n"
}

# How to link: libconc itself, unless the header's overview names a
# pkg-config package of its own (an optional component such as conc-mpi).
function link_line(m,   pc) {
  pc = "conc"
  if ((m in top) && match(top[m], /pkg-config [a-z0-9_-]+/))
    pc = substr(top[m], RSTART + 11, RLENGTH - 11)
  if (pc == "conc")
    return ".PP\nLink with \\fB\\-lconc \\-pthread\\fP, or let pkg\\-config say:\n.PP\n.nf\n.RS\ncc prog.c $(pkg\\-config \\-\\-cflags \\-\\-libs conc)\n.RE\n.fi\n"
  return ".PP\nCompile and link with the " esc(pc) " package:\n.PP\n.nf\n.RS\ncc prog.c $(pkg\\-config \\-\\-cflags \\-\\-libs " esc(pc) ")\n.RE\n.fi\n"
}

# The SYNOPSIS line(s) of one prototype, wrapped after commas.
function synopsis(proto,   f, pre, name, params, n, a, k, d, i, ch, cur, lead, plain, r, width, ind) {
  split(proto, f, "\t")
  pre = f[1]
  name = f[2]
  params = f[3]
  lead = pre (pre ~ /\*$/ || pre == "" ? "" : " ")
  # split params at top-level commas
  n = 0
  d = 0
  cur = ""
  for (i = 1; i <= length(params); i++) {
    ch = substr(params, i, 1)
    if (ch == "(")
      d++
    else if (ch == ")")
      d--
    if (ch == "," && d == 0) {
      a[++n] = trim(cur)
      cur = ""
    } else {
      cur = cur ch
    }
  }
  a[++n] = trim(cur)
  ind = length(lead name) + 1
  if (ind > 32)
    ind = 8
  plain = lead name "("
  r = esc(lead) "\\fB" esc(name) "\\fP("
  width = length(plain)
  for (k = 1; k <= n; k++) {
    if (k > 1) {
      if (width + 2 + length(a[k]) + 2 > 78) {
        r = r ",\n" sprintf("%" ind "s", "")
        width = ind
      } else {
        r = r ", "
        width += 2
      }
    }
    r = r esc(a[k])
    width += length(a[k])
  }
  return r ");\n"
}

# The X-macro entries of error.h: codes X(ENAME, value, class, "message")
# where class is a class id of CONC_ERRCLASS_LIST (X(id, "Python name",
# base)) or, in older headers, the quoted Python name itself.
function parse_errors(   s, i, n, ch, q, d, f, nf, k, start, cls, ncodes, cname) {
  s = errtext
  gsub(/\\/, " ", s)
  n = length(s)
  ncodes = 0
  i = 1
  while ((start = index(substr(s, i), "X(")) > 0) {
    i += start + 1
    nf = 1
    f[1] = ""
    q = 0
    d = 0
    for (; i <= n; i++) {
      ch = substr(s, i, 1)
      if (q) {
        if (ch == "\"")
          q = 0
        f[nf] = f[nf] ch
        continue
      }
      if (ch == "\"")
        q = 1
      else if (ch == "(")
        d++
      else if (ch == ")" && d-- == 0)
        break
      else if (ch == "," && d == 0) {
        f[++nf] = ""
        continue
      }
      f[nf] = f[nf] ch
    }
    for (k = 1; k <= nf; k++)
      f[k] = trim(f[k])
    if (nf == 3 && f[2] ~ /^".*"$/)
      pyname[f[1]] = substr(f[2], 2, length(f[2]) - 2)
    else if (nf == 4 && f[1] ~ /^E[A-Z0-9]+$/ && f[4] ~ /^".*"$/) {
      cname = "CONC_" f[1]
      codes[++ncodes] = cname
      errcls[cname] = f[3]
      errmsg[cname] = substr(f[4], 2, length(f[4]) - 2)
    }
  }
  for (k = 1; k <= ncodes; k++) {
    cls = errcls[codes[k]]
    if (cls ~ /^".*"$/)
      errpy[codes[k]] = substr(cls, 2, length(cls) - 2)
    else if (cls in pyname)
      errpy[codes[k]] = pyname[cls]
    else
      errpy[codes[k]] = cls
  }
}

# Every CONC_E* code the comment names, in order of first mention.
function errors_of(text, E,   n, s, c) {
  n = 0
  s = text
  while (match(s, /CONC_E[A-Z0-9]+/)) {
    c = substr(s, RSTART, RLENGTH)
    s = substr(s, RSTART + RLENGTH)
    if ((c in errmsg) && !((c, "seen") in E)) {
      E[c, "seen"] = 1
      E[++n] = c
    }
  }
  return n
}

# Functions a comment names that live on other pages.
function see_also(text, g,   s, c, r, seen) {
  s = text
  r = ""
  while (match(s, /conc_[a-z0-9_]+/)) {
    c = substr(s, RSTART, RLENGTH)
    s = substr(s, RSTART + RLENGTH)
    if ((c in fngroup) && fngroup[c] != g && !(c in seen)) {
      seen[c] = 1
      r = r ".BR " c " (3),\n"
    }
  }
  return r
}

function write_group(g,   file, m, i, k, page, r, E, ne, f, flags, text, names, sum, noret) {
  m = gmod[g]
  page = gfn[g, 1]
  file = out "/man3/" page ".3"
  text = gdoc[g]
  names = ""
  flags = ""
  for (i = 1; i <= gn[g]; i++) {
    names = names (i > 1 ? ", " : "") esc(gfn[g, i])
    split(gproto[g, i], f, "\t")
    flags = flags f[4]
  }
  sum = text != "" ? summary(text, 0) : ""
  if (sum == "")
    sum = "a function of the " m " module"
  r = th(page, 3)
  r = r ".SH NAME\n" names " \\- " esc(sum) "\n"
  r = r ".SH SYNOPSIS\n.nf\n.B #include <conc/" m ".h>\n.PP\n"
  for (i = 1; i <= gn[g]; i++)
    r = r synopsis(gproto[g, i])
  r = r ".fi\n" link_line(m)
  r = r ".SH DESCRIPTION\n"
  if (text != "")
    r = r render(text)
  else
    r = r ".PP\nThe header has no comment on this declaration; conc_" m "(3)\ndescribes the module.\n"
  # codes named in examples (verbatim lines) are not this function's errors
  ne = errors_of(text != "" ? render_prose : "", E)
  noret = (flags ~ /n/)
  if (noret || ne > 0 || flags ~ /w/) {
    r = r ".SH RETURN VALUE\n"
    if (noret)
      r = r (gn[g] > 1 ? ".PP\nThe _Noreturn functions do not return.\n" : ".PP\nDoes not return.\n")
    if (ne > 0)
      r = r ".PP\nA negative value is one of the error codes under ERRORS;\nwhat 0 or a positive value means is in DESCRIPTION.\n"
    if (flags ~ /w/)
      r = r ".PP\nThe compiler warns when the result is ignored (warn_unused_result).\n"
  }
  if (ne > 0) {
    r = r ".SH ERRORS\n.PP\nThe codes the description names; what each means in general, with the\nPython exception it stands for:\n"
    for (k = 1; k <= ne; k++)
      r = r ".TP\n.B " E[k] "\n" esc(errmsg[E[k]]) " (Python: " esc(errpy[E[k]]) ")\n"
  }
  r = r ".SH SEE ALSO\n" see_also(text, g) ".BR conc_" m " (3),\n.BR libconc (7)\n"
  printf "%s", r > file
  close(file)
  for (i = 2; i <= gn[g]; i++) {
    file = out "/man3/" gfn[g, i] ".3"
    print ".so man3/" page ".3" > file
    close(file)
  }
}

# The module's public types, each under its comment, as written.
function types_section(m,   r, k, n, L, i) {
  if (!ntypes[m])
    return ""
  r = ".SH TYPES\n"
  for (k = 1; k <= ntypes[m]; k++) {
    r = r ".SS " esc(tname[m, k]) "\n"
    if (tdoc[m, k] != "")
      r = r render(tdoc[m, k])
    r = r ".PP\n.nf\n.RS 4\n"
    n = split(ttext[m, k], L, "\n")
    while (n > 0 && L[n] ~ /^[ \t]*$/)
      n--
    for (i = 1; i <= n; i++) {
      gsub(/\t/, "        ", L[i])
      r = r "\\&" esc(L[i]) "\n"
    }
    r = r ".RE\n.fi\n"
  }
  return r
}

function write_module(m,   file, r, n, t, i, g, s) {
  file = out "/man3/conc_" m ".3"
  s = (m in top) ? summary(top[m], 1) : ""
  if (s == "")
    s = "the " m " module of libconc"
  r = th("conc_" m, 3)
  r = r ".SH NAME\nconc_" m " \\- " esc(s) "\n"
  r = r ".SH SYNOPSIS\n.nf\n.B #include <conc/" m ".h>\n.fi\n" link_line(m)
  r = r ".SH DESCRIPTION\n"
  if (m in top)
    r = r render(top[m])
  else
    r = r ".PP\nThe header has no overview comment.\n"
  r = r types_section(m)
  n = split(modfns[m], t, " ")
  if (n > 0) {
    r = r ".SH FUNCTIONS\n.PP\nEach has a page of its own; functions documented together share one.\n"
    for (i = 1; i <= n; i++) {
      g = fngroup[t[i]]
      s = gdoc[g] != "" ? summary(gdoc[g], 0) : ""
      r = r ".TP\n.BR " t[i] " (3)\n" (s != "" ? esc(s) : "(no comment in the header)") "\n"
    }
  }
  r = r ".SH SEE ALSO\n.BR libconc (7)"
  if (m in guide)
    r = r ",\nthe guide page\n.I share/doc/conc/" guide[m] "\nunder the install prefix"
  r = r "\n"
  printf "%s", r > file
  close(file)
}

function write_index(   file, r, i, m, s) {
  file = out "/man7/libconc.7"
  r = th("libconc", 7)
  r = r ".SH NAME\nlibconc, conc \\- Python's concurrency toolbox for C\n"
  r = r ".SH SYNOPSIS\n.nf\n.B #include <conc.h>\n.fi\n" link_line("")
  r = r ".SH DESCRIPTION\n.PP\nlibconc brings Python's threading, queue, concurrent.futures,\nmultiprocessing, asyncio and greenlet/gevent objects to C with Python's\nsemantics: the same objects, method names, timeout rules and exceptions\n(as error codes).\n"
  r = r ".PP\nObjects are caller\\-allocated \\fBconc_\\fP\\fInoun\\fP\\fB_t\\fP with\n\\fBconc_\\fP\\fInoun\\fP\\fB_init\\fP(obj, ..., &opts) and\n\\fBconc_\\fP\\fInoun\\fP\\fB_destroy\\fP(obj); an options struct of zeros (or NULL)\nmeans Python's defaults. Errors are negative \\fBCONC_E\\fP* codes, one per\nPython exception (\\fBconc_error\\fP(3)). Timeouts are \\fBdouble\\fP seconds,\n\\fBCONC_FOREVER\\fP for Python's None.\n"
  r = r ".SH READING THESE PAGES\n.PP\nEvery public function has a page under its own name:\n\\fBman conc_queue_get\\fP.\nFunctions that one header comment documents together share a page, which\nlists them all. Each module page below carries its header's overview,\nwith the Python\\-to\\-C table, and lists its functions.\nThe pages are generated from the comments in the installed headers\n(\\fIinclude/conc/*.h\\fP), which stay the reference.\n"
  r = r ".SH MODULES\n"
  for (i = 1; i <= nmods; i++) {
    m = mods[i]
    s = (m in top) ? summary(top[m], 1, 1) : ""
    r = r ".TP\n.BR conc_" m " (3)\n" esc(s != "" ? s : "the " m " module") "\n"
  }
  r = r ".SH FILES\n.TP\n.I share/doc/conc/\nthe guide (index.md first) and the tutorial lessons\n(\\fIexamples/*.c\\fP), under the install prefix.\n"
  r = r ".SH SEE ALSO\n.BR pkg\\-config (1)\n"
  printf "%s", r > file
  close(file)
  file = out "/man3/conc.3"
  print ".so man7/libconc.7" > file
  close(file)
}

END {
  if (failed)
    exit 1
  if (nfns == 0)
    fail("no CONC_EXTERN function found")
  parse_errors()
  for (gi = 1; gi <= ngroups; gi++)
    write_group(gi)
  for (mi = 1; mi <= nmods; mi++)
    write_module(mods[mi])
  write_index()
  printf "genman: %d pages for %d functions in %d headers\n", ngroups, nfns, nmods
}
