# Coroutine switch backend (issue 5): CONC_CORO_BACKEND = auto | ucontext | asm.
#   asm       hand-written x86_64 / aarch64 switch (src/coro_asm_<arch>.S)
#   ucontext  POSIX swapcontext (glibc; musl has none)
#   auto      asm where the target architecture has it, else ucontext;
#             configure fails with a clear message when neither links.
# CONC_CORO_SAVE_FPU: the asm switch also saves MXCSR + x87 CW (x86_64) or
# FPCR (aarch64), so a coroutine's rounding mode stays its own.
set(CONC_CORO_BACKEND "auto" CACHE STRING "Coroutine switch: auto | ucontext | asm")
set_property(CACHE CONC_CORO_BACKEND PROPERTY STRINGS auto ucontext asm)
option(CONC_CORO_SAVE_FPU "Coroutine switch saves FP control words (asm backends)" OFF)

list(REMOVE_ITEM CONC_SOURCES
  "${CMAKE_CURRENT_SOURCE_DIR}/coro_asm.c"
  "${CMAKE_CURRENT_SOURCE_DIR}/coro_ucontext.c")

string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" _coro_cpu)
set(_coro_asm "")
if(_coro_cpu MATCHES "^(x86_64|amd64)$" AND CMAKE_SIZEOF_VOID_P EQUAL 8)
  set(_coro_asm "${CMAKE_CURRENT_SOURCE_DIR}/coro_asm_x86_64.S")
elseif(_coro_cpu MATCHES "^(aarch64|arm64)$")
  set(_coro_asm "${CMAKE_CURRENT_SOURCE_DIR}/coro_asm_aarch64.S")
endif()

include(CheckCSourceCompiles)
set(CMAKE_REQUIRED_DEFINITIONS -D_GNU_SOURCE)
check_c_source_compiles([=[
#include <ucontext.h>
static ucontext_t a, b;
static void f(void) { swapcontext(&b, &a); }
int main(void) {
  static char st[16384];
  getcontext(&b);
  b.uc_stack.ss_sp = st;
  b.uc_stack.ss_size = sizeof st;
  makecontext(&b, f, 0);
  return swapcontext(&a, &b);
}]=] CONC_HAVE_UCONTEXT)
unset(CMAKE_REQUIRED_DEFINITIONS)

set(_coro_backend "${CONC_CORO_BACKEND}")
if(_coro_backend STREQUAL "auto")
  if(_coro_asm)
    set(_coro_backend asm)
  elseif(CONC_HAVE_UCONTEXT)
    set(_coro_backend ucontext)
  else()
    message(FATAL_ERROR "libconc coroutines: no switch backend for "
      "${CMAKE_SYSTEM_PROCESSOR}: there is no assembly backend for this "
      "architecture (x86_64 and aarch64 have one) and the C library has no "
      "usable ucontext (getcontext/makecontext/swapcontext; musl lacks them).")
  endif()
endif()

if(_coro_backend STREQUAL "asm")
  if(NOT _coro_asm)
    message(FATAL_ERROR "libconc coroutines: CONC_CORO_BACKEND=asm but there is "
      "no assembly backend for ${CMAKE_SYSTEM_PROCESSOR} (x86_64 and aarch64 "
      "have one); use CONC_CORO_BACKEND=ucontext or auto.")
  endif()
  enable_language(ASM)
  list(APPEND CONC_SOURCES "${_coro_asm}" "${CMAKE_CURRENT_SOURCE_DIR}/coro_asm.c")
  if(CONC_CORO_SAVE_FPU)
    list(APPEND CONC_PRIVATE_DEFS CONC_CORO_SAVE_FPU=1)
  endif()
elseif(_coro_backend STREQUAL "ucontext")
  if(NOT CONC_HAVE_UCONTEXT)
    message(FATAL_ERROR "libconc coroutines: CONC_CORO_BACKEND=ucontext but the "
      "C library has no usable ucontext (musl lacks it); use "
      "CONC_CORO_BACKEND=asm or auto on x86_64 / aarch64.")
  endif()
  list(APPEND CONC_SOURCES "${CMAKE_CURRENT_SOURCE_DIR}/coro_ucontext.c")
else()
  message(FATAL_ERROR "CONC_CORO_BACKEND must be auto, ucontext or asm "
    "(got '${CONC_CORO_BACKEND}')")
endif()
set(CONC_CORO_BACKEND_USED ${_coro_backend} CACHE INTERNAL "")
if(CONC_CORO_SAVE_FPU AND _coro_backend STREQUAL "asm")
  message(STATUS "libconc coroutine backend: asm (saves FP control words)")
else()
  message(STATUS "libconc coroutine backend: ${_coro_backend}")
endif()
