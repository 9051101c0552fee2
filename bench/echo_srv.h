/*
 * bench/echo_srv.c, the server children of bench/bench_echo.c: libconc
 * (streams, and cooperative sockets), a raw epoll server, libuv, and the
 * Python servers (asyncio / uvloop / gevent) as one script.
 */
#ifndef CONC_BENCH_ECHO_SRV_H
#define CONC_BENCH_ECHO_SRV_H

/* Bytes each server reads at most per call; the listen backlog. */
enum { ECHO_RD = 16384, ECHO_BACKLOG = 4096 };

/* `bench_echo --server KIND`: KIND is conc, conc-sock, epoll or uv. Prints
 * the port on a line (or "skipped"; a libconc server adds its loop's
 * backend after the port), serves until stdin closes. A libconc
 * server answers "mem" on stdin with "<live handlers> <KiB of their
 * resident stack pages>". */
int echo_server_child(const char *kind);

/* `python3 -c echo_py_server KIND`, KIND asyncio, uvloop or gevent: the
 * same protocol; "skipped" when the module is missing. */
extern const char echo_py_server[];

#endif
