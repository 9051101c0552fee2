/*
 * The task registry: CONC_TASK and CONC_INIT entries of the program's "conc_tasks"
 * section, sorted by name so that every rank running the same build gives
 * a function the same id, plus the identity the ranks compare at start-up.
 * Locking: built once by conc_mpi_main_ before any pool or thread uses it,
 * read-only afterwards.
 */
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "mpi-int.h"

static conc_task_entry_t *by_name; /* sorted by name: index = task id */
static struct byfn {
  conc_pool_func_t fn;
  uint32_t id;
} * by_fn;                  /* sorted by address, for the master's lookups */
static uint32_t count, nfn; /* entries; tasks among them */

static int cmp_name(const void *a, const void *b) {
  return strcmp(((const conc_task_entry_t *)a)->name,
                ((const conc_task_entry_t *)b)->name);
}

static int cmp_fn(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const struct byfn *)a)->fn;
  uintptr_t y = (uintptr_t)((const struct byfn *)b)->fn;
  return x < y ? -1 : x > y;
}

int conc__mpi_registry_load(const conc_task_entry_t *start,
                            const conc_task_entry_t *stop) {
  size_t n = start && stop && stop > start ? (size_t)(stop - start) : 0;
  by_name = calloc(n ? n : 1, sizeof *by_name);
  by_fn = calloc(n ? n : 1, sizeof *by_fn);
  if (!by_name || !by_fn)
    return CONC_ENOMEM;
  memcpy(by_name, start, n * sizeof *by_name);
  qsort(by_name, n, sizeof *by_name, cmp_name);
  for (size_t i = 0; i + 1 < n; i++)
    if (strcmp(by_name[i].name, by_name[i + 1].name) == 0)
      return conc_raise(CONC_EINVAL, "CONC_TASK name %s registered twice",
                        by_name[i].name);
  nfn = 0; /* tasks only: an initializer's NULL fn must never match */
  for (size_t i = 0; i < n; i++)
    if (by_name[i].fn)
      by_fn[nfn++] = (struct byfn){by_name[i].fn, (uint32_t)i};
  qsort(by_fn, nfn, sizeof *by_fn, cmp_fn);
  count = (uint32_t)n;
  return 0;
}

uint32_t conc__mpi_task_count(void) { return count; }

conc_pool_func_t conc__mpi_task_fn(uint32_t id) {
  return id < count ? by_name[id].fn : NULL;
}

int64_t conc__mpi_task_id(conc_pool_func_t fn) {
  struct byfn key = {.fn = fn};
  const struct byfn *hit =
      fn && nfn ? bsearch(&key, by_fn, nfn, sizeof *by_fn, cmp_fn) : NULL;
  return hit ? (int64_t)hit->id : -1;
}

/* Initializers are few: a scan. */
int64_t conc__mpi_init_id(int (*fn)(void *), size_t *arg_size) {
  for (uint32_t i = 0; fn && i < count; i++)
    if (by_name[i].init == fn) {
      *arg_size = by_name[i].init_arg_size;
      return i;
    }
  return -1;
}

int (*conc__mpi_init_fn(uint32_t id))(void *) {
  return id < count ? by_name[id].init : NULL;
}

const char *conc_mpi_task_name(conc_pool_func_t fn) {
  int64_t id = conc__mpi_task_id(fn);
  return id < 0 ? NULL : by_name[id].name;
}

/* The executable's GNU build id (the first object dl_iterate_phdr lists). */
static int find_build_id(struct dl_phdr_info *info, size_t size, void *out) {
  (void)size;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_NOTE)
      continue;
    const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
    const char *end = p + ph->p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)(const void *)p;
      const char *name = p + sizeof *nh;
      const unsigned char *desc =
          (const unsigned char *)name + ((nh->n_namesz + 3) & ~3u);
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
          memcmp(name, "GNU", 4) == 0) {
        char *o = out;
        for (uint32_t k = 0; k < nh->n_descsz && k < 40; k++)
          sprintf(o + 2 * k, "%02x", desc[k]);
        return 1;
      }
      p = (const char *)desc + ((nh->n_descsz + 3) & ~3u);
    }
  }
  return 1; /* only the executable itself */
}

void conc__mpi_ident(conc__mpi_ident_t *id) {
  memset(id, 0, sizeof *id);
  uint64_t h = 1469598103934665603ull;
  for (uint32_t i = 0; i < count; i++)
    for (const char *s = by_name[i].name;; s++) {
      h = (h ^ (unsigned char)*s) * 1099511628211ull;
      if (!*s)
        break;
    }
  id->table_hash = h;
  id->ntasks = count;
  strcpy(id->build_id, "none");
  dl_iterate_phdr(find_build_id, id->build_id);
}
