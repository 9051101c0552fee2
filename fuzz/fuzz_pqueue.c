/*
 * libFuzzer target: the record format of the process Queue (src/pqueue.c)
 * with hostile and torn records. A queue shares its ring with every
 * process holding it, so a peer can leave any bytes there; this target
 * plays that peer. It runs a sequence of puts and gets with valid items
 * and, between them, overwrites ring bytes inside the committed [head,
 * tail) span (headers included) with fuzzer bytes. The oracle:
 *   - no get or put crashes or touches memory outside the ring (ASan);
 *   - a get returns 0 with a length that fits in the committed span, or
 *     refuses with CONC_ENOTRECOVERABLE, or CONC_EEMPTY / CONC_ETOOSHORT;
 *   - while nothing was overwritten, every item comes back intact, in
 *     order (a model FIFO of lengths and fill bytes).
 *
 * Locking: single-threaded; the queue takes its own lock.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "conc/pqueue.h"
#include "pqueue-int.h"

enum { CAP = 512, MODEL = 128 };

struct item {
  uint32_t len;
  uint8_t fill;
};

static void check_get(conc_pqueue_t *q, const uint8_t *op, bool dirty,
                      struct item *model, unsigned *mh, unsigned mt) {
  uint64_t cap, head, tail;
  conc__pqueue_ring(q, &cap, &head, &tail);
  unsigned char buf[CAP];
  void *m = NULL;
  size_t len = 0;
  bool into = op[1] & 1;
  int rc = into ? conc_pqueue_get_into(q, buf, op[2] * 4u, &len, false, 0)
                : conc_pqueue_get(q, &m, &len, false, 0);
  const unsigned char *got = into ? buf : m;
  if (rc == 0) {
    if (len + 8 > tail - head)
      abort(); /* a length beyond the committed bytes was followed */
    if (!dirty) {
      struct item want = model[*mh % MODEL];
      if (*mh == mt || len != want.len)
        abort();
      for (size_t i = 0; i < len; i++)
        if (got[i] != want.fill)
          abort();
    }
    if (*mh != mt)
      (*mh)++;
  } else if (rc == CONC_ETOOSHORT) {
    if (!into)
      abort();
  } else if (rc == CONC_EEMPTY) {
    if (!dirty && *mh != mt)
      abort();
  } else if (rc != CONC_ENOTRECOVERABLE || !dirty) {
    abort();
  }
  free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Ops of 4 bytes: [kind][a][b][c]. kind%3: 0 put a*2 bytes of fill b,
 * 1 get (a&1: get_into with room c*4), 2 write byte c at head + a*2 + b
 * (inside the committed span). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  conc_pqueue_t q;
  if (conc_pqueue_init(&q, 0, &(conc_pqueue_opts_t){.capacity = CAP}))
    abort();
  struct item model[MODEL];
  unsigned mh = 0, mt = 0;
  bool dirty = false;
  unsigned char item[CAP];
  for (size_t i = 0; i + 4 <= size; i += 4) {
    const uint8_t *op = data + i;
    switch (op[0] % 3) {
    case 0: {
      uint32_t len = op[1] * 2u;
      memset(item, op[2], len);
      int rc = conc_pqueue_put_nowait(&q, item, len);
      if (rc == 0 && mt - mh < MODEL)
        model[mt++ % MODEL] = (struct item){len, op[2]};
      else if (rc == 0)
        dirty = true; /* the model is full: stop checking contents */
      else if (rc != CONC_EFULL && rc != CONC_EMSGSIZE &&
               !(dirty && rc == CONC_ENOTRECOVERABLE))
        abort();
      break;
    }
    case 1:
      check_get(&q, op, dirty, model, &mh, mt);
      break;
    default: {
      uint64_t cap, head, tail;
      unsigned char *ring = conc__pqueue_ring(&q, &cap, &head, &tail);
      if (tail == head)
        break;
      uint64_t at = head + (op[1] * 2u + op[2]) % (tail - head);
      ring[at % cap] = op[3];
      dirty = true;
    }
    }
  }
  conc_pqueue_destroy(&q);
  return 0;
}
