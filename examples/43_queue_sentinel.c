// clang-format off
/*
 * Lesson 43: a bounded Queue(2) feeding three workers that stop on a
 * sentinel.
 * Seed 003 ("Очереди": worker(q) loops on q.get(), downloads the page at
 * each URL and collects its <title>; None ends the loop. q =
 * queue.Queue(maxsize=2); three workers run in the executor; main puts
 * three URLs, then one None per worker, and prints each worker's result).
 *
 *   Python:                                  C:
 *   q = queue.Queue(maxsize=2)               conc_queue_init(&q, &(conc_queue_opts_t){.maxsize = 2});
 *   item = q.get()                           conc_queue_get(&q, &item, true, CONC_FOREVER);
 *   if item is None: break                   if (item == NULL) break;
 *   futures = [executor.submit(worker, q)    conc_executor_submit(&ex, worker, &q, &futures[i]);
 *              for _ in range(num_workers)]
 *   q.put(item)                              conc_queue_put(&q, (void *)url, true, CONC_FOREVER);
 *   q.put(None)                              conc_queue_put(&q, NULL, true, CONC_FOREVER);
 *   print(t.result())                        conc_future_result(futures[i], CONC_FOREVER, &v);
 *
 * No network here: fetch() looks the URL up in a small table of local
 * pages and sleeps 20-60 ms to play the download. With maxsize=2 the main
 * thread's third put blocks until a worker has taken a URL: the queue
 * paces the producer. Which worker gets which page varies from run to
 * run, so each worker reports how many pages it fetched, and the titles
 * are printed sorted at the end.
 */
// clang-format on
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conc.h>

#define NUM_WORKERS 3

static const struct page {
  const char *url, *html;
  double latency;
} pages[] = {
    {"http://fontanka.ru",
     "<html><title> fontanka.ru - news of Saint Petersburg </title></html>",
     0.06},
    {"http://lenta.ru",
     "<html><title>Lenta.ru - news of Russia and the world</title></html>",
     0.02},
    {"http://gazeta.ru", "<html><title> Gazeta.Ru - main news</title></html>",
     0.04},
};

/* requests.get(url).text, from the local table. */
static const char *fetch(const char *url) {
  for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
    if (strcmp(pages[i].url, url) == 0) {
      conc_sleep(pages[i].latency);
      return pages[i].html;
    }
  return "";
}

/* xpath('//title/text()')[0].strip() into out. */
static void title_of(const char *html, char *out, size_t len) {
  const char *b = strstr(html, "<title>"), *e = strstr(html, "</title>");
  out[0] = '\0';
  if (!b || !e)
    return;
  b += 7;
  while (b < e && *b == ' ')
    b++;
  while (e > b && e[-1] == ' ')
    e--;
  snprintf(out, len, "%.*s", (int)(e - b), b);
}

struct result {
  int fetched;
  char titles[256]; /* ';'.join(titles) */
};

static int worker(void *arg, void **result) {
  conc_queue_t *q = arg;
  struct result *r = calloc(1, sizeof(*r));
  if (!r)
    return CONC_ENOMEM;
  for (;;) {
    void *item;
    conc_queue_get(q, &item, true, CONC_FOREVER);
    if (item == NULL) /* the sentinel */
      break;
    char title[128];
    title_of(fetch(item), title, sizeof title);
    size_t used = strlen(r->titles);
    snprintf(r->titles + used, sizeof r->titles - used, "%s%s",
             r->fetched ? ";" : "", title);
    r->fetched++;
  }
  *result = r;
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void) {
  conc_executor_t ex;
  conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = 3});
  conc_queue_t q;
  conc_queue_init(&q, &(conc_queue_opts_t){.maxsize = 2});

  conc_future_t *futures[NUM_WORKERS];
  for (int i = 0; i < NUM_WORKERS; i++)
    conc_executor_submit(&ex, worker, &q, &futures[i]);

  for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
    conc_queue_put(&q, (void *)pages[i].url, true, CONC_FOREVER);
  for (int i = 0; i < NUM_WORKERS; i++)
    conc_queue_put(&q, NULL, true, CONC_FOREVER);

  char all[3][128];
  char *sorted[3];
  int n = 0;
  for (int i = 0; i < NUM_WORKERS; i++) {
    void *v;
    conc_future_result(futures[i], CONC_FOREVER, &v);
    conc_future_release(futures[i]);
    struct result *r = v;
    printf("worker %d fetched %d page(s)\n", i, r->fetched);
    for (char *tok = strtok(r->titles, ";"); tok && n < 3;
         tok = strtok(NULL, ";")) {
      snprintf(all[n], sizeof all[n], "%s", tok);
      sorted[n] = all[n];
      n++;
    }
    free(r);
  }
  qsort(sorted, (size_t)n, sizeof sorted[0], cmp_str);
  for (int i = 0; i < n; i++)
    printf("%s\n", sorted[i]);

  conc_queue_destroy(&q);
  conc_executor_destroy(&ex);
  return 0;
}
