# The tutorial tour: run every example in order under a heading.
# PROGRAMS: the lesson programs in order, separated by "|".
string(REPLACE "|" ";" PROGRAMS "${PROGRAMS}")
set(n 0)
foreach(p IN LISTS PROGRAMS)
  math(EXPR n "${n} + 1")
  get_filename_component(name ${p} NAME)
  message("\n==== Lesson ${n}: ${name} ====")
  execute_process(COMMAND ${p} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "lesson ${name} failed with ${rc}")
  endif()
endforeach()
message("\nThe tour ran ${n} lessons.")
