# The executor tests fork from pool threads and start a new pool in the
# child, and fork a child whose exit joins the workers; ThreadSanitizer
# refuses threads after a multi-threaded fork unless told not to.
if(TARGET test_executor)
  set_property(TEST test_executor APPEND PROPERTY ENVIRONMENT
    "TSAN_OPTIONS=die_after_fork=0")
endif()
