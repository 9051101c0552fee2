// Boost.Context baseline for bench_coro: the raw jump_fcontext/make_fcontext
// pair (Debian's libboost-context-dev), the fastest C-callable switch Boost
// offers. Built only when bench/coro.cmake finds Boost.Context.
#include <boost/context/detail/fcontext.hpp>

#include <chrono>
#include <cstdlib>

namespace ctx = boost::context::detail;

namespace {
constexpr std::size_t kStack = 64 * 1024;

void ping(ctx::transfer_t t) {
  for (;;)
    t = ctx::jump_fcontext(t.fctx, nullptr);
}

void once(ctx::transfer_t t) { ctx::jump_fcontext(t.fctx, nullptr); }

double now() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}
} // namespace

// n one-way switches (n / 2 round trips); returns seconds.
extern "C" double bench_boost_switch(long n) {
  char *stack = static_cast<char *>(std::malloc(kStack));
  if (!stack)
    return -1;
  ctx::fcontext_t c = ctx::make_fcontext(stack + kStack, kStack, ping);
  c = ctx::jump_fcontext(c, nullptr).fctx;
  double t0 = now();
  for (long i = 0; i < n / 2; i++)
    c = ctx::jump_fcontext(c, nullptr).fctx;
  double t = now() - t0;
  std::free(stack);
  return t;
}

// n times: make a context on a reused stack, enter it, come back.
extern "C" double bench_boost_create(long n) {
  char *stack = static_cast<char *>(std::malloc(kStack));
  if (!stack)
    return -1;
  double t0 = now();
  for (long i = 0; i < n; i++) {
    ctx::fcontext_t c = ctx::make_fcontext(stack + kStack, kStack, once);
    ctx::jump_fcontext(c, nullptr);
  }
  double t = now() - t0;
  std::free(stack);
  return t;
}
