# The thread tests fork while other threads run and start threads in the
# child (spec T13 and the fork rules); ThreadSanitizer refuses that unless
# told not to. The options CI sets at configure time are kept.
if(TARGET test_thread)
  set(_conc_thread_tsan "$ENV{TSAN_OPTIONS}")
  if(_conc_thread_tsan)
    string(APPEND _conc_thread_tsan ":")
  endif()
  set_property(TEST test_thread APPEND PROPERTY ENVIRONMENT
    "TSAN_OPTIONS=${_conc_thread_tsan}die_after_fork=0")
endif()
