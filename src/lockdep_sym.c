/*
 * Names for the lock-order checker's classes and reports (lockdep.c,
 * lockdep_report.c): the symbol of a global or static lock object, and a
 * function+offset for a code address.
 * dladdr only sees the dynamic symbol table, which holds exported symbols
 * alone; a static lock (`static conc_lock_t mu`) or a static function is
 * found in the binary's own symbol table, read from its file (nothing is
 * found in a stripped binary). Locking: none; each call maps the file,
 * searches it and unmaps it (classes are named once each).
 */
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lockdep-int.h"

/* Search one ELF symbol table section for a symbol of `type` covering
 * `off`. */
static const char *symtab_find(const unsigned char *img, size_t size,
                               const ElfW(Shdr) * sh, unsigned type,
                               uintptr_t off, uintptr_t *start) {
  const ElfW(Ehdr) *eh = (const void *)img;
  if (sh->sh_link >= eh->e_shnum || sh->sh_offset + sh->sh_size > size)
    return NULL;
  const ElfW(Shdr) *strs =
      (const void *)(img + eh->e_shoff + sh->sh_link * sizeof(ElfW(Shdr)));
  const ElfW(Sym) *sym = (const void *)(img + sh->sh_offset);
  size_t n = sh->sh_size / sizeof *sym;
  for (size_t i = 0; i < n; i++) {
    if (ELF64_ST_TYPE(sym[i].st_info) != type || off < sym[i].st_value ||
        off >= sym[i].st_value + sym[i].st_size ||
        strs->sh_offset + sym[i].st_name >= size)
      continue;
    *start = sym[i].st_value;
    return (const char *)img + strs->sh_offset + sym[i].st_name;
  }
  return NULL;
}

/* The symbol of `type` (STT_OBJECT, STT_FUNC) covering addr, from the full
 * symbol table of the file that holds it: "name" or "name+0x1c". */
static bool file_symbol(const void *addr, unsigned type, char *out, size_t n) {
  Dl_info di;
  if (!dladdr(addr, &di) || !di.dli_fname)
    return false;
  const char *path = di.dli_fname[0] ? di.dli_fname : "/proc/self/exe";
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  struct stat st;
  void *img = MAP_FAILED;
  if (fstat(fd, &st) == 0 && st.st_size > (off_t)sizeof(ElfW(Ehdr)))
    img = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (img == MAP_FAILED)
    return false;
  const ElfW(Ehdr) *eh = img;
  size_t size = (size_t)st.st_size;
  uintptr_t off = (uintptr_t)addr;
  if (eh->e_type == ET_DYN)
    off -= (uintptr_t)di.dli_fbase;
  const char *name = NULL;
  uintptr_t start = 0;
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 &&
      eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) <= size) {
    const ElfW(Shdr) *sh = (const void *)((char *)img + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum && !name; i++)
      if (sh[i].sh_type == SHT_SYMTAB)
        name = symtab_find(img, size, &sh[i], type, off, &start);
  }
  if (name)
    snprintf(out, n, off != start ? "%s+%#" PRIxPTR : "%s", name, off - start);
  munmap(img, size);
  return name != NULL;
}

bool conc__ld_object_symbol(const void *obj, char *out, size_t n) {
  Dl_info di;
  if (dladdr(obj, &di) && di.dli_sname && di.dli_saddr) {
    uintptr_t d = (uintptr_t)obj - (uintptr_t)di.dli_saddr;
    snprintf(out, n, d ? "%s+%#" PRIxPTR : "%s", di.dli_sname, d);
    return true;
  }
  return file_symbol(obj, STT_OBJECT, out, n);
}

void conc__ld_site_name(const void *site, char *out, size_t n) {
  Dl_info di;
  if (!site || !dladdr(site, &di)) {
    snprintf(out, n, "%p", site);
  } else if (di.dli_sname && di.dli_saddr) {
    snprintf(out, n, "%s+%#" PRIxPTR, di.dli_sname,
             (uintptr_t)site - (uintptr_t)di.dli_saddr);
  } else if (!file_symbol(site, STT_FUNC, out, n)) {
    snprintf(out, n, "%s+%#" PRIxPTR, di.dli_fname ? di.dli_fname : "?",
             (uintptr_t)site - (uintptr_t)di.dli_fbase);
  }
}
