/* Internal hooks of Pipe / Connection (tests only). */
#ifndef CONC_CHANNEL_INT_H
#define CONC_CHANNEL_INT_H

/* When set in a process, that process kills itself with SIGKILL at a point
 * where a naive descriptor-passing scheme would leave a stray descriptor:
 * 1 in send_fd on a pipe-built duplex end, after the descriptor went on the
 * socket but before the pipe record naming it; 2 after a record was
 * written but before it was counted for a spinning reader. The F5 tests use
 * it. */
extern int conc__conn_crash_point;

#endif
