# Runs EXE (through EMULATOR, if given: Wine for a Windows build) and compares
# its standard output with the file EXPECTED (line ends as on Linux).
execute_process(COMMAND ${EMULATOR} ${EXE} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${EXE} exited with ${rc}\n${out}")
endif()
string(REPLACE "\r\n" "\n" out "${out}")
file(READ ${EXPECTED} expected)
if(NOT out STREQUAL expected)
  message(FATAL_ERROR "output of ${EXE} differs from ${EXPECTED}\n--- got ---\n${out}\n--- expected ---\n${expected}")
endif()
