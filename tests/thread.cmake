# The thread tests fork while other threads run and start threads in the
# child (spec T13 and the fork rules); ThreadSanitizer refuses that unless
# told not to.
if(TARGET test_thread)
  set_property(TEST test_thread APPEND PROPERTY ENVIRONMENT
    "TSAN_OPTIONS=die_after_fork=0")
endif()
