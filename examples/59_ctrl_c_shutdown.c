// clang-format off
/*
 * Lesson 59: stopping a loop program cleanly on Ctrl-C (issue 12's lesson;
 * asyncio's loop.add_signal_handler).
 *
 * Python:                                      C:
 *   main_task = asyncio.current_task()           conc_aio_future_t *me = conc_aio_current_task();
 *   loop.add_signal_handler(signal.SIGINT,       conc_loop_add_signal_handler(loop, SIGINT,
 *                           main_task.cancel)                                 on_sigint, me);
 *   try:                                         rc = conc_aio_server_serve_forever(srv);
 *       await server.serve_forever()             if (rc == CONC_ECANCELED) {
 *   except asyncio.CancelledError:                 conc_aio_task_uncancel(me);
 *       main_task.uncancel()                       (cancel the other tasks, await them)
 *       for t in tasks: t.cancel()               }
 *       await asyncio.gather(*tasks,             conc_aio_gather(ts, n, &(conc_aio_gather_opts_t){
 *           return_exceptions=True)                  .return_exceptions = true, .codes = codes}, &g);
 *   await server.wait_closed()                   conc_aio_server_wait_closed(srv);
 *
 * Without a handler, Ctrl-C kills a C program on the spot (Python raises
 * KeyboardInterrupt wherever the main thread happens to be). The handler
 * only writes the signal's number to a pipe the loop watches; the callback
 * then runs on the loop's thread like any other callback, so it may cancel
 * the main task. The cancel arrives in main's pending await
 * (serve_forever, which also closes the server: no new connections), and
 * main stops the rest in order: each task gets CONC_ECANCELED at the await
 * it is blocked in and unwinds through its own cleanup, which may itself
 * await (the saver flushes for 20 ms). A connection's handler is not
 * cancelled: a closed server lets running handlers finish, and this one
 * ends when its client closes the connection; wait_closed waits for it.
 *
 * A real program gets SIGINT from the terminal when the user presses
 * Ctrl-C. So that the lesson runs unattended (and as a test), it sends the
 * signal to itself after 0.2 s with kill(getpid(), SIGINT), from a timer.
 */
// clang-format on
#define _POSIX_C_SOURCE 200809L /* kill */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <conc.h>

enum { TICKER, CLIENT, SAVER, NTASKS };
static const char *names[NTASKS] = {"ticker", "client", "saver"};
static const char *how[NTASKS]; /* how each task unwound */
static const char *handler_end; /* how the connection's handler ended */
static int port;

/* ---- the signal ---------------------------------------------------------- */

static void on_sigint(void *main_task) {
  printf("SIGINT: cancelling the main task\n");
  conc_aio_cancel(main_task, "Ctrl-C");
}

static void press_ctrl_c(void *arg) {
  (void)arg;
  kill(getpid(), SIGINT); /* what the terminal does on Ctrl-C */
}

/* ---- the program's tasks ------------------------------------------------- */

static int handle(conc_aio_stream_t *s, void *arg) {
  (void)arg;
  char line[128];
  ssize_t n;
  while ((n = conc_aio_stream_readline(s, line, sizeof line)) > 0)
    ; /* reads requests and never answers: its client waits */
  handler_end = n == 0 ? "its client closed the connection: it returned"
                       : "the connection failed";
  return 0;
}

static int ticker(void *arg, void **res) {
  (void)arg, (void)res;
  int rc;
  while ((rc = conc_aio_sleep(0.05)) == 0)
    ; /* periodic work */
  how[TICKER] = rc == CONC_ECANCELED ? "cancelled in sleep()" : "failed";
  return rc;
}

static int client(void *arg, void **res) {
  (void)arg, (void)res;
  conc_aio_stream_t *s;
  int rc = conc_aio_open_connection("127.0.0.1", port, NULL, &s);
  if (rc)
    return rc;
  rc = conc_aio_stream_write(s, "hello?\n", 7);
  char answer[128];
  ssize_t n = rc ? rc : conc_aio_stream_readline(s, answer, sizeof answer);
  conc_aio_stream_release(s); /* cleanup: close the connection */
  how[CLIENT] = n == CONC_ECANCELED ? "cancelled in readline(), closed its "
                                      "connection"
                                    : "failed";
  return (int)n;
}

static int saver(void *arg, void **res) {
  (void)arg, (void)res;
  int rc = conc_aio_sleep(3600); /* waits for something to save */
  if (rc != CONC_ECANCELED)
    return rc;
  /* The cancel was delivered; the cleanup may await again (asyncio: an
   * await in `except CancelledError:` or `finally:`). */
  conc_aio_sleep(0.02); /* flush the state */
  how[SAVER] = "cancelled in sleep(), then flushed its state (20 ms)";
  return CONC_ECANCELED; /* ends cancelled, as `raise` would */
}

/* ---- main ---------------------------------------------------------------- */

static int stop_tasks(conc_aio_future_t **ts) {
  int codes[NTASKS];
  conc_aio_future_t *g;
  for (int i = 0; i < NTASKS; i++)
    conc_aio_cancel(ts[i], NULL);
  int rc = conc_aio_gather(
      ts, NTASKS,
      &(conc_aio_gather_opts_t){.return_exceptions = true, .codes = codes}, &g);
  if (rc == 0)
    rc = conc_aio_await(g, NULL);
  conc_aio_future_release(g);
  for (int i = 0; i < NTASKS && rc == 0; i++)
    printf("  %-7s %s: %s\n", names[i], conc_err_name(codes[i]),
           how[i] ? how[i] : "?");
  return rc;
}

static int lesson(void *arg, void **res) {
  (void)arg, (void)res;
  conc_loop_t *loop = conc_loop_running();
  conc_aio_future_t *me = conc_aio_current_task();
  int rc = conc_loop_add_signal_handler(loop, SIGINT, on_sigint, me);
  if (rc)
    return rc;
  conc_aio_server_t *srv;
  rc = conc_aio_start_server(handle, NULL, "127.0.0.1", 0, NULL, &srv);
  if (rc)
    return rc;
  port = conc_aio_server_port(srv);
  conc_aio_future_t *ts[NTASKS] = {0};
  conc_aio_fn_t fns[NTASKS] = {ticker, client, saver};
  for (int i = 0; i < NTASKS && rc == 0; i++)
    rc = conc_aio_create_task(
        NULL, fns[i], NULL, &(conc_aio_task_opts_t){.name = names[i]}, &ts[i]);
  if (rc == 0)
    rc = conc_loop_call_later(loop, 0.2, press_ctrl_c, NULL, NULL);
  if (rc)
    return rc;
  printf("serving on 127.0.0.1 with 3 tasks; press Ctrl-C to stop\n");
  printf("(the lesson presses it itself after 0.2 s)\n");

  rc = conc_aio_server_serve_forever(srv); /* until Ctrl-C */
  printf("main: serve_forever() returned %s; the server is %s\n",
         conc_err_name(rc),
         conc_aio_server_is_serving(srv) ? "still serving" : "closed");
  if (rc == CONC_ECANCELED) /* we handle it: no longer being cancelled */
    conc_aio_task_uncancel(me);
  printf("main: cancelling the tasks; how each unwound:\n");
  rc = stop_tasks(ts);
  int wc = conc_aio_server_wait_closed(srv);
  printf("main: wait_closed() returned %s; the connection's handler: %s\n",
         conc_err_name(wc), handler_end ? handler_end : "?");
  for (int i = 0; i < NTASKS; i++)
    conc_aio_future_release(ts[i]);
  conc_aio_server_release(srv);
  conc_loop_remove_signal_handler(loop, SIGINT); /* Ctrl-C kills again */
  printf("main: a clean stop\n");
  return rc ? rc : wc;
}

int main(void) {
  void *res;
  int rc = conc_aio_run(lesson, NULL, NULL, &res);
  if (rc)
    printf("failed: %s\n", conc_err_name(rc));
  return rc != 0;
}
