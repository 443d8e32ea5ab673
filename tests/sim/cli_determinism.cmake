# Runs `nomq sim` twice with one seed and once with another; the first two outputs must be
# identical bytes and the third must differ. Exit code 1 (an invariant broken, listed in the
# output) is accepted here: this test is about determinism; the invariants have their own tests.
set(args sim --seed 4242 --nodes 4 --publishers 2 --messages 300 --qos 2 --loss 0.2 --dup 0.1
  --reorder 0.1 --jitter 3 --partition 1:4 --restart-subscriber-at 2 --json)
foreach(run a b)
  execute_process(COMMAND ${NOMQ} ${args} OUTPUT_VARIABLE out_${run} RESULT_VARIABLE rc_${run})
  if(NOT (rc_${run} EQUAL 0 OR rc_${run} EQUAL 1))
    message(FATAL_ERROR "nomq sim exited ${rc_${run}}:\n${out_${run}}")
  endif()
endforeach()
if(NOT out_a STREQUAL out_b)
  message(FATAL_ERROR "same seed, different output:\n${out_a}\n---\n${out_b}")
endif()
string(REPLACE "--seed;4242" "--seed;4243" other "${args}")
execute_process(COMMAND ${NOMQ} ${other} OUTPUT_VARIABLE out_c RESULT_VARIABLE rc_c)
if(out_c STREQUAL out_a)
  message(FATAL_ERROR "seeds 4242 and 4243 gave the same output")
endif()
string(FIND "${out_a}" "\"published\": 300" found)
if(found EQUAL -1)
  message(FATAL_ERROR "unexpected output:\n${out_a}")
endif()

# A bad option is one "Error:" line and exit code 2.
execute_process(COMMAND ${NOMQ} sim --partition 5:3 OUTPUT_VARIABLE out_bad ERROR_VARIABLE err_bad
  RESULT_VARIABLE rc_bad)
if(NOT rc_bad EQUAL 2 OR NOT err_bad MATCHES "^Error: --partition needs START:END")
  message(FATAL_ERROR "bad --partition: exit ${rc_bad}, stderr: ${err_bad}")
endif()
